"""Choose where a run computes (device) and in which precision, from what the hardware does natively.

One decision for the command line, the playground, the notebooks and ``stylize``. bfloat16
convolutions pay only where the hardware runs them natively; elsewhere they are emulated and
slower than float32 (measured: one 512 px evaluation took 127 s on an AVX2-only CPU, against
about 3 s in float32). So:

- CUDA: bf16 from compute capability 8.0 (A100, RTX 30xx, H100); below it (T4 7.5, V100 7.0)
  fp32. ``torch.cuda.is_bf16_supported()`` is not used: it also says True where bfloat16 is only
  emulated (a T4). float16 autocast, the T4's fast path, is not offered: VGG19's activations
  with the Caffe preprocessing reach thousands, and their Gram matrices overflow float16's
  largest value (65504).
- CPU: bf16 only with AVX512-BF16 or AMX instructions (read from /proc/cpuinfo), else fp32; and
  not when ``ONEDNN_MAX_CPU_ISA`` keeps oneDNN below them (e.g. ``AVX2``, which is how an AVX-512
  machine approximates a laptop's CPU): oneDNN would then emulate bfloat16.
- Anything else (mps, ...): fp32.

The hardware is described by :class:`Capabilities`, so tests can pass a fake one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch

PRECISIONS = ("fp32", "bf16")
BF16_CUDA_CAPABILITY = (8, 0)  # Ampere: the first GPUs with bfloat16 tensor cores
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA) that still allow its native bfloat16 kernels.
ONEDNN_BF16_ISAS = frozenset({"AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX",
                              "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "ALL", "DEFAULT"})


@dataclass(frozen=True)
class Capabilities:
    """What the machine offers: one (major, minor) compute capability per CUDA GPU, CPU flags."""

    cuda: tuple[tuple[int, int], ...] = ()
    cpu_flags: frozenset[str] = frozenset()


def cpu_flags() -> frozenset[str]:
    """Return the CPU's instruction-set flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:  # not Linux: no flags, so float32 rather than a guess
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def probe(environ: Mapping[str, str] | None = None) -> Capabilities:
    """Return this machine's :class:`Capabilities`.

    The CPU's bfloat16 flags are dropped when ``ONEDNN_MAX_CPU_ISA`` in ``environ`` (default
    os.environ) caps oneDNN below the instructions that run bfloat16 natively.
    """
    cuda = ()
    if torch.cuda.is_available():
        cuda = tuple(tuple(torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count()))
    flags = cpu_flags()
    cap = (os.environ if environ is None else environ).get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in ONEDNN_BF16_ISAS:
        flags -= BF16_CPU_FLAGS
    return Capabilities(cuda=cuda, cpu_flags=flags)


def choose_device(device: str | torch.device = "auto", caps: Capabilities | None = None) -> torch.device:
    """Return the device to compute on: "auto" means the first CUDA GPU if there is one, else the CPU.

    An explicit device that this machine does not have raises ValueError with one line that says
    what there is (never torch's AssertionError from deep inside a ``.to``).
    """
    caps = probe() if caps is None else caps
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda:0" if caps.cuda else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N ({err})") from None
    if dev.type == "cuda":
        index = 0 if dev.index is None else dev.index
        if not caps.cuda:
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU that "
                             "torch can use; use auto or cpu")
        if index >= len(caps.cuda):
            raise ValueError(f"device {device!r} asked for, but there are only {len(caps.cuda)} CUDA "
                             f"GPU(s): cuda:0 to cuda:{len(caps.cuda) - 1}")
        return torch.device("cuda", index)
    return dev  # cpu, or mps and others asked for by name (torch says if one is missing)


def choose_precision(device: str | torch.device, precision: str = "auto",
                     caps: Capabilities | None = None) -> str:
    """Return "bf16" or "fp32": ``precision`` itself, or for "auto" what ``device`` runs natively."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: auto, {', '.join(PRECISIONS)}")
        return precision
    device = torch.device(device)
    caps = probe() if caps is None else caps
    if device.type == "cuda":
        index = 0 if device.index is None else device.index
        native = index < len(caps.cuda) and tuple(caps.cuda[index]) >= BF16_CUDA_CAPABILITY
        return "bf16" if native else "fp32"
    if device.type == "cpu":
        return "bf16" if BF16_CPU_FLAGS & caps.cpu_flags else "fp32"
    return "fp32"


def choose(device: str | torch.device = "auto", precision: str = "auto",
           caps: Capabilities | None = None) -> tuple[torch.device, str]:
    """Return (device, precision) for a run: the one decision the CLI, playground and notebooks share."""
    caps = probe() if caps is None else caps
    dev = choose_device(device, caps)
    return dev, choose_precision(dev, precision, caps)


def describe(device: torch.device, precision: str, caps: Capabilities | None = None) -> str:
    """Return one line naming the device, its precision and why, for notebooks and the CLI."""
    caps = probe() if caps is None else caps
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "CUDA GPU"
        index = 0 if device.index is None else device.index
        cc = caps.cuda[index] if index < len(caps.cuda) else None
        why = f"compute capability {cc[0]}.{cc[1]}" if cc else "compute capability unknown"
    elif device.type == "cpu":
        name = "CPU"
        why = "native bfloat16" if BF16_CPU_FLAGS & caps.cpu_flags else "no native bfloat16"
    else:
        name, why = device.type, "float32 off CUDA and CPU"
    return f"device {device} ({name}, {why}): {precision}"
