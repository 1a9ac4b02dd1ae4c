"""No value can inject YAML: every string the schema allows is rendered as a quoted scalar.

The string-typed value paths are found by walking values.schema.json (nested objects, map
values, array items, $refs), not listed by hand, so a value added later is covered too.
Each path gets payloads that would add a key or a document if a template wrote the value
unquoted; helm must either refuse the value, naming it, or render manifests that parse,
hold no injected key anywhere, and carry the payload only inside a string scalar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from airflow_platform.merge import deep_merge

from .conftest import CHART, HelmError, Rendering

pytestmark = pytest.mark.chart

SCHEMA = json.loads((CHART / "values.schema.json").read_text())

PAYLOADS = {
    "newline-key": "x\nhostPID: true",
    "quote-break": 'x"\n  privileged: true',
    "template": "{{ .Release.Name }}",
    "new-document": "x\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: injected}",
}

# Every optional feature on, so each value reaches the manifests it can reach.
FEATURES: dict[str, Any] = {
    "executionRoleArn": "arn:aws:iam::123456789012:role/airflow",
    "aws": {"accountId": "123456789012"},
    "kedaDatabase": {"existingSecret": "keda-database"},
    "dags": {
        "s3": {
            "pluginsKey": "plugins.zip",
            "requirementsKey": "requirements.txt",
            "startupScriptKey": "startup.sh",
        },
        "sync": {"eventTopicArn": "arn:aws:sns:us-east-1:123456789012:airflow-dags"},
    },
    "requirements": {"cache": {"existingClaim": "requirements-cache"}},
    "ingress": {
        "host": "airflow.example.com",
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
        "groupName": "shared",
        "inboundCidrs": ["10.0.0.0/8"],
    },
    "logging": {"cloudwatch": {"enabled": True}},
    "metrics": {"statsd": {"host": "statsd.example"}},
    "pgbouncer": {
        "enabled": True,
        "configSecret": "pgbouncer-config",
        "connectionSecret": {"secretName": "pgbouncer-connection"},
    },
    "secretsBackend": {
        "type": "vault",
        "vault": {"url": "https://vault.example:8200", "role": "airflow", "configPath": "c"},
        "aws": {"configPrefix": "airflow/config"},
    },
    "tags": {"team": "data"},
    # The Vault backend needs its network peer when NetworkPolicies are on.
    "database": {"resultBackendSecret": {"existingSecret": "airflow-results"}},
    "networkPolicy": {
        "database": {"cidrs": ["10.0.16.0/20"]},
        "vaultTo": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
    },
    "canary": {"enabled": True},
}
# The AWS Secrets Manager backend renders its own values (the vault ones then rest).
# The AWS base also runs the statsd_exporter with its monitors and the pre-upgrade snapshot.
FEATURES_AWS = deep_merge(
    FEATURES,
    {
        "secretsBackend": {"type": "aws"},
        "metrics": {
            "statsd": {"host": ""},
            "statsdExporter": {"enabled": True},
            "serviceMonitor": {"enabled": True},
        },
        "snapshot": {"enabled": True, "dbClusterIdentifier": "airflow-aurora"},
        # Asymmetric token signing (its values are rendered only then), the JWKS in a Secret.
        "secrets": {
            "jwtSecret": {"secretName": ""},
            "jwtSigning": {
                "enabled": True,
                "privateKey": {"secretName": "airflow-jwt-signing"},
                "publicKeys": {"kind": "Secret", "name": "airflow-jwks"},
                "kid": "airflow-1",
            },
        },
    },
)

# Helm's reserved `global` is free-form and unused by this chart: nothing to render.
NOT_RENDERED = {("global",)}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        schema = {**SCHEMA["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type", [])
    return set(kind if isinstance(kind, list) else [kind])


def _map_key(schema: dict[str, Any]) -> str:
    """A key the map accepts (its propertyNames or patternProperties pattern)."""
    patterns = [*schema.get("patternProperties", {})]
    names = schema.get("propertyNames", {})
    patterns += [names["pattern"]] if "pattern" in names else []
    for candidate in ("probe-key", "core.probe"):
        if all(re.search(p, candidate) for p in patterns):
            return candidate
    raise AssertionError(f"no sample key fits {patterns}")


def _sample(schema: dict[str, Any]) -> Any:
    """A valid value for a required sibling field."""
    schema = _resolve(schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "examples" in schema:  # a pattern-constrained field shows a valid value
        return schema["examples"][0]
    types = _types(schema)
    if "integer" in types:
        return max(1, schema.get("minimum", 1))
    if "array" in types:
        return []
    return "probe" if "string" in types else {}


Path = tuple[Any, ...]


def string_paths(
    schema: dict[str, Any], path: Path = (), fill: dict[Path, Any] | None = None
) -> Iterator[tuple[Path, str, dict[Path, Any]]]:
    """(path, kind, required siblings to fill) of every string and free-form object value."""
    schema = _resolve(schema)
    fill = dict(fill or {})
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from string_paths(branch, path, fill)
    types = _types(schema)
    if "string" in types:
        yield path, "string", fill
    children: list[tuple[Any, dict[str, Any], bool]] = [
        (name, sub, False) for name, sub in schema.get("properties", {}).items()
    ]
    for sub in schema.get("patternProperties", {}).values():
        children.append((_map_key(schema), sub, True))
    if isinstance(schema.get("additionalProperties"), dict):
        children.append((_map_key(schema), schema["additionalProperties"], True))
    if "items" in schema:
        children.append((0, schema["items"], True))
    for name, sub, new_element in children:
        sub = _resolve(sub)
        child_fill = dict(fill)
        if new_element:  # a fresh map value or list item: its required fields must be given
            for required in sub.get("required", []):
                child_fill[(*path, name, required)] = _sample(sub["properties"][required])
        yield from string_paths(sub, (*path, name), child_fill)
    if types == {"object"} and not children and path not in NOT_RENDERED:
        yield path, "object", fill


def _nest(path: Path, value: Any) -> Any:
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    return value


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a[k], b[k]) if k in a and k in b else b.get(k, a.get(k)) for k in a | b}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(x, y) for x, y in zip(a, b, strict=True)]
    return b


def overlay(path: Path, kind: str, fill: dict[Path, Any], payload: str) -> dict[str, Any]:
    value: Any = payload if kind == "string" else {"probe": payload}
    values: Any = _nest(path, value)
    for sibling, sample in fill.items():
        if sibling != path:
            values = _merge(_nest(sibling, sample), values)
    return values


def _walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) of every mapping, and (None, scalar) of every list scalar."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield None, item
            yield from _walk(item)


def _carries(scalar: str, payload: str) -> bool:
    return payload in scalar or json.dumps(payload)[1:-1] in scalar


# A marked payload (see variant) carries "#<n>#"; lookahead so "#1#2#" yields both marks.
MARK = re.compile(r"(?=#(\d+)#)")


class _Payloads:
    """Which payloads a scalar may carry: those whose mark it holds, and any unmarked one.
    Checking only those keeps a batch of hundreds of payloads from costing a substring search
    per payload in every scalar of every manifest."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.by_mark: dict[str, list[int]] = {}
        self.unmarked: list[int] = []
        for index, payload in enumerate(payloads):
            marks = set(MARK.findall(payload))
            for mark in marks:
                self.by_mark.setdefault(mark, []).append(index)
            if not marks:
                self.unmarked.append(index)

    def carried_by(self, scalar: str) -> list[int]:
        candidates = set(self.unmarked)
        for mark in MARK.findall(scalar):
            candidates.update(self.by_mark.get(mark, ()))
        return [i for i in sorted(candidates) if _carries(scalar, self.payloads[i])]


