"""How much memory a stylization needs, estimated before it starts, and how much there is.

Most of it is the activations that autograd keeps for the backward pass (every ReLU output and
max-pool index map up to the deepest layer used), plus L-BFGS's history of past steps and
gradients (two image-sized vectors per remembered step). All of it grows with the number of
pixels, so a 2048 px run needs about 16x what a 512 px run does.
"""

from __future__ import annotations

import os

import torch

from .layers import LAYER_INDEX, check_layers, layer_table
from .winograd import MIN_IN_CHANNELS

GB = 1024 ** 3
BASE_BYTES = 950 * 1024 ** 2  # Python, torch and the VGG19 weights: peak RSS of a tiny run, measured


def estimate_memory(size: tuple[int, int], *, layers, precision: str = "fp32", conv: str = "direct",
                    optimizer: str = "lbfgs", lbfgs_history: int = 100, steps: int = 100) -> int:
    """Return the estimated peak memory, in bytes, of optimizing an image of ``size`` (H, W).

    Counts, for the forward pass up to the deepest of ``layers``: each ReLU output (kept for
    the backward pass and as the next convolution's input), and each max-pool's int64 index map
    (the losses read the requested features in place); for the backward pass, three gradient tensors
    of the largest activation; for the optimizer, 2 * min(history, steps) + 4 image-sized
    float32 vectors (L-BFGS) or 4 (Adam); and a fixed base for the process and the weights.
    ``conv="winograd"`` adds the transformed weights of the convolutions it computes (36 numbers per 9
    weights; its working tiles are a few MB, see :mod:`nstutils.winograd`).
    """
    layers = check_layers(layers)
    deepest = max(LAYER_INDEX[n] for n in layers)
    act = 2 if precision == "bf16" else 4
    h, w = int(size[0]), int(size[1])
    saved, largest, c_in, transformed = 0, 3 * h * w * 4, 3, 0
    for info in layer_table(h, w)[: deepest + 1]:
        n = info.channels * info.height * info.width
        if info.name.startswith("conv"):
            if conv == "winograd" and c_in >= MIN_IN_CHANNELS:
                transformed += 36 * c_in * info.channels * 4
            c_in = info.channels
        if info.name.startswith("relu"):
            saved += n * act
        elif info.name.startswith("pool"):
            saved += n * 8  # int64 indices, one per output element
        largest = max(largest, n * 4)
    pixels = 3 * h * w * 4
    vectors = 2 * min(lbfgs_history, steps) + 4 if optimizer == "lbfgs" else 4
    # +15%: allocator slack and short-lived copies; without it the count fell 6-12% short of the
    # peak resident memory measured at 1024 px (benchmarks/bench.py, section 3).
    return BASE_BYTES + int(1.15 * (saved + 3 * largest)) + vectors * pixels + transformed


def available_memory(device: torch.device | str) -> int | None:
    """Return the bytes free for a new allocation on ``device``, or None where unknown.

    CPU: Linux's MemAvailable (free plus reclaimable caches). CUDA: free device memory.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu" or not os.path.exists("/proc/meminfo"):
        return None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def check_memory(needed: int, limit: int | None, size: tuple[int, int]) -> None:
    """Raise MemoryError with the estimate and the fixes when ``needed`` bytes exceed ``limit``."""
    if limit is None or needed <= limit:
        return
    raise MemoryError(
        f"a {size[1]}x{size[0]} image would need about {needed / GB:.1f} GB, but only "
        f"{limit / GB:.1f} GB is available; use a smaller size, the coarse-to-fine pyramid "
        f"(few steps at full size), precision='bf16', a shorter lbfgs_history, or optimizer='adam' "
        f"(estimate first with nstutils.estimate_memory)")
