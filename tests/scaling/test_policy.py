"""The scaling policy driven by traces; every step's decision is checked."""

from __future__ import annotations

import pytest

from airflow_platform.scaling.policy import (
    Action,
    Observation,
    PolicyConfig,
    ScalingPolicy,
)

UP, IN, HOLD = Action.SCALE_UP, Action.SCALE_IN, Action.HOLD

# Rows: (at, running, queued, busy_workers, current_workers) -> (desired, action)
Row = tuple[float, int, int, int, int, int, Action]


def run_trace(config: PolicyConfig, rows: list[Row]) -> None:
    policy = ScalingPolicy(config)
    for step, (at, running, queued, busy, current, want_desired, want_action) in enumerate(rows):
        decision = policy.observe(Observation(at, running, queued, busy, current))
        got = (decision.desired, decision.action)
        assert got == (want_desired, want_action), (
            f"step {step} at t={at}: got {got}, want {(want_desired, want_action)} "
            f"({decision.reason})"
        )


def closed_loop(config: PolicyConfig, demand: list[tuple[float, int, int, int]], start: int):
    """Workers follow every decision at once; returns the worker count after each step."""
    policy = ScalingPolicy(config)
    current, history = start, []
    for at, running, queued, busy in demand:
        current = policy.observe(Observation(at, running, queued, busy, current)).desired
        history.append(current)
    return history


SMALL = PolicyConfig(min_workers=1, max_workers=3, tasks_per_worker=3, scale_in_idle_seconds=120)


def test_formula_is_ceil_of_running_plus_queued_clamped():
    cfg = PolicyConfig(min_workers=2, max_workers=10, tasks_per_worker=5)
    assert [cfg.target(r, q) for r, q in [(0, 0), (1, 0), (10, 0), (10, 1), (3, 8), (500, 0)]] == [
        2,
        2,
        2,
        3,
        3,
        10,
    ]


def test_burst_scales_up_at_once_and_back_to_min_after_the_window():
    run_trace(
        SMALL,
        [
            (0, 0, 0, 0, 1, 1, HOLD),
            (5, 0, 12, 0, 1, 3, UP),  # 12 tasks / 3 per worker = 4, clamped to max 3
            (10, 3, 9, 1, 3, 3, HOLD),
            (30, 9, 3, 3, 3, 3, HOLD),
            (60, 9, 0, 3, 3, 3, HOLD),
            (90, 0, 0, 0, 3, 3, HOLD),  # demand gone at t=90: window starts
            (150, 0, 0, 0, 3, 3, HOLD),
            (209, 0, 0, 0, 3, 3, HOLD),  # 119 s idle
            (210, 0, 0, 0, 3, 1, IN),  # exactly 120 s idle: back to min
            (215, 0, 0, 0, 1, 1, HOLD),
        ],
    )


def test_scale_in_goes_to_the_highest_demand_in_the_window_not_straight_to_min():
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=5, scale_in_idle_seconds=60)
    run_trace(
        cfg,
        [
            (0, 0, 50, 0, 1, 10, UP),
            (10, 20, 0, 4, 10, 10, HOLD),  # target 4 from here on
            (40, 12, 0, 3, 10, 10, HOLD),  # target 3
            (69, 12, 0, 3, 10, 10, HOLD),
            (70, 12, 0, 3, 10, 4, IN),  # 60 s below 10: the window's peak is 4
            (99, 12, 0, 3, 4, 4, HOLD),
            (100, 12, 0, 3, 4, 3, IN),  # target 4 held until t=40, so left the window at 100
            (130, 12, 0, 3, 3, 3, HOLD),
        ],
    )


def test_never_below_busy_workers_even_when_demand_is_lower():
    # Long tasks: 2 tasks left on 2 different workers; the formula says 1 worker.
    run_trace(
        SMALL,
        [
            (0, 9, 0, 3, 3, 3, HOLD),
            (10, 2, 0, 2, 3, 3, HOLD),
            (130, 2, 0, 2, 3, 2, IN),  # window passed: 1 wanted, 2 still busy
            (200, 2, 0, 2, 2, 2, HOLD),
            (400, 1, 0, 1, 2, 1, IN),  # one long task finished
            (500, 0, 0, 0, 1, 1, HOLD),
        ],
    )


def test_busy_floor_does_not_exceed_max_workers():
    cfg = PolicyConfig(min_workers=1, max_workers=2, tasks_per_worker=1, scale_in_idle_seconds=10)
    run_trace(cfg, [(0, 1, 0, 4, 4, 2, IN), (20, 1, 0, 4, 2, 2, HOLD)])


def test_trickle_keeps_its_peak_and_never_flaps():
    # One task every 50 s lasting 20 s: demand alternates 0/1 worker's worth.
    cfg = PolicyConfig(min_workers=0, max_workers=5, tasks_per_worker=5, scale_in_idle_seconds=120)
    demand = []
    for cycle in range(10):
        start = cycle * 50.0
        demand += [(start, 1, 0, 1), (start + 20, 0, 0, 0)]
    demand += [(500 + 10 * i, 0, 0, 0) for i in range(15)]
    history = closed_loop(cfg, demand, start=0)
    assert history[:20] == [1] * 20
    # Last task ended at t=470; the 0-worker target holds since then.
    idle_from = 470.0
    for (at, *_), workers in zip(demand[20:], history[20:], strict=True):
        assert workers == (0 if at - idle_from >= 120 else 1), f"t={at}"


