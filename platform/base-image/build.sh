#!/usr/bin/env bash
# Builds the platform's base image from Debian packages and PyPI (no registry is needed):
#   platform/base-image/build.sh localhost/airflow-platform-base:TAG [ROOTFS_TARBALL]
# 1. debootstrap a minimal bookworm with Python 3.11, venv, CA certificates and dumb-init
#    (skipped when ROOTFS_TARBALL exists: the tarball is the cache of this step);
# 2. import it as localhost/airflow-platform-debian:bookworm;
# 3. buildah runs Containerfile on it (the airflow user, the venv, Airflow at the pins of
#    platform/constraints.txt).
# Needs root (debootstrap), podman, buildah and debootstrap (scripts/bootstrap.sh installs
# them on Debian). The host's CA bundle is mounted into the install step only, for hosts
# whose HTTPS goes through a CA of their own; it is not copied into the image.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLATFORM=$(dirname "$HERE")
TAG=${1:?usage: build.sh IMAGE_TAG [ROOTFS_TARBALL]}
ROOTFS_TAR=${2:-}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates,dumb-init
DEBIAN_IMAGE=localhost/airflow-platform-debian:$SUITE
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PLATFORM/containers/containers.conf}

say() { printf '\033[1m[base-image]\033[0m %s\n' "$*"; }
[[ $(id -u) -eq 0 ]] || { echo "build.sh needs root (debootstrap): run it with sudo" >&2; exit 1; }
for tool in debootstrap podman buildah; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run ./scripts/bootstrap.sh" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z $ROOTFS_TAR || ! -s $ROOTFS_TAR ]]; then
  say "debootstrap $SUITE ($PACKAGES)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  out=${ROOTFS_TAR:-$work/rootfs.tar}
  mkdir -p "$(dirname "$out")"
  tar -C "$work/rootfs" -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$work/rootfs"
  ROOTFS_TAR=$out
fi
say "importing $ROOTFS_TAR as $DEBIAN_IMAGE"
podman import -q --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null

mounts=()
[[ -f $CA_BUNDLE ]] && mounts=(-v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
say "building $TAG (Airflow + providers at the pins of platform/constraints.txt)"
buildah --runtime runc --cgroup-manager cgroupfs bud --quiet \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  "${mounts[@]}" \
  --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" \
  -f "$HERE/Containerfile" -t "$TAG" "$PLATFORM" >/dev/null
say "built $TAG"
