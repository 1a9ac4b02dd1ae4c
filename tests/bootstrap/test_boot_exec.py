"""The whole entrypoint as the chart runs it: the final command replaces the process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from boot_helpers import PodDirs

CLI = str(Path(sys.executable).parent / "airflow-platform")

REPORT = """
import json, os, sys, cowsay
json.dump({"pid": os.getpid(), "env": dict(os.environ), "path": sys.path,
           "cowsay": cowsay.__file__, "argv": sys.argv[1:]}, open(sys.argv[1], "w"))
"""


@pytest.mark.integration
def test_bootstrap_execs_the_command_with_the_final_environment(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_startup('export TEAM_SETTING="from startup"\n')
    pod.write_requirements("cowsay==6.1\n")
    (pod.make_plugins() / "team_plugin.py").write_text("VALUE = 1\n")
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [CLI, "bootstrap", "--component", "api-server", "--",
         sys.executable, "-c", REPORT, str(report), "--flag"],
        env=pod.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    seen = json.loads(report.read_text())
    assert seen["pid"] == proc.pid  # exec'd in place, not a child
    assert seen["argv"] == [str(report), "--flag"]
    assert seen["env"]["TEAM_SETTING"] == "from startup"
    assert seen["env"]["MWAA_AIRFLOW_COMPONENT"] == "webserver"
    assert seen["env"]["AIRFLOW_PLATFORM_COMPONENT"] == "api-server"
    assert seen["path"][1:3] == [str(pod.packages), str(pod.layout.plugins)]
    assert seen["cowsay"].startswith(str(pod.packages))
    assert "[bootstrap] exec" in err and "requirements: installed" in err


@pytest.mark.integration
def test_bootstrap_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_startup("export PYTHONPATH=/mine\n")
    out = subprocess.run(
        [CLI, "bootstrap", "--component", "scheduler", "--", "airflow", "scheduler"],
        env=pod.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 3
    assert "[bootstrap] error:" in out.stderr and "PYTHONPATH" in out.stderr
    pod.layout.startup_script.unlink()
    missing = subprocess.run(
        [CLI, "bootstrap", "--component", "worker", "--", "no-such-command-here"],
        env=pod.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 3 and "cannot run 'no-such-command-here'" in missing.stderr
