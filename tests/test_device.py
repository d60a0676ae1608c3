"""Device and precision are chosen from what the hardware runs natively (a fake capability table)."""

import pytest
import torch

from nstutils.device import Capabilities, choose, choose_device, choose_precision, describe

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}
SAPPHIRE_RAPIDS = AVX2 | {"avx512f", "amx_bf16", "amx_tile"}

# (what the machine has, what "auto" must give)
TABLE = {
    "T4 (7.5)": (Capabilities(cuda=((7, 5),), cpu_flags=AVX2), ("cuda:0", "fp32")),
    "V100 (7.0)": (Capabilities(cuda=((7, 0),), cpu_flags=AVX2), ("cuda:0", "fp32")),
    "A100 (8.0)": (Capabilities(cuda=((8, 0),), cpu_flags=AVX2), ("cuda:0", "bf16")),
    "H100 (9.0)": (Capabilities(cuda=((9, 0),), cpu_flags=SAPPHIRE_RAPIDS), ("cuda:0", "bf16")),
    "CPU, AVX2 only": (Capabilities(cpu_flags=AVX2), ("cpu", "fp32")),
    "CPU, AVX512-BF16": (Capabilities(cpu_flags=AVX512_BF16), ("cpu", "bf16")),
    "CPU, AMX": (Capabilities(cpu_flags=SAPPHIRE_RAPIDS), ("cpu", "bf16")),
    "CPU, flags unreadable": (Capabilities(), ("cpu", "fp32")),
}


@pytest.mark.parametrize("name", TABLE)
def test_auto_follows_native_support(name):
    caps, (device, precision) = TABLE[name]
    dev, prec = choose("auto", "auto", caps)
    assert (str(dev), prec) == (device, precision)
    assert precision in describe(dev, prec, caps)


def test_t4_is_fp32_although_torch_calls_its_bf16_supported():
    # torch.cuda.is_bf16_supported() is True on a T4 (emulated); the choice must not follow it.
    assert choose_precision("cuda", "auto", Capabilities(cuda=((7, 5),))) == "fp32"


def test_cpu_on_a_gpu_machine_uses_the_cpu_flags():
    caps = Capabilities(cuda=((8, 0),), cpu_flags=AVX2)
    assert choose("cpu", "auto", caps) == (torch.device("cpu"), "fp32")


def test_second_gpu_is_judged_by_its_own_capability():
    caps = Capabilities(cuda=((8, 0), (7, 5)))
    assert choose("cuda:0", "auto", caps)[1] == "bf16"
    assert choose("cuda:1", "auto", caps)[1] == "fp32"


def test_explicit_precision_wins():
    caps = Capabilities(cpu_flags=AVX2)
    assert choose("cpu", "bf16", caps)[1] == "bf16"
    assert choose("auto", "fp32", Capabilities(cuda=((9, 0),)))[1] == "fp32"


@pytest.mark.parametrize("device, message", [
    ("cuda", "no CUDA GPU"), ("cuda:0", "no CUDA GPU"), ("gpu", "unknown device 'gpu'"),
])
def test_missing_or_unknown_device_is_one_line(device, message):
    with pytest.raises(ValueError, match=message) as err:
        choose_device(device, Capabilities(cpu_flags=AVX2))
    assert "\n" not in str(err.value)


def test_gpu_index_beyond_the_machine():
    with pytest.raises(ValueError, match="only 1 CUDA GPU"):
        choose_device("cuda:1", Capabilities(cuda=((8, 0),)))


def test_unknown_precision():
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        choose_precision("cpu", "fp16", Capabilities())


def test_this_machine():
    dev, prec = choose()
    assert dev.type in ("cpu", "cuda") and prec in ("fp32", "bf16")


@pytest.mark.parametrize("cap, kept", [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                                       ("AVX512_CORE_AMX", True), ("", True)])
def test_onednn_isa_cap_decides_native_bf16(cap, kept):
    """ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 BF16 machine (a laptop's approximation) means fp32."""
    from nstutils import device
    full = device.cpu_flags()
    caps = device.probe({"ONEDNN_MAX_CPU_ISA": cap})
    assert caps.cpu_flags & device.BF16_CPU_FLAGS == (full & device.BF16_CPU_FLAGS if kept else frozenset())
    assert caps.cpu_flags - device.BF16_CPU_FLAGS == full - device.BF16_CPU_FLAGS
