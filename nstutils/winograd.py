"""3x3 convolutions with 4x fewer multiplications: Winograd's minimal filtering, F(4x4, 3x3).

A 3x3 convolution (stride 1, padding 1) computes each 4x4 block of its output from a 6x6 tile of
its input. Winograd's algorithm (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks") maps the tile d and the kernel g into a 6x6 space where the convolution becomes an
elementwise product, and back:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (one input and one output channel)

With C_in input channels, the elementwise products of all channel pairs are 36 independent
matrix products, M_xi = U_xi V_xi for each of the 36 positions xi of the 6x6 space, where
U = G g G^T is (36, C_out, C_in), computed once per network, and V = B^T d B is (36, C_in, tiles).
That is 36 multiplications per 16 outputs and input channel against 144 for the direct
convolution, and the products run as large matrix multiplications, which CPUs do well.

Why: on CPUs without native bfloat16 (the AVX2 class of most laptops), oneDNN's float32
convolutions of VGG19 ran at 70-105 GFLOP/s. This computes VGG19's convolutions from conv2_2
(128 input channels) to conv5_1 in less time: on a Xeon limited to AVX2, 2.2-2.5x for the
512-channel layers at 512 px (forward and backward), and the default 512 px run took 1.42x less
time (``benchmarks/levels.py --conv``); on an AMD EPYC with AVX2, 1.35-2.55x for the 256- and
512-channel layers (``benchmarks/conv_algorithms.py``; see the README). The layers with 64 input
channels keep the direct convolution, which was faster there. The results differ from the direct
convolution by rounding only: about 1e-5 of the largest output, where float32 itself gives 1e-7.
It is used where it pays: float32 on the CPU (``stylize(conv="auto")``); bfloat16, where
oneDNN's native kernels are faster still, and GPUs, whose libraries choose Winograd's algorithm
themselves, keep the direct convolution.

The input transform B^T d B of every tile runs as one stride-4 convolution with 36 fixed 6x6
kernels, which cuts the overlapping tiles out of the image and transforms them in one pass; the
matrix products then read the tiles where that convolution wrote them. The backward pass (the
gradient with respect to the input; the weights are frozen) is itself a 3x3 convolution, of the
output's gradient with the kernel flipped and its channels swapped: the same algorithm on U's
transpose (a view), the flip folded into the tiling. Against the earlier version of this module
(the tiles gathered by a copy, transformed by a matrix product, and a backward pass that added
overlapping tiles back), one evaluation of the default loss took 1.14x less time at 512 px,
1.09x at 256 px and 1.03x at 128 px on the AMD EPYC (``benchmarks/evaluation.py``). The work is
done a band of tile rows at a time (about 1 MB of tiles), which bounds the extra memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Lavin & Gray's F(4x4, 3x3) transforms, interpolation points 0, 1, -1, 2, -2 and infinity.
B_T = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))  # (6, 6): input tile
G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))  # (6, 3): kernel
A_T = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))  # (4, 6): output
TILE_BYTES = 2 ** 20  # tiles transformed at once, at most (about one core's L2 cache) ...
MIN_TILES = 256  # ... but at least this many, or the matrix products get too thin to be fast
MIN_PIXELS = 256  # below 16 x 16 outputs the direct convolution was as fast or faster
# With fewer input channels the matrix products are thin and the transforms' memory traffic
# dominates: on a 2-core AMD EPYC (AVX2), at 512 px, conv1_2 (64 -> 64) ran at 0.54-0.66x oneDNN's
# speed and conv2_1 (64 -> 128) at 0.93-1.17x; conv2_2 (128 -> 128) at 1.02-1.05x, deeper 1.2-2.6x.
MIN_IN_CHANNELS = 128


def winograd_weights(weight: Tensor) -> Tensor:
    """Transform 3x3 kernels into Winograd's space: U_xi = (G g G^T)_xi for every channel pair.

    Args: weight: (C_out, C_in, 3, 3). Returns: (36, C_out, C_in), same dtype and device,
    computed in float64 so that the transform adds no rounding of its own.
    """
    if weight.dim() != 4 or tuple(weight.shape[-2:]) != (3, 3):
        raise ValueError(f"expected 3x3 kernels of shape (C_out, C_in, 3, 3), got {tuple(weight.shape)}")
    g = torch.tensor(G, dtype=torch.float64, device=weight.device)
    u = torch.kron(g, g) @ weight.detach().double().reshape(-1, 9).t()  # (36, C_out * C_in): G g G^T
    return u.reshape(36, *weight.shape[:2]).to(weight.dtype).contiguous()


def _kron(m, x: Tensor) -> Tensor:
    t = torch.tensor(m, dtype=x.dtype, device=x.device)
    return torch.kron(t, t)  # the 2-D transform of a flattened tile, t (.) t^T, as one matrix


def _band_rows(channels: int, tiles_per_row: int, rows: int) -> int:
    """Tile rows per band: about TILE_BYTES of 6x6 tiles, but at least MIN_TILES tiles."""
    fit = TILE_BYTES // (channels * 36 * 4 * tiles_per_row)
    return max(1, min(rows, max(fit, -(-MIN_TILES // tiles_per_row))))


def _winograd(x: Tensor, u: Tensor, bias: Tensor | None, flip: bool = False) -> Tensor:
    """y = conv3x3(x, g, padding 1) + bias for x (1, C_in, H, W) and u = winograd_weights(g) (36, C_out, C_in).

    ``flip``: compute flip(conv3x3(flip(x), g)) instead, flipping both image axes, which is
    conv3x3(x, g flipped) for the symmetric padding of 1: the backward pass is that with g's
    channels transposed (a view of u). The flips never touch memory: the tiles are cut from the
    other corner and the transforms' kernels are reversed.
    """
    _, c_in, h, w = x.shape
    c_out, th, tw = u.shape[1], -(-h // 4), -(-w // 4)
    eh, ew = 4 * th - h, 4 * tw - w  # the rows and columns that complete the last tiles
    a_t = A_T[::-1] if flip else A_T  # with flip, each 4x4 output block is written reversed
    kb = _kron(B_T, x).view(36, 1, 6, 6)  # B^T d B for each 6x6 tile d, as a stride-4 convolution
    kb = kb.flip(-2, -1) if flip else kb  # with flip, each tile is read from its other corner
    ka = _kron(a_t, x)  # (16, 36): A^T M A
    top, cols = (eh + 1, (ew + 1, 1)) if flip else (1, (1, ew + 1))  # x padded to (4th + 2, 4tw + 2)
    out = torch.empty(c_out, 4 * th, 4 * tw, dtype=x.dtype, device=x.device)
    step = _band_rows(c_in, tw, th)
    for r0 in range(0, th, step):
        n = min(th, r0 + step) - r0
        lo, hi = 4 * r0 - top, 4 * (r0 + n) + 2 - top  # the band's rows of x, padded where outside
        band = F.pad(x[0, :, max(lo, 0):min(hi, h)], (*cols, max(-lo, 0), max(hi - h, 0)))[:, None]
        # One convolution cuts the band's overlapping tiles and transforms them, (C_in, 36, n, tw),
        # without a copy of the tiles; the matrix products read them in place, (36, C_in, tiles).
        v = F.conv2d(band, kb, stride=4)
        m = torch.bmm(u, v.view(c_in, 36, n * tw).transpose(0, 1))  # (36, C_out, tiles): U V
        y = (ka @ m.view(36, -1)).view(4, 4, c_out, n, tw).permute(2, 3, 0, 4, 1)  # A^T M A
        block = out[:, 4 * r0:4 * (r0 + n)].view(c_out, n, 4, tw, 4)
        if bias is None:
            block.copy_(y)
        else:
            torch.add(y, bias.view(-1, 1, 1, 1, 1), out=block)
    return out[None, :, eh:, ew:] if flip else out[None, :, :h, :w]


class _Conv3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, u, bias):
        ctx.save_for_backward(u)
        return _winograd(x, u, bias)

    @staticmethod
    def backward(ctx, grad):
        # dL/dx of a 3x3 convolution with padding 1 is the convolution of dL/dy with the kernel
        # flipped and its channels transposed: Winograd's forward algorithm again, on U's transpose.
        (u,) = ctx.saved_tensors
        return _winograd(grad.contiguous(), u.transpose(1, 2), None, flip=True), None, None


def conv3x3(x: Tensor, u: Tensor, bias: Tensor | None = None) -> Tensor:
    """Return conv2d(x, g, bias, padding=1) computed by F(4x4, 3x3), differentiable in ``x``.

    Args: x: (1, C_in, H, W), any H and W; u: (36, C_out, C_in) from :func:`winograd_weights`(g);
    bias: (C_out,) or None. Returns: (1, C_out, H, W). The weights get no gradient (they are frozen).
    """
    if x.dim() != 4 or x.shape[0] != 1 or u.dim() != 3 or x.shape[1] != u.shape[2]:
        raise ValueError(f"expected x (1, C_in, H, W) and u (36, C_out, C_in), got {tuple(x.shape)} "
                         f"and {tuple(u.shape)}")
    return _Conv3x3.apply(x.contiguous(), u, bias)


class WinogradConv2d(nn.Module):
    """A frozen 3x3 convolution (stride 1, padding 1) that computes by Winograd's algorithm where it pays.

    That is: float32 on the CPU, outside autocast, a batch of one, outputs of at least MIN_PIXELS
    pixels. Anywhere else it is ``conv`` itself (the direct convolution). Holds ``conv`` and, from
    its first use, the transform U of its weights (4x their memory: 36 numbers per 9); a layer
    that never computes this way (too small an image) never pays for it.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) != ((3, 3), (1, 1), (1, 1), (1, 1), 1):
            raise ValueError(f"Winograd's F(4x4, 3x3) needs a 3x3 convolution with stride 1 and padding 1, got {conv}")
        self.conv = conv
        self.u: Tensor | None = None  # winograd_weights(conv.weight), a cache: the weights are frozen

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[0] == 1
                and not torch.is_autocast_enabled("cpu") and x.shape[-2] * x.shape[-1] >= MIN_PIXELS):
            if self.u is None:
                self.u = winograd_weights(self.conv.weight)
            return conv3x3(x, self.u, self.conv.bias)
        return self.conv(x)


CONVS = ("direct", "winograd")


def choose_conv(device: str | torch.device, precision: str, conv: str = "auto") -> str:
    """Return "winograd" or "direct": ``conv`` itself, or for "auto" "winograd" on the CPU in float32.

    Raises ValueError for an unknown name, and for "winograd" where it would not run (a GPU, or
    bfloat16), rather than quietly running the direct convolution.
    """
    if conv not in ("auto", *CONVS):
        raise ValueError(f"unknown conv {conv!r}; valid: auto, {', '.join(CONVS)}")
    where = torch.device(device).type
    if conv == "auto":
        return "winograd" if where == "cpu" and precision == "fp32" else "direct"
    if conv == "winograd" and (where != "cpu" or precision != "fp32"):
        raise ValueError(f"conv='winograd' computes in float32 on the CPU, but this run is {precision} on "
                         f"{where}; use conv='auto' or 'direct'")
    return conv
