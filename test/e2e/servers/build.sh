#!/usr/bin/env bash
# Builds the real servers the end-to-end suites run (etcd, kube-apiserver, MinIO) from the Go
# module proxy, each pinned by a committed wrapper module in this directory, into a cache outside
# the clone so that later runs (and CI on the same machine) reuse them.
#
#   test/e2e/servers/build.sh [NAME...]     build what is missing (default: every server)
#   test/e2e/servers/build.sh --print-dir   print the cache's bin directory
#
# A binary's file name carries a hash of its wrapper's go.mod and go.sum, so changing a pinned
# version rebuilds it and never reuses a stale binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${FLIPT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flipt-sidecar-injector}
bindir="$cache/bin"

if [[ ${1:-} == --print-dir ]]; then
  echo "$bindir"
  exit 0
fi

# binary_path NAME: where NAME's binary lives for the wrapper's current pins.
binary_path() {
  local sum
  sum=$(cat "$here/$1/go.mod" "$here/$1/go.sum" | sha256sum | cut -c1-12)
  echo "$bindir/$1-$sum"
}

# main_package NAME: the wrapper's single `tool` line names the main package to build.
main_package() {
  awk '$1 == "tool" { print $2 }' "$here/$1/go.mod"
}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  names=(etcd kube-apiserver minio)
fi

mkdir -p "$bindir"
# One build at a time per cache (two test runs, or CI and a developer, on one machine): the second
# waits, then finds the binary built. Without flock (not Linux) builds are simply not serialised.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build.lock"
  flock 9
fi
for name in "${names[@]}"; do
  if [[ ! -f $here/$name/go.mod ]]; then
    echo "build.sh: unknown server '$name' (no $here/$name/go.mod)" >&2
    exit 1
  fi
  out=$(binary_path "$name")
  if [[ -x $out ]]; then
    echo "build.sh: $name up to date ($out)"
    ln -sfn "$(basename "$out")" "$bindir/$name"
    continue
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: $name is not built and the Go toolchain (go >= 1.26) is required to build it; install Go and retry" >&2
    exit 1
  fi
  pkg=$(main_package "$name")
  echo "build.sh: building $name from $pkg ..."
  start=$(date +%s)
  # -trimpath and no VCS stamping keep the build independent of this checkout's path and state.
  if ! (cd "$here/$name" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out.tmp.$$" "$pkg"); then
    rm -f "$out.tmp.$$"
    echo "build.sh: building $name failed (see the go output above)" >&2
    exit 1
  fi
  mv "$out.tmp.$$" "$out"
  ln -sfn "$(basename "$out")" "$bindir/$name"
  echo "build.sh: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
done
