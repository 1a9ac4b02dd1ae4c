#!/usr/bin/env bash
# Build the Kubernetes control plane used by the cluster test tier, once per machine.
#
# Only Debian's archives are reachable here, so the binaries come from Debian sources:
#   kube-apiserver, kube-controller-manager, kube-scheduler  <- bookworm source package
#     `kubernetes` (1.20.5+really1.20.2: the upstream v1.20.2 tree with vendor/), built
#     with Go 1.15 unpacked from bullseye's golang-1.15-{go,src} (newer Go is not known
#     to build 1.20);
#   etcd                                                       <- bookworm `etcd-server` (3.4).
# The binaries are built `providerless`: without the in-tree AWS, Azure, GCE, OpenStack and
# vSphere cloud providers, which no test uses. That compiles about a third less code.
# Nothing is installed system-wide but missing build tools (rsync, make, dpkg-dev): apt runs
# with a private source list and state directory, packages are unpacked with `dpkg -x`.
#
# Result: $KUBE_CACHE/bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}
# (default ~/.cache/airflow-platform/kube-1.20.2). A second run finds them and exits.
set -euo pipefail

KUBE_VERSION=1.20.2
CACHE_ROOT="${AIRFLOW_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airflow-platform}"
KUBE_CACHE="${KUBE_CACHE:-$CACHE_ROOT/kube-$KUBE_VERSION}"
BIN="$KUBE_CACHE/bin"
WORK="$KUBE_CACHE/work"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
# The build is shared with other work on small machines: cap Go's parallelism.
BUILD_JOBS="${KUBE_BUILD_JOBS:-$(($(nproc) > 2 ? $(nproc) - 1 : 2))}"

say() { printf '[kube-build %(%H:%M:%S)T] %s\n' -1 "$*"; }

have_all() {
  local name
  for name in etcd "${BINARIES[@]}"; do
    [[ -x "$BIN/$name" ]] || return 1
  done
}

if have_all; then
  say "cached binaries in $BIN"
  exit 0
fi

started=$SECONDS
mkdir -p "$BIN" "$WORK"
# One builder at a time: a second `make test` on the same machine waits for the first.
exec 9>"$KUBE_CACHE/.build.lock"
flock 9
if have_all; then
  say "another build finished: $BIN"
  exit 0
fi

# --- private apt: bookworm (deb + deb-src) and bullseye (deb), outside /etc/apt -------
APT_DIR="$WORK/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial" "$APT_DIR/etc/preferences.d"
cat >"$APT_DIR/etc/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bullseye main
EOF
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list"
  -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "Dir::Cache::archives=$APT_DIR/archives"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
  -q
)
say "apt: reading bookworm and bullseye package lists (private state in $APT_DIR)"
apt-get "${APT_OPTS[@]}" update >"$WORK/apt-update.log" 2>&1 ||
  { cat "$WORK/apt-update.log"; exit 1; }

fetch_deb() { # fetch_deb <package>=<version>|<package>/<suite> -> unpack into $WORK/root
  (cd "$WORK/debs" && apt-get "${APT_OPTS[@]}" download "$1" >/dev/null)
}
mkdir -p "$WORK/debs" "$WORK/root"

# --- Go 1.15 -------------------------------------------------------------------------
GOROOT="$WORK/root/usr/lib/go-1.15"
if [[ ! -x "$GOROOT/bin/go" ]]; then
  say "fetching Go 1.15 (bullseye golang-1.15-go, golang-1.15-src)"
  fetch_deb golang-1.15-go/bullseye
  fetch_deb golang-1.15-src/bullseye
  for deb in "$WORK"/debs/golang-1.15-*.deb; do dpkg -x "$deb" "$WORK/root"; done
fi
say "$("$GOROOT/bin/go" version)"

# --- etcd 3.4 --------------------------------------------------------------------------
if [[ ! -x "$BIN/etcd" ]]; then
  say "fetching etcd (bookworm etcd-server)"
  fetch_deb etcd-server/bookworm
  dpkg -x "$(ls "$WORK"/debs/etcd-server_*.deb | head -1)" "$WORK/root"
  install -m 0755 "$WORK/root/usr/bin/etcd" "$BIN/etcd"
fi
say "$("$BIN/etcd" --version | head -1)"

# --- build tools: rsync (the upstream build copies its output with it), make, dpkg-source --
need=()
command -v rsync >/dev/null || need+=(rsync)
command -v make >/dev/null || need+=(make)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if ((${#need[@]})); then
  say "installing ${need[*]} (system apt)"
  apt-get -q install -y --no-install-recommends "${need[@]}" >"$WORK/apt-install.log" 2>&1 ||
    { cat "$WORK/apt-install.log"; exit 1; }
fi

# --- kubernetes source -----------------------------------------------------------------
SRC="$WORK/src"
if [[ ! -f "$SRC/.unpacked" ]]; then
  say "fetching the bookworm kubernetes source package (~30 MB)"
  mkdir -p "$WORK/source"
  (cd "$WORK/source" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes/bookworm >/dev/null)
  rm -rf "$SRC"
  say "unpacking the source tree"
  dsc="$(ls "$WORK"/source/kubernetes_*.dsc | head -1)"
  dpkg-source --no-check -x "$dsc" "$SRC" >/dev/null
  touch "$SRC/.unpacked"
fi


# The tree has no .git: stamp the version the API server reports (helm checks it).
IFS=. read -r major minor _ <<<"$KUBE_VERSION"
cat >"$WORK/version.env" <<EOF
KUBE_GIT_VERSION='v$KUBE_VERSION'
KUBE_GIT_MAJOR='$major'
KUBE_GIT_MINOR='$minor'
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
KUBE_GIT_TREE_STATE='clean'
EOF

say "building ${BINARIES[*]} with $BUILD_JOBS parallel jobs (about 3.5 minutes on 2 idle cores)"
build_log="$WORK/make.log"
(
  cd "$SRC"
  # The upstream build reads the build tags from GOFLAGS' -tags.
  export GOROOT PATH="$GOROOT/bin:$PATH" GOFLAGS="-p=$BUILD_JOBS -tags=providerless" GO111MODULE=on \
    GOPROXY=off GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
    KUBE_GIT_VERSION_FILE="$WORK/version.env" KUBE_BUILD_PLATFORMS=linux/amd64
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler"
) >"$build_log" 2>&1 &
make_pid=$!
# Progress: Go prints little while compiling, so report the elapsed time and the log's last line.
while kill -0 "$make_pid" 2>/dev/null; do
  sleep 30
  kill -0 "$make_pid" 2>/dev/null || break
  say "  ... still building ($((SECONDS - started)) s): $(tail -n 1 "$build_log" | cut -c1-100)"
done
if ! wait "$make_pid"; then
  say "build failed; last lines of $build_log:"
  tail -n 40 "$build_log"
  exit 1
fi

for name in "${BINARIES[@]}"; do
  install -m 0755 "$SRC/_output/local/bin/linux/amd64/$name" "$BIN/$name"
done
say "$("$BIN/kube-apiserver" --version)"
# Only the binaries are kept: Go, the sources and the build cache (~800 MB) are re-fetched
# in seconds should a rebuild ever be needed.
echo "$((SECONDS - started))" >"$KUBE_CACHE/build-seconds"
rm -rf "$WORK"
say "done in $((SECONDS - started)) s: $BIN"
