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


def test_time_left_counts_validations_apart():
    """A 10 s source measurement before step 1, 0.2 s per step, a 10 s validation every 50 of 300 steps and a
    final one: at step 30 (no validation seen yet) the estimate is the 54 s of steps plus the 6 validations to come;
    after the first validation the step pace leaves it out."""
    eta = TimeLeft(t0=0.0, val_every=50)
    assert eta.update(0, 300, {"phase": "measuring the source", "validation": True}, now=2.0) is None
    t = 12.0  # the measurement took 10 s
    assert eta.update(1, 300, {"loss": 1.0}, now=t + 0.2) is not None
    assert eta.val_cost == pytest.approx(10.2)  # up to the next report: the measurement and one step
    eta.val_cost = 10.0
    truth_left = lambda step: 0.2 * (300 - step) + 10.0 * (300 // 50 - step // 50)  # noqa: E731
    est = eta.update(30, 300, {"loss": 1.0}, now=t + 0.2 * 30)
    assert est == pytest.approx(truth_left(30), rel=1e-6)
    now = t + 0.2 * 50 + 10.0  # step 50 and its validation
    est = eta.update(50, 300, {"loss": 1.0, "val": {"node_f1": 0.5}}, now=now)
    assert eta.n_val == 1
    assert est == pytest.approx(truth_left(50), rel=1e-6)
    plain = TimeLeft(t0=0.0)  # without val_every: the plain pace since the first step
    plain.update(1, 300, {}, now=12.2)
    assert plain.update(30, 300, {}, now=18.0) == pytest.approx(5.8 / 29 * 270)
