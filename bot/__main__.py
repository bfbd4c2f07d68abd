"""``python -m bot`` runs the ``moodtunes`` command line."""

import sys

from bot.cli import main

sys.exit(main())
