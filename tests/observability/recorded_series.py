"""Turn a recorded StatsD stream into the series a statsd_exporter with the chart's mapping
would have served, scraped every `step` seconds, as OpenMetrics text for
`promtool tsdb create-blocks-from openmetrics`.

Exporter semantics applied: a counter adds each value; a gauge takes the last value; a
timer (ms) feeds a histogram in seconds with the mapping's default buckets.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .statsd_mapping import Mapper

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    bounds: list[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)
        i = bisect.bisect_left(self.bounds, seconds)
        for j in range(i, len(self.bounds)):
            self.counts[j] += 1
        self.total += seconds
        self.n += 1


def read_recording(path: Path) -> list[tuple[float, str, float, str]]:
    out = []
    for line in path.read_text().splitlines():
        offset, sample = line.split(" ", 1)
        name, rest = sample.split(":", 1)
        value, kind = rest.split("|")[:2]
        out.append((float(offset), name, float(value), kind))
    return out


def openmetrics(
    recording: Path,
    mapping: Path,
    end: float,
    extra: dict[str, str],
    step: float = 5.0,
) -> str:
    """Series values at each scrape, the last scrape at `end` (unix seconds)."""
    mapper = Mapper.from_file(mapping)
    buckets = [
        float(b)
        for b in yaml.safe_load(mapping.read_text())["defaults"]["histogram_options"]["buckets"]
    ]
    events = read_recording(recording)
    duration = events[-1][0]
    start = end - duration
    values: dict[tuple[str, Labels], float] = {}
    histograms: dict[tuple[str, Labels], _Histogram] = {}
    samples: dict[tuple[str, Labels], list[tuple[float, float]]] = defaultdict(list)
    base = tuple(sorted(extra.items()))

    def scrape(at: float) -> None:
        for key, value in values.items():
            samples[key].append((at, value))
        for (name, labels), h in histograms.items():
            for bound, count in zip(h.bounds, h.counts, strict=True):
                le = tuple(sorted((*labels, ("le", f"{bound:g}"))))
                samples[(f"{name}_bucket", le)].append((at, count))
            samples[(f"{name}_bucket", tuple(sorted((*labels, ("le", "+Inf")))))].append((at, h.n))
            samples[(f"{name}_sum", labels)].append((at, h.total))
            samples[(f"{name}_count", labels)].append((at, h.n))

    next_scrape = 0.0
    for offset, statsd_name, value, kind in events:
        while offset > next_scrape:
            scrape(start + next_scrape)
            next_scrape += step
        mapped = mapper.map(statsd_name)
        if mapped is None:
            continue
        key = (mapped.name, tuple(sorted((*mapped.labels, *base))))
        if kind == "c":
            values[key] = values.get(key, 0.0) + value
        elif kind == "g":
            values[key] = value
        elif kind in ("ms", "h"):
            histograms.setdefault(key, _Histogram(buckets)).observe(value / 1000.0)
    scrape(start + next_scrape)

    lines = []
    for (name, labels), points in sorted(samples.items()):
        rendered = ",".join(f'{k}="{v}"' for k, v in labels)
        lines += [f"{name}{{{rendered}}} {v:g} {t:.3f}" for t, v in points]
    return "\n".join(lines) + "\n# EOF\n"
