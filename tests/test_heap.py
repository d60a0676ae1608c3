"""nstutils.heap: glibc's malloc settings for a run, set and always set back."""

import os
import platform

import pytest
import torch

import nstutils as nu
from nstutils import heap


class FakeLibc:
    """Records mallopt and malloc_trim calls, as glibc would receive them."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


SET = [("mallopt", heap.M_MMAP_MAX, 0), ("mallopt", heap.M_TRIM_THRESHOLD, heap.NO_TRIM)]
RESTORED = [("mallopt", heap.M_MMAP_MAX, heap.DEFAULT_MMAP_MAX),
            ("mallopt", heap.M_TRIM_THRESHOLD, heap.DEFAULT_TRIM_THRESHOLD), ("malloc_trim", 0)]


def test_kept_heap_sets_and_restores_glibc_defaults():
    libc = FakeLibc()
    with heap.kept_heap(libc) as kept:
        assert kept and libc.calls == SET
    assert libc.calls == SET + RESTORED


def test_kept_heap_restores_after_an_error():
    libc = FakeLibc()
    with pytest.raises(KeyboardInterrupt):
        with heap.kept_heap(libc):
            raise KeyboardInterrupt
    assert libc.calls == SET + RESTORED


def test_nested_runs_restore_once_the_last_one_leaves():
    libc = FakeLibc()
    with heap.kept_heap(libc):
        with heap.kept_heap(libc):
            pass
        assert libc.calls == SET  # the outer run still keeps its heap
    assert libc.calls == SET + RESTORED


def test_user_settings_and_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert heap._glibc() is None
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert heap._glibc() is None
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert heap._glibc() is None
    with heap.kept_heap() as kept:  # nothing to call: the body runs all the same
        assert kept is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_real_glibc_is_found_and_called(monkeypatch):
    for k in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(k)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    with heap.kept_heap() as kept:
        assert kept is True
        x = torch.zeros(2 ** 22)  # 16 MB from the heap, not mmap
        del x


def test_stylize_runs_inside_the_kept_heap(content, style, extractor, monkeypatch):
    entered = []

    def spy():
        entered.append(True)
        return heap.kept_heap(FakeLibc())
    monkeypatch.setattr("nstutils.optimize.kept_heap", spy)
    nu.stylize(content, style, extractor, steps=1, pyramid=False)
    assert entered == [True]


def test_room_to_keep_needs_room_over_the_estimate():
    assert heap.room_to_keep(1000, int(1000 * heap.ROOM))
    assert not heap.room_to_keep(1000, int(1000 * heap.ROOM) - 1)
    assert not heap.room_to_keep(1000, None)  # unknown free memory: glibc's defaults


def test_stylize_keeps_glibcs_defaults_without_room(content, style, extractor, monkeypatch):
    entered = []
    monkeypatch.setattr("nstutils.optimize.kept_heap", lambda: entered.append(True) or heap.kept_heap(FakeLibc()))
    monkeypatch.setattr(heap, "ROOM", 1e12)  # no machine has that much room over any estimate
    r = nu.stylize(content, style, extractor, steps=1, pyramid=False)
    assert r.status == "completed" and entered == []
