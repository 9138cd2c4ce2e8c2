#!/usr/bin/env bash
# Builds the real servers the end-to-end suites run into a cache outside the clone, so that later
# runs (and CI on the same machine) reuse them:
# - etcd, kube-apiserver, kube-controller-manager and MinIO from the Go module proxy, each pinned by
#   a committed wrapper module in this directory (kube-controller-manager shares kube-apiserver's);
# - flipt (v1.61.1) from a source tarball or a checkout of the tag, because the module proxy refuses
#   go.flipt.io: FLIPT_SOURCE, by default ../shared/vendor/flipt/flipt-v1.61.1-src.tar.gz beside
#   the clone;
# - registry (the CNCF distribution registry, v3.1.2), only when named: the OCI-storage comparison
#   (BENCH_PARTS=oci npm run bench:cache) pushes Flipt bundles to it; no suite needs it.
#
#   test/e2e/servers/build.sh [NAME...]     build what is missing (default: every server but registry)
#   test/e2e/servers/build.sh --print-dir   print the cache's bin directory
#
# A binary's file name carries a hash of what pins it (the wrapper's go.mod and go.sum; for flipt the
# source's sha256 and the Go version), so changing a pin rebuilds it and never reuses a stale binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cache=${FLIPT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flipt-sidecar-injector}
bindir="$cache/bin"
flipt_version=v1.61.1
flipt_source=${FLIPT_SOURCE:-$root/../shared/vendor/flipt/flipt-$flipt_version-src.tar.gz}
# Flipt v1.61.1 pins a commit of this module that the module proxy refuses (403); the same package at
# this older pseudo-version is served and only wraps a zap logger for the OPA authz bundle engine.
ozap_module=github.com/open-policy-agent/contrib/logging/plugins/ozap
ozap_served=v0.0.0-20240305195513-547d54e7c251

if [[ ${1:-} == --print-dir ]]; then
  echo "$bindir"
  exit 0
fi

die() {
  echo "build.sh: $*" >&2
  exit 1
}

# wrapper NAME: the directory whose go.mod pins NAME.
wrapper() {
  case $1 in
    kube-controller-manager) echo "$here/kube-apiserver" ;;
    *) echo "$here/$1" ;;
  esac
}

# flipt_key: what pins the flipt binary, the source (a tarball's sha256, or a checkout's commit and
# state) and the Go version that compiles it.
flipt_key() {
  local src
  if [[ -f $flipt_source ]]; then
    src=$(sha256sum "$flipt_source" | cut -d' ' -f1)
  elif [[ -d $flipt_source ]]; then
    src=$(cd "$flipt_source" && if git rev-parse HEAD 2>/dev/null; then git status --porcelain; else
      find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; fi)
  else
    die "flipt: no Flipt $flipt_version source at '$flipt_source'. Provide the source tarball (git archive of the v1.61.1 tag, as in ../shared/vendor/flipt/) or a checkout of the tag with FLIPT_SOURCE=/path/to/it"
  fi
  printf '%s\n%s\n' "$src" "$(go env GOVERSION)"
}

# binary_path NAME: where NAME's binary lives for its current pins.
binary_path() {
  local sum
  if [[ $1 == flipt ]]; then
    sum=$(flipt_key | sha256sum | cut -c1-12)
  else
    sum=$(cat "$(wrapper "$1")/go.mod" "$(wrapper "$1")/go.sum" | sha256sum | cut -c1-12)
  fi
  echo "$bindir/$1-$sum"
}

# main_package NAME: the wrapper's `tool` line that ends in /NAME, or its only tool line.
main_package() {
  awk -v name="$1" '
    $1 == "tool" && $2 != "(" { tools[++n] = $2 }
    $1 == "tool" && $2 == "(" { block = 1; next }
    block && $1 == ")" { block = 0 }
    block { tools[++n] = $1 }
    END {
      for (i = 1; i <= n; i++) if (tools[i] ~ ("/" name "$")) { print tools[i]; exit }
      if (n == 1) print tools[1]
    }' "$(wrapper "$1")/go.mod"
}

# build_wrapped NAME OUT: go build NAME's main package inside its wrapper module.
build_wrapped() {
  local pkg
  pkg=$(main_package "$1")
  [[ -n $pkg ]] || die "no tool line for $1 in $(wrapper "$1")/go.mod"
  echo "build.sh: building $1 from $pkg ..."
  # -trimpath and no VCS stamping keep the build independent of this checkout's path and state.
  (cd "$(wrapper "$1")" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$2" "$pkg")
}

# build_flipt OUT: Flipt from its source (go.mod there replaces go.flipt.io/* with local
# directories), on a scratch copy so a user's checkout is never modified.
build_flipt() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "build.sh: building flipt $flipt_version from $flipt_source ..."
  if [[ -f $flipt_source ]]; then
    tar -xzf "$flipt_source" -C "$work"
  else
    cp -a "$flipt_source" "$work/"
  fi
  local src
  src=$(find "$work" -mindepth 2 -maxdepth 3 -path '*/cmd/flipt' -type d | head -n1)
  [[ -n $src ]] || die "flipt: '$flipt_source' holds no cmd/flipt: is it the Flipt $flipt_version source?"
  src=${src%/cmd/flipt}
  # Flipt's SQLite driver (mattn/go-sqlite3) is cgo: this build needs a C compiler, unlike the others.
  command -v cc >/dev/null 2>&1 || die "flipt: a C compiler (cc) is required for Flipt's SQLite driver; install gcc and retry"
  (cd "$src" &&
    go mod edit -replace "$ozap_module=$ozap_module@$ozap_served" &&
    go build -mod=mod -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=$flipt_version" -o "$1" ./cmd/flipt)
}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  names=(etcd kube-apiserver kube-controller-manager minio flipt)
fi

mkdir -p "$bindir"
# One build at a time per cache (two test runs, or CI and a developer, on one machine): the second
# waits, then finds the binary built. Without flock (not Linux) builds are simply not serialised.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build.lock"
  flock 9
fi
for name in "${names[@]}"; do
  if [[ $name != flipt && ! -f $(wrapper "$name")/go.mod ]]; then
    die "unknown server '$name' (no $(wrapper "$name")/go.mod)"
  fi
  if ! command -v go >/dev/null 2>&1; then
    # Without Go the cache can still serve a binary built earlier under the same pins (not flipt,
    # whose key includes the Go version).
    [[ $name != flipt && -x $(binary_path "$name") ]] ||
      die "$name is not built and the Go toolchain (go >= 1.26) is required to build it; install Go and retry"
  fi
  out=$(binary_path "$name")
  if [[ -x $out ]]; then
    echo "build.sh: $name up to date ($out)"
    ln -sfn "$(basename "$out")" "$bindir/$name"
    continue
  fi
  start=$(date +%s)
  if [[ $name == flipt ]]; then
    build_flipt "$out.tmp.$$" || { rm -f "$out.tmp.$$"; die "building flipt failed (see the go output above)"; }
  else
    build_wrapped "$name" "$out.tmp.$$" || { rm -f "$out.tmp.$$"; die "building $name failed (see the go output above)"; }
  fi
  mv "$out.tmp.$$" "$out"
  ln -sfn "$(basename "$out")" "$bindir/$name"
  echo "build.sh: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
done