def escapes(rendering: Rendering, payloads: list[str]) -> tuple[list[str], set[int]]:
    """How a payload escaped its scalar ([] = none did), and the indexes of the payloads
    that some string scalar carries (a missing one reached no manifest)."""
    problems: list[str] = []
    carried: set[int] = set()
    marked = _Payloads(payloads)
    for obj in rendering.objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("metadata", {}).get("name") == "injected":
            problems.append(f"{where}: an injected document")
        for key, value in _walk(obj):
            if key in ("hostPID", "hostNetwork", "hostIPC"):
                problems.append(f"{where}: injected key {key}")
            if key == "privileged" and value is not False:
                problems.append(f"{where}: privileged is {value!r}")
            if isinstance(key, str) and marked.carried_by(key):
                problems.append(f"{where}: a payload became the key {key!r}")
            if isinstance(value, str):
                carried.update(marked.carried_by(value))
    return problems, carried


def variant(payload: str, index: int) -> str:
    """The payload marked so each value of a batch can be found: same shape, own text."""
    if payload.startswith("x"):
        return f"x#{index}#{payload[1:]}"
    return f"{payload} #{index}#"


PATHS = list(string_paths(SCHEMA))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def _id(path: Path) -> str:
    return ".".join(str(p) for p in path)


def _pointer(path: Path) -> str:
    return "/" + "/".join(str(p) for p in path)


def test_the_walk_finds_the_values_users_control() -> None:
    found = {_id(path) for path, _, _ in string_paths(SCHEMA)}
    # A few of every kind: top-level, nested, $ref'd, map values, array items, free-form.
    assert {
        "image.repository",
        "pgbouncer.image.tag",
        "secretsBackend.vault.tokenAudience",
        "scheduler.serviceAccount.roleArn",
        "workers.podAnnotations.probe-key",
        "airflowConfigurationOptions.core.probe",
        "airflowConfigurationSecrets.core.probe.secretName",
        "ingress.inboundCidrs.0",
        "imagePullSecrets.0.name",
        "tags.probe-key",
        "apiServer.affinity",
        "dags.sync.resources.limits.probe-key",
    } <= found
    assert len(found) >= 100, len(found)


