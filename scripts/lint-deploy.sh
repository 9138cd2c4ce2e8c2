#!/usr/bin/env bash
# Lints the deployment files: shellcheck (deploy.sh, scripts/*.sh), hadolint (Dockerfile) and
# yamllint (manifests/, the chart's values). `npm run lint:deploy`, part of `npm test`. The tools are
# installed once by scripts/lint-tools.sh. (helm lint runs in test/deploy/chart.test.ts.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin="$(scripts/lint-tools.sh)"
"$bin/shellcheck" --severity=style deploy.sh scripts/*.sh
"$bin/hadolint" Dockerfile
"$bin/yamllint" --strict -c scripts/yamllint.yaml manifests charts/flipt-sidecar-injector/Chart.yaml \
  charts/flipt-sidecar-injector/values.yaml charts/flipt-sidecar-injector/ci scripts/yamllint.yaml
echo "lint:deploy: shellcheck, hadolint and yamllint found nothing"
