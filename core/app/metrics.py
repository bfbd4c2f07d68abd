"""Prometheus metrics of one worker process (served at ``/metrics`` by :mod:`bot.ops`).

Counters and the histogram live in prometheus-client's default registry, one set per process; a
scrape of each worker gives its own figures, and Prometheus sums them across workers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PHOTOS = Counter(
    "moodtunes_photos_total", "Photos handled, by outcome (ok, no_face, enrolment, error codes)", ["outcome"]
)
REPLY_SECONDS = Histogram(
    "moodtunes_photo_reply_seconds",
    "Time from a photo's arrival at the service to its reply, seconds",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
ERRORS = Counter("moodtunes_errors_total", "Refusals and failures, by error code", ["code"])
COMMANDS = Counter("moodtunes_commands_total", "Commands run, by name", ["command"])
PRESSES = Counter("moodtunes_button_presses_total", "Button presses, by action", ["action"])
QUEUE_DEPTH = Gauge("moodtunes_inference_queue_depth", "Photos waiting for the models")
UPDATES = Counter(
    "moodtunes_updates_total",
    "Platform updates received, by platform and outcome (handled, duplicate, busy)",
    ["platform", "outcome"],
)