def test_the_escape_check_sees_every_way_out() -> None:
    """The detector itself: an injected key, a payload turned into a key, an injected document,
    and which marked payloads (raw or JSON-escaped) a scalar carries."""
    payloads = [variant(PAYLOADS["newline-key"], 0), variant(PAYLOADS["template"], 12),
                variant(PAYLOADS["quote-break"], 1)]  # fmt: skip
    inert = {"kind": "ConfigMap", "metadata": {"name": "ok"},
             "data": {"a": payloads[0], "b": json.dumps({"v": payloads[1]})}}  # fmt: skip
    assert escapes(Rendering(objects=[inert], text=""), payloads) == ([], {0, 1})
    hostile = [
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostPID": True}},
        {"kind": "Pod", "metadata": {"name": "injected"}},
        {"kind": "ConfigMap", "metadata": {"name": "k"}, "data": {payloads[2]: "v"}},
    ]
    problems, carried = escapes(Rendering(objects=hostile, text=""), payloads)
    assert problems == ["Pod/p: injected key hostPID", "Pod/injected: an injected document",
                        f"ConfigMap/k: a payload became the key {payloads[2]!r}"]  # fmt: skip
    assert carried == set()


def _refused_naming(error: HelmError, path: Path) -> bool:
    names = (f"at '{_pointer(path)}'", _id(path), f'["{path[-1]}"]')
    return any(name in error.stderr for name in names)


def _batch(cases: list[tuple[Path, str, dict[Path, Any]]], payloads: list[str]) -> dict[str, Any]:
    """One values overlay setting each case's path to its payload (required siblings filled
    first, so a sibling's fill never hides another case's payload)."""
    fills: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for (path, kind, fill), payload in zip(cases, payloads, strict=True):
        for sibling, sample in fill.items():
            fills = _merge(fills, _nest(sibling, sample))
        values = _merge(values, overlay(path, kind, {}, payload))
    return _merge(fills, values)


def _split(render, cases, payloads: list[str]) -> list[str]:
    half = len(cases) // 2
    return _check_rendered(render, cases[:half], payloads[:half]) + _check_rendered(
        render, cases[half:], payloads[half:]
    )


def _check_rendered(render, cases, payloads: list[str]) -> list[str]:
    """Render the cases together with each base; every payload must stay a string scalar
    and reach a manifest with some base. A failing batch is split until the culprits show."""
    values = _batch(cases, payloads)
    carried: set[int] = set()
    for base in (FEATURES, FEATURES_AWS):
        try:
            rendering = render(deep_merge(base, values))
        except HelmError as error:
            if len(cases) == 1:
                if _refused_naming(error, cases[0][0]):
                    return []
                return [f"{_id(cases[0][0])}: refused without naming it: {error.stderr[:400]}"]
            return _split(render, cases, payloads)
        problems, seen = escapes(rendering, payloads)
        if problems:
            if len(cases) == 1:
                return [f"{_id(cases[0][0])}: {'; '.join(sorted(set(problems)))}"]
            return _split(render, cases, payloads)
        carried |= seen
    missing = [index for index in range(len(cases)) if index not in carried]
    if missing and len(cases) > 1:
        # A value can hide another of the same batch (a component's own lifecycle replaces
        # airflowPods.lifecycle): retry in halves until each is rendered alone.
        return _split(render, cases, payloads)
    return [
        f"{_id(cases[index][0])}: its payload reached no manifest with any base"
        for index in missing
    ]


def test_every_string_value_is_refused_or_rendered_inert(render) -> None:
    """For each payload: the values the schema refuses are set together and helm must refuse
    each at its own path (helm lists every schema violation); the others are set together,
    each marked, and must all stay string scalars and reach a manifest."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    base = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    full = deep_merge(deep_merge(defaults, base), FEATURES)
    failures: list[str] = []
    rendered_cases = 0
    for payload_id, payload in PAYLOADS.items():
        refused: list[tuple[Path, str, dict[Path, Any]]] = []
        accepted: list[tuple[Path, str, dict[Path, Any]]] = []
        for path, kind, fill in PATHS:
            schema_ok = VALIDATOR.is_valid(deep_merge(full, overlay(path, kind, fill, payload)))
            (accepted if schema_ok else refused).append((path, kind, fill))
        try:
            render(deep_merge(FEATURES, _batch(refused, [payload] * len(refused))))
        except HelmError as error:
            failures += [
                f"{_id(path)} [{payload_id}]: helm did not refuse it"
                for path, _, _ in refused
                if f"at '{_pointer(path)}'" not in error.stderr
            ]
        else:
            failures.append(f"[{payload_id}]: helm rendered values its schema refuses")
        marked = [variant(payload, index) for index in range(len(accepted))]
        failures += [f"[{payload_id}] {why}" for why in _check_rendered(render, accepted, marked)]
        rendered_cases += len(accepted)
    assert not failures, "\n".join(failures)
    assert rendered_cases >= 4 * 20  # free-form values rendered and checked, not only refused
