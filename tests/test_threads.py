"""The thread governor of stylize(threads="auto"), driven by fake clocks, and threads=N."""

import pytest
import torch

import nstutils as nu
from nstutils import threads as th
from nstutils.provenance import read_result, save_result, stylize_kwargs


class Machine:
    """Fake wall and CPU clocks: ``step(seconds, cores)`` is a step that got ``cores`` cores."""

    def __init__(self):
        self.wall, self.cpu, self.calls = 0.0, 0.0, []

    def governor(self, max_threads=2):
        return th.ThreadGovernor(max_threads, clock=lambda: self.wall, cpu_clock=lambda: self.cpu,
                                 set_threads=self.calls.append)

    def step(self, gov, seconds, cores):
        gov.start()
        self.wall += seconds
        self.cpu += seconds * cores
        return gov.stop()

    def idle(self, seconds):  # a callback, or the time between steps: not measured
        self.wall += seconds


def test_a_run_that_gets_its_cores_keeps_them():
    m = Machine()
    gov = m.governor()
    assert [m.step(gov, 0.3, 1.95) for _ in range(20)] == [2] * 20
    assert m.calls == [] and gov.changes == []


def test_a_crowded_run_tries_one_thread_more_then_drops_to_the_cores_it_gets():
    m = Machine()
    gov = m.governor()
    assert m.step(gov, 0.6, 1.2) == 2  # under one window: nothing decided yet
    assert m.step(gov, 0.6, 1.2) == 3  # 1.2 s measured, 1.2 cores of 2: try 3 threads
    assert m.step(gov, 1.0, 1.0) == 1  # 3 threads got no more than one core (shared among programs)
    assert m.calls == [3, 1] and gov.changes == [(1.2, 3), (2.2, 1)]
    assert gov.schedule == [[0, 2], [0, 3], [0, 1]]  # stop() was called without step numbers here


def test_a_crowded_run_keeps_one_thread_more_when_it_gets_more_cpu():
    m = Machine()
    gov = m.governor()
    m.step(gov, 1.0, 1.2)
    assert m.step(gov, 1.0, 1.35) == 3  # 1.35 cores against the 1 that one thread would get: kept
    for _ in range(13):  # no second look at 3 threads before PROBE_SECONDS: 1.35 cores is the aim
        assert m.step(gov, 1.0, 1.35) == 3
    assert m.step(gov, 1.0, 1.35) == 2  # 15 s after the change: try the cores' count again
    assert m.step(gov, 1.0, 1.95) == 2  # the competitor has gone: kept
    assert m.calls == [3, 2]


def test_one_thread_more_must_beat_the_fallback_clearly():
    m = Machine()
    gov = m.governor()
    m.step(gov, 1.0, 1.2)
    assert m.step(gov, 1.0, 1.0 + th.MORE_MARGIN / 2) == 1


def test_a_slow_callback_does_not_count_as_crowding():
    m = Machine()
    gov = m.governor()
    for _ in range(10):
        m.step(gov, 0.2, 2.0)
        m.idle(1.0)  # one thread drawing a picture: outside the measured steps
    assert gov.threads == 2 and m.calls == []


def test_the_threads_come_back_when_the_competitor_leaves():
    m = Machine()
    gov = m.governor()
    m.step(gov, 1.0, 1.2)
    assert m.step(gov, 1.0, 1.0) == 1
    for _ in range(13):  # one core, while the competitor stays: no try before PROBE_SECONDS
        assert m.step(gov, 1.0, 1.0) == 1
    assert m.step(gov, 1.0, 1.0) == 2  # 15 s after the drop: try both threads
    assert m.step(gov, 1.0, 1.95) == 2  # it got them: kept
    assert m.calls == [3, 1, 2] and [t for _, t in gov.changes] == [3, 1, 2]


def test_failed_tries_wait_twice_as_long_each_time():
    m = Machine()
    gov = m.governor()
    m.step(gov, 1.0, 1.2)
    tries = []
    for _ in range(600):
        before = gov.threads
        m.step(gov, 1.0, 1.2 if gov.threads == 2 else 1.0)  # the competitor never leaves
        if before == 1 and gov.threads == 2:
            tries.append(m.wall)
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    # 30, 60, 120 s from each failed try (the try and the window on 3 threads included), capped
    assert gaps[:4] == [31.0, 61.0, 121.0, 121.0]
    counts = [t for _, t in gov.changes]
    assert counts[:9] == [3, 1, 2, 3, 1, 2, 3, 1, 2]  # each failed try looks at 3 threads again