def test_flapping_demand_holds_capacity_instead_of_oscillating():
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=5, scale_in_idle_seconds=120)
    demand = [(t * 30.0, 0 if t % 2 else 25, 0, 0 if t % 2 else 5) for t in range(20)]
    history = closed_loop(cfg, demand, start=1)
    assert history == [5] * 20
    policy = ScalingPolicy(cfg)
    actions = [policy.observe(Observation(at, r, q, b, 5)).action for at, r, q, b in demand]
    assert UP not in actions and IN not in actions


def test_bursts_during_the_window_restart_it():
    run_trace(
        SMALL,
        [
            (0, 0, 9, 0, 1, 3, UP),
            (10, 0, 0, 0, 3, 3, HOLD),
            (100, 0, 4, 0, 3, 3, HOLD),  # burst of 2 workers' worth: still below 3
            (105, 0, 0, 0, 3, 3, HOLD),
            (130, 0, 0, 0, 3, 2, IN),  # 120 s below 3 (since t=10); peak in window was 2
            (225, 0, 0, 0, 2, 1, IN),  # 120 s after the burst ended at t=105
        ],
    )


def test_scale_up_is_immediate_even_inside_the_window():
    run_trace(
        SMALL,
        [
            (0, 0, 0, 0, 1, 1, HOLD),
            (0.5, 0, 4, 0, 1, 2, UP),
            (0.6, 0, 7, 0, 2, 3, UP),
            (0.7, 0, 100, 0, 3, 3, HOLD),  # at max
        ],
    )


def test_sparse_observations_keep_a_peak_until_a_full_window_after_it_ended():
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=1, scale_in_idle_seconds=60)
    run_trace(
        cfg,
        [
            (0, 5, 0, 5, 5, 5, HOLD),
            # Next sample 500 s later: demand 5 is assumed to have held until now.
            (500, 0, 0, 0, 5, 5, HOLD),
            (559, 0, 0, 0, 5, 5, HOLD),
            (560, 0, 0, 0, 5, 1, IN),
        ],
    )


def test_no_scale_in_during_the_first_window_after_start():
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=5, scale_in_idle_seconds=120)
    run_trace(
        cfg,
        [
            (1000, 0, 0, 0, 6, 6, HOLD),  # unknown history: keep what runs
            (1119, 0, 0, 0, 6, 6, HOLD),
            (1120, 0, 0, 0, 6, 1, IN),
        ],
    )


def test_zero_window_scales_in_on_the_next_observation():
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=5, scale_in_idle_seconds=0)
    run_trace(
        cfg,
        [(0, 20, 0, 4, 1, 4, UP), (1, 0, 0, 0, 4, 1, IN), (1, 0, 0, 0, 1, 1, HOLD)],
    )


def test_repeated_timestamps_are_accepted_and_time_going_back_is_refused():
    policy = ScalingPolicy(SMALL)
    policy.observe(Observation(10, 0, 0, 0, 1))
    policy.observe(Observation(10, 3, 0, 1, 1))
    with pytest.raises(ValueError, match=r"observation\.at went backwards"):
        policy.observe(Observation(9.99, 0, 0, 0, 1))


def test_current_above_max_is_brought_down_at_once():
    run_trace(SMALL, [(0, 0, 0, 0, 7, 3, IN)])


def test_below_min_is_raised_at_once():
    cfg = PolicyConfig(min_workers=2, max_workers=4, tasks_per_worker=5)
    run_trace(cfg, [(0, 0, 0, 0, 0, 2, UP)])


def test_large_clock_values_and_fractional_windows():
    base = 1.7e9  # epoch seconds work as well as monotonic ones
    cfg = PolicyConfig(min_workers=1, max_workers=4, tasks_per_worker=2, scale_in_idle_seconds=0.5)
    run_trace(
        cfg,
        [
            (base, 0, 8, 0, 1, 4, UP),
            (base + 0.25, 0, 0, 0, 4, 4, HOLD),
            (base + 0.5, 0, 0, 0, 4, 4, HOLD),
            (base + 0.75, 0, 0, 0, 4, 1, IN),
        ],
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_workers": -1}, "min_workers"),
        ({"min_workers": 5, "max_workers": 3}, "max_workers"),
        ({"min_workers": 0, "max_workers": 0}, "max_workers"),
        ({"tasks_per_worker": 0}, "tasks_per_worker"),
        ({"scale_in_idle_seconds": -1}, "scale_in_idle_seconds"),
        ({"scale_in_idle_seconds": float("nan")}, "scale_in_idle_seconds"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PolicyConfig(**kwargs)


@pytest.mark.parametrize("field", ["running", "queued", "busy_workers", "current_workers"])
def test_bad_observation_names_the_field(field):
    values = {"at": 0.0, "running": 0, "queued": 0, "busy_workers": 0, "current_workers": 1}
    values[field] = -1
    with pytest.raises(ValueError, match=f"observation.{field}"):
        Observation(**values)
