"""What machine a benchmark ran on, for its JSON: the figures only mean something beside it."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(detail: str) -> str:
    """``"<host> <arch> (<CPU>, native bfloat16 or not), <detail>"``: bfloat16 decides which emotion
    model runs and how fast (``core.vision.emotion.classifier.native_bfloat16``)."""
    from core.vision.emotion.classifier import native_bfloat16

    bf16 = "native bfloat16" if native_bfloat16() else "no native bfloat16"
    return f"{platform.node()} {platform.machine()} ({cpu_name()}, {bf16}), {detail}"
