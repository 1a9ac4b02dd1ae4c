"""The translation rows that need no podman: what the kubelet would have done to a value."""

from __future__ import annotations

from pathlib import Path

from containers_kube import _expand_dependent_env


def test_dependent_variables_expand_like_the_kubelet(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "url").write_text("postgresql://results@db/airflow")
    env = [
        {"name": "FIRST", "value": "one"},
        {"name": "URL", "valueFrom": {"secretKeyRef": {"name": "results", "key": "url"}}},
        {"name": "BACKEND", "value": "db+$(URL)"},
        {"name": "BOTH", "value": "$(FIRST)-$(BACKEND)"},
        {"name": "ESCAPED", "value": "$$(FIRST)"},
        {"name": "UNKNOWN", "value": "$(LATER)"},
        {"name": "LATER", "value": "defined after its use"},
    ]
    _expand_dependent_env(env, lambda name: tmp_path / name)
    values = {e["name"]: e.get("value") for e in env}
    assert values["BACKEND"] == "db+postgresql://results@db/airflow"
    assert values["BOTH"] == "one-db+postgresql://results@db/airflow"
    assert values["ESCAPED"] == "$(FIRST)"
    assert values["UNKNOWN"] == "$(LATER)"  # only earlier variables, as in Kubernetes
    assert "value" not in env[1]  # the Secret reference itself is played as it was rendered
