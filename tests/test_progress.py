import pytest

from napari_vesselgraph.progress import TimeLeft


def test_time_left_counts_the_pace_since_the_first_step_not_the_set_up():
    """30 s of set-up, then 0.2 s per step over 300 steps: at 10 % the estimate is the 54 s left, where the pace
    since the start (set-up included) would say 3.5 times more."""
    eta = TimeLeft(t0=0.0)
    first = eta.estimate(1, 300, now=30.2)
    assert first == pytest.approx(30.2 * 299)  # one step seen: nothing better to go by
    est = eta.estimate(30, 300, now=30.2 + 29 * 0.2)
    assert est == pytest.approx(0.2 * 270)
    assert (30.2 + 29 * 0.2) / 30 * 270 > 3 * est


def test_time_left_before_a_second_step_uses_the_pace_since_start():
    eta = TimeLeft(t0=10.0)
    assert eta.estimate(5, 10, now=20.0) == pytest.approx(10.0)  # 2 s/step since start, 5 steps left
    assert eta.estimate(5, 10, now=21.0) == pytest.approx(11.0 / 5 * 5)  # still no later step
