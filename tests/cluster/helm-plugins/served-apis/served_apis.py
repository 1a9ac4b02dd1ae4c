"""Post-render the chart for an older cluster: objects in an API version the cluster does not
serve are rewritten to the older version it does serve, when the two share the schema.

Usage: served_apis.py <file listing the served group/versions, one per line>
Reads the rendered manifests on stdin, writes them to stdout. Every rewrite is reported on
stderr and appended to $CLUSTER_TEST_REWRITES when set, so the tests can show what changed.
Objects with no known older equivalent pass unchanged: the API server then rejects them,
which is the honest outcome."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

# (apiVersion, kind) -> (older apiVersion, fields the older version lacks)
FALLBACKS: dict[tuple[str, str], tuple[str, tuple[tuple[str, ...], ...]]] = {
    # policy/v1 is 1.21+; v1beta1 has the same spec (unhealthyPodEvictionPolicy is 1.26+).
    ("policy/v1", "PodDisruptionBudget"): (
        "policy/v1beta1",
        (("spec", "unhealthyPodEvictionPolicy"),),
    ),
    # autoscaling/v2 is 1.23+; v2beta2 has the same spec, behavior included.
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("autoscaling/v2beta2", ()),
    # batch/v1 CronJob is 1.21+; v1beta1 has the same spec but no timeZone (1.24+).
    ("batch/v1", "CronJob"): ("batch/v1beta1", (("spec", "timeZone"),)),
}


def _drop(obj: dict, path: tuple[str, ...]) -> bool:
    *parents, leaf = path
    for key in parents:
        obj = obj.get(key) or {}
    return obj.pop(leaf, None) is not None


def rewrite(documents: list, served: set[str]) -> tuple[list, list[str]]:
    notes: list[str] = []
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        if key[0] in served or key not in FALLBACKS:
            continue
        older, missing = FALLBACKS[key]
        if older not in served:
            continue
        doc["apiVersion"] = older
        dropped = [".".join(p) for p in missing if _drop(doc, p)]
        name = (doc.get("metadata") or {}).get("name", "?")
        note = f"{key[1]}/{name}: {key[0]} -> {older}"
        notes.append(note + (f" (dropped {', '.join(dropped)})" if dropped else ""))
    return documents, notes


def main() -> int:
    served = {line.strip() for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()}
    documents = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
    documents, notes = rewrite(documents, served)
    for note in notes:
        print(f"served-apis: {note}", file=sys.stderr)
    record = os.environ.get("CLUSTER_TEST_REWRITES")
    if record and notes:
        with open(record, "a") as fh:
            fh.write("".join(n + "\n" for n in notes))
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
