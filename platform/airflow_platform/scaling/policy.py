"""The worker scaling policy: MWAA's formula with a drain-safe, windowed scale-in.

    target(t)  = clamp(ceil((running + queued) / tasks_per_worker), min_workers, max_workers)
    scale up   : as soon as target(t) > current workers, to target(t).
    scale in   : to the highest target seen during the last `scale_in_idle_seconds`, once
                 that is below the current workers — i.e. only after demand has stayed
                 below capacity for the whole window — and never below the workers that
                 still run tasks (clamped to [min, max]).

MWAA's rule "back to min after 2 minutes without tasks" is the special case where every
target in the window is min. Taking the window's maximum (as the Kubernetes HPA does with
a scale-down stabilization window) generalizes it: a trickle of work keeps the capacity it
needed at its peak within the window instead of flapping between min and the peak.

Targets form a step function: an observation's target holds until the next observation, so
a high target seen once is remembered for a full window after the *next* observation, even
when observations are sparse. The policy refuses to scale in during the first window after
it starts, since it does not know the demand before its first observation.

Everything here is deterministic: no clock is read; the caller passes `Observation.at`
(seconds, monotonic). Tests drive the policy with traces.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    SCALE_UP = "scale_up"
    SCALE_IN = "scale_in"
    HOLD = "hold"


@dataclass(frozen=True)
class PolicyConfig:
    min_workers: int = 1
    max_workers: int = 10
    tasks_per_worker: int = 5
    scale_in_idle_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.min_workers < 0:
            raise ValueError(f"min_workers must be >= 0, got {self.min_workers}")
        if self.max_workers < max(self.min_workers, 1):
            raise ValueError(
                f"max_workers ({self.max_workers}) must be >= 1 and >= min_workers "
                f"({self.min_workers}); raise max_workers or lower min_workers"
            )
        if self.tasks_per_worker < 1:
            raise ValueError(f"tasks_per_worker must be >= 1, got {self.tasks_per_worker}")
        if not math.isfinite(self.scale_in_idle_seconds) or self.scale_in_idle_seconds < 0:
            raise ValueError(
                f"scale_in_idle_seconds must be a finite number >= 0, "
                f"got {self.scale_in_idle_seconds}"
            )

    def clamp(self, workers: int) -> int:
        return max(self.min_workers, min(self.max_workers, workers))

    def target(self, running: int, queued: int) -> int:
        """MWAA's formula: enough workers for every running and queued task, clamped."""
        return self.clamp(math.ceil((running + queued) / self.tasks_per_worker))


@dataclass(frozen=True)
class Observation:
    at: float  # seconds on a monotonic clock
    running: int  # task instances in state running
    queued: int  # task instances in state queued
    busy_workers: int  # workers that run at least one task
    current_workers: int  # workers that exist now (ready or starting)

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise ValueError(f"observation.at must be a finite number, got {self.at}")
        for name in ("running", "queued", "busy_workers", "current_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"observation.{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class Decision:
    at: float
    desired: int  # workers to run from now on
    action: Action
    target: int  # MWAA's formula for this observation alone
    window_target: int  # the highest target within the idle window
    reason: str


class ScalingPolicy:
    """Feed observations in time order; each returns the decision for that moment."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self._started_at: float | None = None
        self._last_at: float | None = None
        # (time, target) steps still relevant to the window, oldest first.
        self._steps: deque[tuple[float, int]] = deque()

    def observe(self, obs: Observation) -> Decision:
        cfg = self.config
        if self._last_at is not None and obs.at < self._last_at:
            raise ValueError(
                f"observation.at went backwards ({obs.at} < {self._last_at}); "
                "pass times from a monotonic clock"
            )
        if self._started_at is None:
            self._started_at = obs.at
        self._last_at = obs.at

        target = cfg.target(obs.running, obs.queued)
        self._steps.append((obs.at, target))
        window_start = obs.at - cfg.scale_in_idle_seconds
        # A step lasts until the next one starts; drop it once that start is out of the window.
        while len(self._steps) > 1 and self._steps[1][0] <= window_start:
            self._steps.popleft()
        window_target = max(t for _, t in self._steps)
        current = obs.current_workers

        def decide(desired: int, action: Action, reason: str) -> Decision:
            return Decision(obs.at, desired, action, target, window_target, reason)

        if target > current:
            return decide(
                target,
                Action.SCALE_UP,
                f"{obs.running + obs.queued} running+queued tasks need {target} workers",
            )
        if current > cfg.max_workers:
            return decide(cfg.max_workers, Action.SCALE_IN, "above max_workers")
        if obs.at - self._started_at < cfg.scale_in_idle_seconds:
            return decide(current, Action.HOLD, "first idle window since start")
        floor = cfg.clamp(max(window_target, obs.busy_workers))
        if floor < current:
            return decide(
                floor,
                Action.SCALE_IN,
                f"demand stayed at or below {window_target} workers for "
                f"{cfg.scale_in_idle_seconds:g}s; {obs.busy_workers} busy",
            )
        if window_target < current:
            return decide(current, Action.HOLD, f"{obs.busy_workers} workers still run tasks")
        return decide(current, Action.HOLD, "capacity matches demand within the window")
