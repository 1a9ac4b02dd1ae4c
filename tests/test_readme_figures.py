"""The benchmark figures the READMEs quote are the medians and ratios of the committed
bench/results files (written by bench/*/run.py through bench/_runner.py).

Each claim is a pattern over a README's text (whitespace collapsed, so line breaks do not
matter) whose named groups are figures; each group names the result file and the figure
key it quotes. A quoted figure must equal the result rounded to the quoted precision. In
README.md's benchmark section, every number with a unit of time, size or ratio must be one
of those groups, so a figure cannot be added there without being checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _runner import FIGURE_LINE  # noqa: E402

README = "README.md"
CHART_README = "charts/airflow-platform/README.md"
SECTION = ("Figures on a 2-core machine", "## Layout")
# A number (or a range, with an en dash) followed by a unit of time, size or ratio.
NUMBER = r"\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(rf"(?<![\w.]){NUMBER}(?:\u2013{NUMBER})?\s?(?:s|ms|x|MB|min)(?!\w)")
N = r"(?P<{}>\d[\d,]*(?:\.\d+)?)"


@dataclass(frozen=True)
class Claim:
    readme: str
    pattern: str  # {name} stands for a number group
    figures: dict[str, tuple[str, str]]  # group -> (bench, key)

    def regex(self) -> re.Pattern[str]:
        parts = re.split(r"\{(\w+)\}", self.pattern)
        out = "".join(
            N.format(part) if i % 2 else re.escape(part).replace(r"\ ", r"\s+")
            for i, part in enumerate(parts)
        )
        return re.compile(out)


def F(bench: str, key: str) -> tuple[str, str]:
    return (bench, key)


CLAIMS = [
    Claim(
        README,
        "a component starts {ratio}x faster than MWAA's `pip install -r` at every start "
        "({warm} ms vs {baseline} ms)",
        {
            "ratio": F("bootstrap", "bootstrap.ratio.baseline_warm"),
            "warm": F("bootstrap", "bootstrap.warm"),
            "baseline": F("bootstrap", "bootstrap.baseline"),
        },
    ),
    Claim(
        README,
        "`ops snapshot create --method pg_dump` median {snap} s ({mb} MB dump), `ops restore` "
        "median {restore} s",
        {
            "snap": F("ops", "ops.snapshot"),
            "mb": F("ops", "ops.dump_mb"),
            "restore": F("ops", "ops.restore"),
        },
    ),
    Claim(
        README,
        "S3 put to DAG visible in the API p50 {p50} s, p95 {p95} s over 20 uploads",
        {
            "p50": F("dagsync-visibility", "visibility.p50"),
            "p95": F("dagsync-visibility", "visibility.p95"),
        },
    ),
    Claim(
        README,
        "an upload shows at p50 {p50} s, p95 {p95} s: its loop never idles",
        {
            "p50": F("dagsync-visibility-reparse-30", "visibility.p50"),
            "p95": F("dagsync-visibility-reparse-30", "visibility.p95"),
        },
    ),
    Claim(
        README,
        "100 DAG files, median {cold} s with a new requirements cache and {warm} s with it "
        "warm; 1,000 DAG files, median {cold_k} s and {warm_k} s.",
        {
            "cold": F("migrate", "migrate.100.cold"),
            "warm": F("migrate", "migrate.100.warm"),
            "cold_k": F("migrate", "migrate.1000.cold"),
            "warm_k": F("migrate", "migrate.1000.warm"),
        },
    ),
    Claim(
        README,
        "Like for like, the platform is {ratio}x faster than stock (wall median {p} s against "
        "{s} s), and {fratio}x faster from trigger to first task ({fp} s against {fs} s)",
        {
            "ratio": F("local", "fanout.wall.ratio"),
            "p": F("local", "fanout.wall.platform"),
            "s": F("local", "fanout.wall.stock"),
            "fratio": F("local", "fanout.first_task.ratio"),
            "fp": F("local", "fanout.first_task.platform"),
            "fs": F("local", "fanout.first_task.stock"),
        },
    ),
    Claim(
        README,
        "(median {cpu} s of CPU per run;",
        {"cpu": F("local", "fanout.cpu_worker.platform")},
    ),
    Claim(
        README,
        "S3 put to DAG visible in the API: median {up} s over 20 uploads",
        {"up": F("local", "local.upload_visible")},
    ),
    Claim(
        README,
        "on / off {ratio}x, wall median {on} s against {off} s;",
        {
            "ratio": F("statsd", "statsd.wall.on_over_off"),
            "on": F("statsd", "statsd.wall.on"),
            "off": F("statsd", "statsd.wall.off"),
        },
    ),
    Claim(
        README,
        "`local down` with the workers idle, median {down} s; `local up` warm (state kept, "
        "about ten Airflow processes starting on the two cores), median {up} s.",
        {
            "down": F("local-up-down", "local.down_idle"),
            "up": F("local-up-down", "local.up_warm"),
        },
    ),
    Claim(
        README,
        "found cached in median {cached} s; the base image is {base} MB and the platform image "
        "{image} MB. From the first `podman kube play` to every component Ready takes median "
        "{ready} s, of which the migrations Job {job} s, against {local} s for `local up` (cold) "
        "with host processes: {ratio}x. The worker container, with its 5 Celery processes, holds "
        "median {worker} MB resident; the scheduler {scheduler} MB, the API server {api} MB",
        {
            "cached": F("containers", "containers.cached_build"),
            "base": F("containers", "containers.base_mb"),
            "image": F("containers", "containers.platform_mb"),
            "ready": F("containers", "containers.ready"),
            "job": F("containers", "containers.job"),
            "local": F("containers", "containers.local_up"),
            "ratio": F("containers", "containers.ratio_local"),
            "worker": F("containers", "containers.rss_worker"),
            "scheduler": F("containers", "containers.rss_scheduler"),
            "api": F("containers", "containers.rss_api-server"),
        },
    ),
    Claim(
        README,
        "run as a pod, takes median {shipped} s of CPU against {none} s with the virtualenv's "
        "bytecode removed: {ratio}x less. Start to exit of that container: {start}x faster.",
        {
            "shipped": F("containers-bytecode", "bytecode.cpu.shipped"),
            "none": F("containers-bytecode", "bytecode.cpu.none"),
            "ratio": F("containers-bytecode", "bytecode.cpu.ratio"),
            "start": F("containers-bytecode", "bytecode.container.ratio"),
        },
    ),
    Claim(
        README,
        "is {cold_r}x faster than `aws s3 sync` cold ({cold} s against {cold_aws} s) and "
        "{inc_r}x faster after 1% of the files changed ({inc} s against {inc_aws} s); against "
        "Airflow's S3DagBundle it is {b_cold}x faster cold and {b_inc}x incremental.",
        {
            "cold_r": F("dagsync", "dagsync.cold.ratio_aws"),
            "cold": F("dagsync", "dagsync.cold.once"),
            "cold_aws": F("dagsync", "dagsync.cold.aws"),
            "inc_r": F("dagsync", "dagsync.incremental.ratio_aws"),
            "inc": F("dagsync", "dagsync.incremental.once"),
            "inc_aws": F("dagsync", "dagsync.incremental.aws"),
            "b_cold": F("dagsync", "dagsync.cold.ratio_bundle"),
            "b_inc": F("dagsync", "dagsync.incremental.ratio_bundle"),
        },
    ),
    Claim(
        README,
        "on disk {ev} s after the last put ({ev_r}x faster than `aws s3 sync`), and a single "
        "upload in median {up} s, p95 {p95} s; in fan-out mode, on all 3 sidecars in p95 {fan} s.",
        {
            "ev": F("dagsync", "dagsync.event.incremental"),
            "ev_r": F("dagsync", "dagsync.event.ratio_aws"),
            "up": F("dagsync", "dagsync.event.upload"),
            "p95": F("dagsync", "dagsync.event.upload.p95"),
            "fan": F("dagsync", "dagsync.fanout.upload.p95"),
        },
    ),
]


def committed(bench: str) -> dict[str, float]:
    """The figures of the latest committed result of a bench (the file itself outside git)."""
    rel = f"bench/results/{bench}.txt"
    shown = subprocess.run(
        ["git", "show", f"HEAD:{rel}"], cwd=REPO, capture_output=True, text=True, check=False
    )
    text = shown.stdout if shown.returncode == 0 else (REPO / rel).read_text()
    figures = {}
    for line in text.splitlines():
        match = FIGURE_LINE.match(line)
        if match:
            figures[match["key"]] = float(match["value"])
    return figures


def flat(readme: str) -> str:
    return " ".join((REPO / readme).read_text().split())


def agrees(quoted: str, actual: float) -> bool:
    digits = len(quoted.partition(".")[2])
    return abs(float(quoted.replace(",", "")) - actual) <= 0.5 * 10**-digits + 1e-9


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: next(iter(c.figures.values()))[1])
def test_each_quoted_figure_is_the_committed_result(claim: Claim) -> None:
    match = claim.regex().search(flat(claim.readme))
    assert match, f"{claim.readme} no longer says: {claim.pattern}"
    for group, (bench, key) in claim.figures.items():
        results = committed(bench)
        assert key in results, f"bench/results/{bench}.txt has no [{key}]"
        assert agrees(match[group], results[key]), (
            f"{claim.readme} quotes {match[group]} for [{key}], "
            f"bench/results/{bench}.txt says {results[key]}"
        )


def test_every_figure_of_the_benchmark_section_is_checked() -> None:
    text = flat(README)
    start, end = text.index(SECTION[0]), text.index(SECTION[1])
    checked: list[tuple[int, int]] = []
    for claim in CLAIMS:
        if claim.readme == README and (match := claim.regex().search(text)):
            checked += [match.span(group) for group in claim.figures]
    unchecked = [
        m.group()
        for m in FIGURE.finditer(text, start, end)
        if not any(a <= m.start() < b for a, b in checked)
    ]
    assert not unchecked, f"README figures that no result backs: {unchecked}"


def test_a_wrong_figure_is_caught() -> None:
    """The check itself can fail: a figure off by one unit of its last digit disagrees, and a
    sentence whose words changed no longer matches its claim."""
    assert agrees("1.5", 1.46) and agrees("1.5", 1.54) and agrees("1,746", 1746.2)
    assert not agrees("1.5", 1.56) and not agrees("12", 13.0)
    claim = Claim(README, "takes {a} s against {b} s ({r}x)", {})
    match = claim.regex().search("it takes 1.2 s\n  against 3.4 s (2.8x)")
    assert match and (match["a"], match["b"], match["r"]) == ("1.2", "3.4", "2.8")
    assert claim.regex().search("it takes 1.2 s versus 3.4 s (2.8x)") is None
    line = "[dagsync.cold.once] cold, dagsync --once: median 12.71 s (9.72-21.93, n=3)"
    assert FIGURE_LINE.match(line)["value"] == "12.71"  # type: ignore[index]
