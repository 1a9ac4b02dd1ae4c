"""AirflowConfigurationOptions through Airflow 3.3.2's own config-update rules (the
CONFIGS_CHANGES that `airflow config lint` and `airflow config update` apply, read from
the installed Airflow by the probe) and the platform's refused keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_platform.environment.config_rules import config_option_problems
from airflow_platform.migrate.findings import Finding

FILE = "environment.json"


@dataclass
class ConfigOutcome:
    findings: list[Finding] = field(default_factory=list)
    rewritten: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One Airflow rule about an option, applied to one value."""

    level: str
    message: str
    fix: str
    new_key: str | None  # None: drop the option; the same key: keep it


def apply_change(key: str, value: str, rule: dict[str, Any]) -> Change | None:
    """What Airflow's rule `rule` says about `key` = `value` (None: nothing)."""
    section = key.split(".", 1)[0]
    suggestion = str(rule.get("suggestion") or "").strip()
    if rule.get("default_change"):
        new = rule.get("new_default")
        if str(value) != str(new):
            return Change(
                "info",
                f"the default of {key} changed from {rule.get('old_default')} to {new}; "
                f"you set {value}",
                suggestion or "keep it if you rely on it",
                key,
            )
    renamed = rule.get("renamed_to")
    if renamed:
        new_key = f"{renamed[0]}.{renamed[1]}"
        moved = "moved to" if renamed[0] != section else "renamed to"
        return Change(
            "blocker" if rule.get("breaking") else "warning",
            f"{key} is {moved} {new_key} in Airflow 3; the old name is no longer read",
            f"set {new_key} instead (the rewritten options do)",
            new_key,
        )
    if rule.get("was_removed"):
        only_if = rule.get("remove_if_equals")
        if only_if is None or str(value) == str(only_if):
            what = "deprecated option" if rule.get("was_deprecated") else "option"
            return Change(
                "blocker" if rule.get("breaking") else "warning",
                f"{key}: Airflow 3 removed this {what}",
                suggestion or "remove it (the rewritten options do)",
                None,
            )
    invalid = rule.get("is_invalid_if")
    if invalid is not None and str(value) == str(invalid):
        return Change(
            "blocker",
            f"{key} = {value} is not a valid value in Airflow 3",
            suggestion or "change the value",
            key,
        )
    return None


def check_options(
    options: dict[str, Any], rules: list[dict[str, Any]], known: set[str]
) -> ConfigOutcome:
    outcome = ConfigOutcome()
    by_key = {f"{r['section']}.{r['option']}".lower(): r for r in rules}
    for raw_key, raw_value in sorted(options.items()):
        key, value = str(raw_key), str(raw_value)
        where = f"AirflowConfigurationOptions[{key!r}]"
        new_key: str | None = key
        rule = by_key.get(key.lower()) if "." in key else None
        change = apply_change(key, value, rule) if rule else None
        if change is not None:
            outcome.findings.append(
                Finding(
                    "MIG060",
                    change.level,
                    FILE,
                    None,
                    f"{where}: {change.message}",  # type: ignore[arg-type]
                    change.fix,
                    "airflow",
                )
            )
            new_key = change.new_key
        elif known and key.lower() not in known and "." in key:
            outcome.findings.append(
                Finding(
                    "MIG060",
                    "info",
                    FILE,
                    None,
                    f"{where}: Airflow 3.3.2 and its installed providers define no such option",
                    "check the spelling, or remove it if it served an Airflow 2 feature",
                    "airflow",
                )
            )
        if new_key is None:
            continue
        refused = config_option_problems(new_key, value)
        if refused:
            for problem in refused:
                outcome.findings.append(
                    Finding(
                        "MIG061",
                        "warning",
                        FILE,
                        None,
                        f"AirflowConfigurationOptions[{new_key!r}]: {problem.message}",
                        "`env import` drops it; set what the message names instead",
                        "platform",
                    )
                )
            continue
        outcome.rewritten[new_key] = value
    return outcome


def catchup_by_default(options: dict[str, Any]) -> bool:
    """Airflow 3's effective [scheduler] catchup_by_default for this environment."""
    value = str(options.get("scheduler.catchup_by_default", "False")).strip().lower()
    return value in ("true", "1", "t", "yes", "on")
