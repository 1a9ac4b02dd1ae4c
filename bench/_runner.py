"""What every bench shares: interleaved runs, median and spread, and the result file.

Compared variants run interleaved (round r runs them in the order rotated by r: A B, B A,
A B, ...) so that the load other users put on the machine falls on all of them alike, and
each figure is printed as its median with the spread (min-max) over the runs. Every
figure line carries a key in brackets, `[key] median 1.23 s (1.10-1.40, n=3)`, which
tests/test_readme_figures.py reads back from the result file to check the READMEs.

    report = Report("dagsync")                 # prints, and records what it prints
    runs = interleave({"a": run_a, "b": run_b}, 3, report.say)
    report.figure("a.cold", "cold sync, a", runs["a"]["seconds"])
    report.ratio("cold.b_over_a", "cold b / a", runs["b"]["seconds"], runs["a"]["seconds"])
    report.write()                             # bench/results/dagsync.txt
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
MIN_RUNS = 3
# `[key] label: median 1.23 ...` or `[key] label: 1.23x`; labels hold no colon.
FIGURE_LINE = re.compile(r"^\[(?P<key>[\w.\-]+)\][^:]*:\s*(?:median\s+)?(?P<value>-?\d+(?:\.\d+)?)")

# A run returns one figure (seconds) or several, by name.
Run = Callable[[], float | Mapping[str, float]]


def commit() -> str:
    """The checkout's commit, marked -dirty when bench/ or the package differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "bench", "platform", "charts", ":!bench/results")
    return f"{sha}-dirty" if dirty else sha


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    """`median 1.23 s (1.10-1.40, n=3)`."""
    med, low, high = statistics.median(values), min(values), max(values)
    return f"median {med:.{digits}f} {unit} ({low:.{digits}f}-{high:.{digits}f}, n={len(values)})"


def interleave(
    variants: Mapping[str, Run], runs: int, say: Callable[[str], None] = print
) -> dict[str, dict[str, list[float]]]:
    """Run every variant `runs` times (at least MIN_RUNS), interleaved; returns
    variant -> figure -> values (a run that returns a float gives the figure "seconds")."""
    runs = max(MIN_RUNS, runs)
    names = list(variants)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for r in range(runs):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            got = variants[name]()
            figures = {"seconds": float(got)} if isinstance(got, int | float) else dict(got)
            for figure, value in figures.items():
                out[name].setdefault(figure, []).append(float(value))
            shown = ", ".join(f"{k} {v:.3g}" for k, v in figures.items())
            say(f"    round {r + 1} {name}: {shown}")
    return out


class Report:
    """Prints lines and keeps them for bench/results/<bench>.txt."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.lines: list[str] = []
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.say(
            f"# bench/{bench}: {when}, {os.cpu_count()} CPU cores, "
            f"load average {os.getloadavg()[0]:.1f}, commit {commit()}"
        )

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def figure(
        self, key: str, label: str, values: list[float], unit: str = "s", digits: int = 2
    ) -> float:
        """One figure: its median and spread; returns the median."""
        self.say(f"[{key}] {label}: {spread(values, unit, digits)}")
        return statistics.median(values)

    def ratio(self, key: str, label: str, slower: list[float], faster: list[float]) -> float:
        """The ratio of two medians (how many times `faster` is faster than `slower`)."""
        value = statistics.median(slower) / statistics.median(faster)
        self.say(f"[{key}] {label}: {value:.2f}x (ratio of the medians)")
        return value

    def value(self, key: str, label: str, value: float, unit: str = "", digits: int = 2) -> None:
        """A figure that is not timed over runs (a size, a count)."""
        self.say(f"[{key}] {label}: {value:.{digits}f}{' ' + unit if unit else ''}")

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.bench}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        print(f"(written to {path.relative_to(REPO)})", flush=True)
        return path


def read_figures(path: Path) -> dict[str, float]:
    """key -> the first number of its line (the median, or the ratio) in a result file."""
    figures = {}
    for line in path.read_text().splitlines():
        match = FIGURE_LINE.match(line)
        if match:
            figures[match["key"]] = float(match["value"])
    return figures
