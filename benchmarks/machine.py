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
    """``"<host> <arch> (<CPU>, int8 VNNI or not, native bfloat16 or not[, kernels capped by ...]),
    <detail>"``: those decide which emotion model runs and how fast (``core.vision.emotion.classifier``'s
    ``auto``; caps, :data:`core.vision.emotion.quantized.ISA_CAPS`, emulate an older CPU's kernels)."""
    from core.vision.emotion.classifier import native_bfloat16
    from core.vision.emotion.quantized import int8_native, isa_caps

    int8 = "int8 VNNI" if int8_native() else "no int8 VNNI"
    bf16 = "native bfloat16" if native_bfloat16() else "no native bfloat16"
    caps = f", kernels capped by {isa_caps()}" if isa_caps() else ""
    return f"{platform.node()} {platform.machine()} ({cpu_name()}, {int8}, {bf16}{caps}), {detail}"
