"""MWAA environment classes and the capacity rules that come with each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvironmentClassSpec:
    name: str
    max_dags: int
    tasks_per_worker: int
    schedulers: tuple[int, int]  # allowed (min, max); MWAA's default is the min
    webservers: tuple[int, int]
    max_workers_limit: int
    default_max_workers: int


# MWAA caps MaxWorkers at 25 by default (a service quota); mw1.micro runs a single worker
# inside its one scheduler and cannot scale out.
ENVIRONMENT_CLASSES: dict[str, EnvironmentClassSpec] = {
    spec.name: spec
    for spec in (
        EnvironmentClassSpec("mw1.micro", 25, 3, (1, 1), (1, 1), 1, 1),
        EnvironmentClassSpec("mw1.small", 50, 5, (2, 5), (2, 5), 25, 10),
        EnvironmentClassSpec("mw1.medium", 250, 10, (2, 5), (2, 5), 25, 10),
        EnvironmentClassSpec("mw1.large", 1000, 20, (2, 5), (2, 5), 25, 10),
        EnvironmentClassSpec("mw1.xlarge", 2000, 40, (2, 5), (2, 5), 25, 10),
        EnvironmentClassSpec("mw1.2xlarge", 4000, 80, (2, 5), (2, 5), 25, 10),
    )
}

DEFAULT_ENVIRONMENT_CLASS = "mw1.small"