def test_a_success_resets_the_wait():
    m = Machine()
    gov = m.governor()
    m.step(gov, 1.0, 1.2)
    m.step(gov, 1.0, 1.0)
    for _ in range(14):
        m.step(gov, 1.0, 1.0)
    assert gov.threads == 2
    m.step(gov, 1.0, 1.2)  # the first try fails: next wait 30 s
    assert gov._wait == 2 * th.PROBE_SECONDS
    for _ in range(30):  # a window on 3 threads, then one thread until 30 s after the failed try
        m.step(gov, 1.0, 1.0)
    assert gov.threads == 2
    m.step(gov, 1.0, 1.95)  # this try succeeds: back to the short wait
    assert gov._wait == th.PROBE_SECONDS


def test_many_cores_drop_to_what_the_run_got():
    m = Machine()
    gov = m.governor(8)
    m.step(gov, 2.0, 5.6)
    assert gov.threads == 9
    m.step(gov, 1.0, 5.6)
    assert gov.threads == 6 and m.calls == [9, 6]


def test_many_cores_keep_one_more_when_it_gets_more():
    m = Machine()
    gov = m.governor(8)
    m.step(gov, 2.0, 7.1)  # one competitor among 8 threads
    assert m.step(gov, 1.0, 7.2) == 9  # against 7 on 7 threads


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", None, True])
def test_bad_thread_settings_are_one_clear_error(bad):
    with pytest.raises(ValueError, match="threads must be 'auto', a whole number >= 1 or a schedule"):
        th.check_threads(bad)


def test_governed_restores_torch_thread_count():
    before = torch.get_num_threads()
    with th.governed(1, "cpu") as gov:
        assert gov is None and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with th.governed(1, "cpu"):
            raise RuntimeError("a failing run")
    assert torch.get_num_threads() == before
    with th.governed("auto", "cpu") as gov:
        assert (gov is None) == (before == 1)
    with th.governed(1, "meta") as gov:  # off the CPU: nothing changes
        assert gov is None and torch.get_num_threads() == before


def test_stylize_threads_setting(content, style, extractor):
    before = torch.get_num_threads()
    r = nu.stylize(content, style, extractor, steps=3, threads=1)
    assert r.params["threads"] == 1 and "thread_changes" not in r.params
    assert r.params["thread_schedule"] == [[0, 1]]
    assert torch.get_num_threads() == before
    r = nu.stylize(content, style, extractor, steps=3)
    assert r.params["threads"] == "auto"
    with pytest.raises(ValueError, match="threads must be"):
        nu.stylize(content, style, extractor, steps=3, threads=0)


def test_a_schedule_is_checked():
    assert th.check_threads([[0, 2], [5, 1]]) == [[0, 2], [5, 1]]
    assert th.check_threads(((0, 1),)) == [[0, 1]]
    for bad in ([], [[1, 2]], [[0, 2], [5, 0]], [[0, 2], [5, 1], [5, 2]], [[0, 2, 3]], [0, 2], [[0, True]]):
        with pytest.raises(ValueError, match="schedule"):
            th.check_threads(bad)


def test_the_governor_records_its_schedule_by_step():
    m = Machine()
    gov = m.governor()
    gov.start(); m.wall += 1.0; m.cpu += 1.2; gov.stop(3)
    gov.start(); m.wall += 1.0; m.cpu += 1.0; gov.stop(4)
    assert gov.schedule == [[0, 2], [3, 3], [4, 1]]


def test_a_replay_sets_the_recorded_counts_after_those_steps():
    calls = []
    replay = th.ThreadReplay([[0, 2], [3, 1], [7, 2]], set_threads=calls.append)
    counts = [replay.stop(step) for step in range(1, 10)]
    assert counts == [2, 2, 1, 1, 1, 1, 2, 2, 2] and calls == [1, 2]
    # "auto" runs its first level once per weight it tries: each try starts over from step 0.
    assert replay.reset(0) == 2 and replay.reset(5) == 1 and replay.reset(7) == 2 and calls[2:] == [2, 1, 2]


def test_a_replayed_schedule_gives_the_same_image(content, style, extractor, tmp_path):
    before = torch.get_num_threads()
    first = nu.stylize(content, style, extractor, steps=6, threads=[[0, 1], [2, 2], [4, 1]])
    assert first.params["thread_schedule"] == [[0, 1], [2, 2], [4, 1]]
    again = nu.stylize(content, style, extractor, steps=6, threads=first.params["thread_schedule"])
    assert torch.equal(first.image, again.image) and torch.get_num_threads() == before
    path = tmp_path / "r.png"
    save_result(first, path)
    assert stylize_kwargs(read_result(path).params)["threads"] == [[0, 1], [2, 2], [4, 1]]
