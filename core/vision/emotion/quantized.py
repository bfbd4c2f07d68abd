"""8-bit integer inference for the emotion networks (static post-training quantization).

A network is quantized in two steps. :func:`calibrate` runs float faces through it once (the weights
need nothing: each output channel is scaled by its own largest weight) and returns, for every
activation the int8 graph quantizes, a ``(scale, zero_point)`` pair fitted to a histogram of what it
saw. Those pairs are small, plain numbers, kept in a model file (``"quantization"``), so the weights
stay one fp16 file per network. :func:`quantize` rebuilds the int8 network from the float network
and those pairs, the same bits on every load.

Activations use the full unsigned 8-bit range (0..255) where the CPU has VNNI dot products
(AVX512-VNNI or AMX, as PyTorch reports them: :func:`int8_native`; a CPU with only the 256-bit
AVX-VNNI counts as AVX2). AVX2 alone sums pairs of 8-bit products in
16 bits, which saturate at that range (2 x 255 x 127 > 32767), so a model for such CPUs is calibrated
with 7-bit activations (0..127: ``bits=7``), exact there.

The graph is built with PyTorch's FX quantization (``torch.ao.quantization.quantize_fx``), deprecated
in favour of torchao's PT2E flow, which needs ``torch.compile`` for fast int8 kernels; FX's eager
kernels (fbgemm/oneDNN) need no compiler and are fast at batch 1. Its deprecation warnings are muted
here; the pinned torch in ``requirements.lock`` is what the figures were measured with.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping
from torch.ao.quantization.observer import (
    FixedQParamsObserver,
    HistogramObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
)

from core.vision.emotion.network import INPUT_SIZE

ENGINE = "x86"
"""PyTorch's quantized engine for x86 CPUs (fbgemm and oneDNN kernels)."""


class QuantizationMismatch(ValueError):
    """Stored quantization that does not fit the network (another architecture's or PyTorch's graph)."""


QParams = dict[str, tuple[float, int]]
"""Activation observer name -> (scale, zero point) of its unsigned code (0..255, or 0..127 at 7 bits)."""

ACTIVATION_BITS = (8, 7)
"""Activation code widths: 8 for VNNI/AMX CPUs, 7 for AVX2-only ones (no 16-bit saturation)."""


def engines() -> list[str]:
    """The quantized engines this PyTorch build has (``x86`` on x86-64 builds)."""
    return list(torch.backends.quantized.supported_engines)


def avx512_dispatch() -> bool:
    """Whether PyTorch dispatches to AVX-512 kernels here: False on an AVX2-only CPU, and where
    ``ATEN_CPU_CAPABILITY`` caps it (with :data:`ISA_CAPS`, to run an older CPU's code paths)."""
    return torch.backends.cpu.get_cpu_capability() == "AVX512"


def int8_native(device: str = "cpu") -> bool:
    """Whether ``device`` is a CPU that runs the int8 networks exactly and fast (VNNI or AMX, with
    AVX-512 dispatch: :func:`avx512_dispatch`)."""
    if device != "cpu" or ENGINE not in engines() or not avx512_dispatch():
        return False
    checks = ("_is_vnni_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


ISA_CAPS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "FBGEMM_ENABLE_INSTRUCTIONS",
    "MKL_ENABLE_INSTRUCTIONS",
)
"""Environment variables that cap the instruction sets PyTorch's kernels use (to time another CPU's
code paths on this one, e.g. all four at ``AVX2``)."""


def isa_caps() -> str:
    """The caps of :data:`ISA_CAPS` set in this process (``"NAME=VALUE ..."``), or ``""``."""
    return " ".join(f"{name}={os.environ[name]}" for name in ISA_CAPS if name in os.environ)


def avx2() -> bool:
    """Whether int8 with 7-bit activations runs here: the x86 quantized engine, with PyTorch's CPU
    kernels dispatching to AVX2 or wider (``ATEN_CPU_CAPABILITY`` caps it)."""
    return ENGINE in engines() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def _check_bits(bits: int) -> None:
    if bits not in ACTIVATION_BITS:
        raise ValueError(f"activations are quantized to {ACTIVATION_BITS} bits, not {bits}")


def qconfig_mapping(bits: int = 8) -> QConfigMapping:
    """Per-tensor unsigned activations over ``bits`` (histogram-fitted), per-channel int8 weights."""
    _check_bits(bits)
    activation = HistogramObserver.with_args(dtype=torch.quint8, reduce_range=bits == 7)
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


@contextmanager
def _quiet() -> Iterator[None]:
    """FX quantization's deprecation and uncalibrated-observer warnings muted (module docstring), and
    the x86 engine selected for the process: ``convert_fx`` packs the weights for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = ENGINE
        yield


def _prepared(network: nn.Module, bits: int) -> torch.fx.GraphModule:
    example = (torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE),)
    from torch.ao.quantization.quantize_fx import prepare_fx

    return prepare_fx(copy.deepcopy(network).eval().float(), qconfig_mapping(bits), example)


def _activation_observers(prepared: nn.Module) -> dict[str, ObserverBase]:
    return {
        name: module
        for name, module in prepared.named_children()
        if isinstance(module, ObserverBase) and name.startswith("activation_post_process")
    }


def calibrate(network: nn.Module, batches: Iterable[torch.Tensor], bits: int = 8) -> QParams:
    """The ``bits``-bit activation quantization of ``network`` fitted to ``batches`` of normalised
    faces (N, 1, 48, 48)."""
    with _quiet(), torch.inference_mode():
        prepared = _prepared(network, bits)
        seen = 0
        for batch in batches:
            prepared(batch.float())
            seen += len(batch)
        if not seen:
            raise ValueError("calibration needs at least one face")
        qparams: QParams = {}
        for name, observer in _activation_observers(prepared).items():
            scale, zero_point = observer.calculate_qparams()
            qparams[name] = (float(scale), int(zero_point))
    return qparams


def quantize(
    network: nn.Module, qparams: Mapping[str, tuple[float, int] | list[float]], bits: int = 8
) -> nn.Module:
    """The int8 network (eval mode, float input and output) from a float ``network`` and its
    ``bits``-bit activation ``qparams``.

    Raises :class:`QuantizationMismatch` when ``qparams`` do not name exactly the graph's activations (another
    architecture's, or another PyTorch's graph).
    """
    from torch.ao.quantization.quantize_fx import convert_fx

    with _quiet():
        prepared = _prepared(network, bits)
        observers = _activation_observers(prepared)
        if set(observers) != set(qparams):
            raise QuantizationMismatch(
                f"quantization parameters name {len(qparams)} activations, the network has "
                f"{len(observers)}; quantize it again (python -m training.emotion_quantize)"
            )
        for name, (scale, zero_point) in qparams.items():
            fixed = FixedQParamsObserver(float(scale), int(zero_point), quant_min=0, quant_max=2**bits - 1)
            setattr(prepared, name, fixed)
        return convert_fx(prepared).eval()
