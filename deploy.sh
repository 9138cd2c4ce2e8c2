#!/usr/bin/env bash
# Provisions the whole demo on a Kubernetes cluster: MinIO and its bucket, flipt-master seeded with
# the demo flags, the exporter, the sidecar injector, and sample-app with an injected Flipt sidecar.
# See docs/deploy.md for what each step does and why.
#
#   ./deploy.sh                      # minikube: start it if needed, build the image inside it, deploy
#                                    # (sidecars read the bucket through the bucket cache)
#   ./deploy.sh --storage direct     # the same, sidecars read MinIO directly (no bucket cache)
#   ./deploy.sh --no-minikube --no-image-build --image REGISTRY/flipt-sidecar-injector:0.1.0
#                                    # the current kubectl context, an image it can already pull
#   ./deploy.sh --certs-only         # only create or refresh certs/ and exit
#   ./deploy.sh --teardown           # remove everything this script created
#
# Safe to run again: certificates, Secrets and the first export are kept when still good, and every
# object is applied, so a second run changes nothing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly MANIFESTS="$REPO/manifests"
readonly APP_NS=default
readonly INJECTOR_NS=flipt-system
readonly INJECTOR_SERVICE=flipt-sidecar-injector
readonly PART_OF=app.kubernetes.io/part-of=flipt-sidecar-injector-demo
# The image name the manifests use; --image replaces it when they are applied.
readonly MANIFEST_IMAGE_NAME=flipt-sidecar-injector
# deploy.sh records here that it added the Pod Security label to `default`, so --teardown removes
# only a label it added.
readonly LABELLED_ANNOTATION=flipt.io/deploy-sh-labelled-pod-security
readonly INITIAL_EXPORT_JOB=flipt-exporter-initial
# The bucket cache (docs/bucket-cache.md): its Deployment's name, its objects' label, and the Secret
# holding the push token shared by the exporter (default) and the cache (flipt-system).
readonly CACHE_DEPLOYMENT=flipt-bucket-cache
readonly CACHE_SELECTOR=app.kubernetes.io/component=bucket-cache
readonly PUSH_SECRET=flipt-bucket-cache-push
readonly TIMEOUT="${DEPLOY_TIMEOUT:-300s}"
readonly CERT_DAYS="${DEPLOY_CERT_DAYS:-365}"

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--no-minikube] [--no-image-build] [--image IMAGE] [--injector-url https://HOST:PORT]
                   [--storage cache|direct] [--certs-dir DIR] [--certs-only] [--teardown]

  --no-minikube      use the current kubectl context; never start or touch minikube
  --no-image-build   do not build the image (`minikube image build`); it must already be pullable
  --image IMAGE      the injector/exporter/sample-app image (default flipt-sidecar-injector:VERSION)
  --injector-url URL register the webhook with clientConfig.url = URL + path (an injector running
                     outside the cluster) instead of the in-cluster Service; URL's host is added
                     to the serving certificate
  --storage MODE     how sidecars read the flag bucket: "cache" (default) through the bucket cache
                     in flipt-system, no credentials in app namespaces, the exporter pushes each
                     change; "direct" from MinIO with the flipt-s3-credentials Secret, no cache
  --certs-dir DIR    where the CA and serving certificate live (default: certs/)
  --certs-only       create or refresh the certificates and exit
  --teardown         delete everything deploy.sh created (never the default namespace)

Environment: DEPLOY_TIMEOUT (default 300s) bounds every wait; KUBECONFIG selects the cluster.
EOF
}

if [[ -t 2 ]]; then
  log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
else
  log() { printf '==> %s\n' "$*" >&2; }
fi
die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH. $2"
}

version="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$REPO/package.json")"
[[ -n "$version" ]] || die "cannot read the version from $REPO/package.json"

use_minikube=1
build_image=1
image="$MANIFEST_IMAGE_NAME:$version"
injector_url=""
certs_dir="$REPO/certs"
certs_only=0
teardown=0
storage=cache
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-minikube) use_minikube=0 ;;
    --no-image-build) build_image=0 ;;
    --image | --injector-url | --certs-dir | --storage)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
      case "$1" in
        --image) image="$2" ;;
        --storage)
          [[ "$2" == cache || "$2" == direct ]] || die "--storage must be cache or direct, got $2"
          storage="$2"
          ;;
        --injector-url) injector_url="${2%/}" ;;
        --certs-dir) certs_dir="$2" ;;
      esac
      shift
      ;;
    --certs-only) certs_only=1 ;;
    --teardown) teardown=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown option: $1"
      ;;
  esac
  shift
done
if [[ "$image" == *:latest || "$image" != *[:@]* ]]; then
  die "--image $image: pin a tag or digest (never latest)"
fi

# --- certificates --------------------------------------------------------------------------------

# flipt-injector and the certificate check run from this repository (npm ci installs Node 24 and
# the dependencies): the compiled dist/ when it exists, else the TypeScript sources.
node_bin() {
  local node="$REPO/node_modules/.bin/node"
  [[ -x "$node" ]] || die "run 'npm ci' in $REPO first: deploy.sh makes certificates with flipt-injector from this repository ($node is missing)"
  printf '%s' "$node"
}
flipt_injector() {
  if [[ -f "$REPO/dist/src/cli.js" ]]; then
    "$(node_bin)" "$REPO/dist/src/cli.js" "$@"
  else
    "$(node_bin)" "$REPO/src/cli.ts" "$@"
  fi
}

# Every name the API server or a client may use for the injector, and --injector-url's host.
cert_args=()
cert_sans() {
  local svc="$INJECTOR_SERVICE"
  cert_args=(--dns-name "$svc" --dns-name "$svc.$INJECTOR_NS" --dns-name "$svc.$INJECTOR_NS.svc"
    --dns-name "$svc.$INJECTOR_NS.svc.cluster.local")
  if [[ -n "$injector_url" ]]; then
    [[ "$injector_url" =~ ^https://([^/:]+|\[[0-9a-fA-F:.]+\])(:[0-9]+)?$ ]] ||
      die "--injector-url must look like https://HOST:PORT (no path), got $injector_url"
    local host="${BASH_REMATCH[1]}"
    host="${host#[}"
    host="${host%]}"
    if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then
      cert_args+=(--ip "$host")
    else
      cert_args+=(--dns-name "$host")
    fi
  fi
}

ensure_certs() {
  cert_sans
  mkdir -p "$certs_dir"
  local status
  status="$("$(node_bin)" "$REPO/scripts/cert-status.ts" --dir "$certs_dir" "${cert_args[@]}" --min-days 30)"
  case "$status" in
    keep) log "certificates in $certs_dir are still valid: kept" ;;
    reissue)
      log "issuing a new serving certificate with the existing CA in $certs_dir"
      flipt_injector certs --out-dir "$certs_dir" --days "$CERT_DAYS" "${cert_args[@]}" \
        --ca-cert "$certs_dir/ca.crt" --ca-key "$certs_dir/ca.key" >/dev/null
      ;;
    new)
      log "creating a CA and a serving certificate in $certs_dir"
      flipt_injector certs --out-dir "$certs_dir" --days "$CERT_DAYS" "${cert_args[@]}" >/dev/null
      ;;
    *) die "unexpected answer from scripts/cert-status.ts: $status" ;;
  esac
  # writeFile's mode applies only to new files: make sure existing keys are private too.
  chmod 0600 "$certs_dir/ca.key" "$certs_dir/tls.key"
}

# --- Kubernetes helpers --------------------------------------------------------------------------

# A kustomize directory with the image replaced by --image.
render() {
  kubectl kustomize "$1" | sed "s#image: $MANIFEST_IMAGE_NAME:$version\$#image: $image#"
}
apply_dir() {
  log "applying manifests/${1#"$MANIFESTS"/}"
  render "$1" | kubectl apply -f -
}
rollout() {
  kubectl rollout status "deployment/$2" --namespace "$1" --timeout "$TIMEOUT"
}
wait_job() {
  kubectl wait --for=condition=complete "job/$2" --namespace "$1" --timeout "$TIMEOUT" ||
    die "job $1/$2 did not complete within $TIMEOUT: kubectl logs -n $1 job/$2"
}
# Applies a Secret from an env file (never from command-line literals, which `ps` shows).
apply_secret() {
  local namespace="$1" name="$2"
  shift 2
  kubectl create secret generic "$name" --namespace "$namespace" "$@" --dry-run=client -o yaml |
    kubectl label --local -f - "$PART_OF" -o yaml |
    kubectl apply -f -
}
secret_value() {
  kubectl get secret "$2" --namespace "$1" -o "jsonpath={.data.$3}" | base64 -d
}
random_hex() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

check_cluster() {
  # /readyz, not `kubectl version`: it asks whether the server serves, and never fails on a server
  # version string kubectl cannot parse (a source build reports v0.0.0-master).
  kubectl get --raw=/readyz --request-timeout=10s >/dev/null 2>&1 ||
    die "no Kubernetes API server answers for the current context ($(kubectl config current-context 2>/dev/null || echo none)); check KUBECONFIG / 'kubectl cluster-info'"
}

# --- steps ---------------------------------------------------------------------------------------

start_minikube() {
  need minikube "Install minikube (https://minikube.sigs.k8s.io/docs/start/), or use --no-minikube with a cluster of your own."
  if minikube status --format '{{.APIServer}}' 2>/dev/null | grep -q Running; then
    log "minikube is running"
  else
    log "starting minikube"
    minikube start
  fi
  kubectl config use-context minikube >/dev/null
}

build() {
  need minikube "--no-image-build skips the build (then --image must name an image the cluster can pull)."
  log "building $image inside minikube"
  minikube image build -t "$image" "$REPO"
}

label_default_namespace() {
  local current
  current="$(kubectl get namespace "$APP_NS" -o 'jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}')"
  if [[ "$current" != restricted ]]; then
    log "labelling namespace $APP_NS pod-security.kubernetes.io/enforce=restricted"
    kubectl annotate namespace "$APP_NS" "$LABELLED_ANNOTATION=${current:-none}" --overwrite >/dev/null
    kubectl label namespace "$APP_NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  fi
}

create_secrets() {
  # Demo MinIO root credentials: random, generated once, never committed.
  if ! kubectl get secret minio-root-credentials --namespace "$APP_NS" >/dev/null 2>&1; then
    log "generating the MinIO root credentials (Secret minio-root-credentials)"
    apply_secret "$APP_NS" minio-root-credentials --from-env-file=<(
      printf 'MINIO_ROOT_USER=flipt-%s\nMINIO_ROOT_PASSWORD=%s\n' "$(random_hex 6)" "$(random_hex 24)"
    )
  fi
  # The exporter and every injected sidecar in `default` read the bucket with these keys.
  apply_secret "$APP_NS" flipt-s3-credentials --from-env-file=<(
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
      "$(secret_value "$APP_NS" minio-root-credentials MINIO_ROOT_USER)" \
      "$(secret_value "$APP_NS" minio-root-credentials MINIO_ROOT_PASSWORD)"
  )
  # The bucket cache reads MinIO with the same keys, in its own namespace (cache mode only: then app
  # namespaces need no copy, only the exporter keeps one in default).
  if [[ $storage == cache ]]; then
    apply_secret "$INJECTOR_NS" flipt-s3-credentials --from-env-file=<(
      printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
        "$(secret_value "$APP_NS" minio-root-credentials MINIO_ROOT_USER)" \
        "$(secret_value "$APP_NS" minio-root-credentials MINIO_ROOT_PASSWORD)"
    )
  fi
  # The push token: random, generated once, the same in the exporter's and the cache's namespace.
  local token=""
  if kubectl get secret "$PUSH_SECRET" --namespace "$APP_NS" >/dev/null 2>&1; then
    token="$(secret_value "$APP_NS" "$PUSH_SECRET" token)"
  fi
  [[ ${#token} -ge 16 ]] || token="$(random_hex 24)"
  apply_secret "$APP_NS" "$PUSH_SECRET" --from-env-file=<(printf 'token=%s\n' "$token")
  apply_secret "$INJECTOR_NS" "$PUSH_SECRET" --from-env-file=<(printf 'token=%s\n' "$token")
  apply_secret "$INJECTOR_NS" flipt-sidecar-injector-tls --type=kubernetes.io/tls \
    --from-file=tls.crt="$certs_dir/tls.crt" --from-file=tls.key="$certs_dir/tls.key" \
    --from-file=ca.crt="$certs_dir/ca.crt"
}

# The chart-rendered webhook configuration with deploy.sh's CA bundle, and with --injector-url a
# URL in place of the Service (the paths are the chart's own).
apply_webhook() {
  local file="$MANIFESTS/flipt-sidecar-injector/mutatingwebhookconfiguration.yaml"
  local ca patch="[" i=0 path
  ca="$(base64 <"$certs_dir/ca.crt" | tr -d '\n')"
  for path in $(kubectl patch --local -f "$file" --type=json -p '[]' \
    -o 'jsonpath={range .webhooks[*]}{.clientConfig.service.path}{"\n"}{end}'); do
    [[ $i -gt 0 ]] && patch+=","
    if [[ -n "$injector_url" ]]; then
      patch+="{\"op\":\"replace\",\"path\":\"/webhooks/$i/clientConfig\",\"value\":{\"url\":\"$injector_url$path\",\"caBundle\":\"$ca\"}}"
    else
      patch+="{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$ca\"}"
    fi
    i=$((i + 1))
  done
  patch+="]"
  [[ $i -eq 2 ]] || die "expected two webhook entries in $file, found $i"
  log "registering the webhook (${injector_url:-service $INJECTOR_NS/$INJECTOR_SERVICE})"
  kubectl patch --local -f "$file" --type=json -p "$patch" -o yaml | kubectl apply -f -
}

initial_export() {
  local failed
  if kubectl get job "$INITIAL_EXPORT_JOB" --namespace "$APP_NS" >/dev/null 2>&1; then
    failed="$(kubectl get job "$INITIAL_EXPORT_JOB" --namespace "$APP_NS" -o 'jsonpath={.status.failed}')"
    if [[ -z "$failed" || "$failed" == 0 ]]; then
      log "the first export (job $INITIAL_EXPORT_JOB) exists: waiting for it"
      wait_job "$APP_NS" "$INITIAL_EXPORT_JOB"
      return
    fi
    log "the first export failed before: running it again"
    kubectl delete job "$INITIAL_EXPORT_JOB" --namespace "$APP_NS" --wait=true --timeout "$TIMEOUT"
  fi
  # A sidecar does not start on an empty bucket: export once before sample-app starts.
  log "running the first export (job $INITIAL_EXPORT_JOB from cronjob/flipt-exporter)"
  kubectl create job "$INITIAL_EXPORT_JOB" --from=cronjob/flipt-exporter --namespace "$APP_NS"
  wait_job "$APP_NS" "$INITIAL_EXPORT_JOB"
}

verify_injection() {
  local pods names count
  pods="$(kubectl get pods --namespace "$APP_NS" -l app.kubernetes.io/name=sample-app \
    --field-selector=status.phase!=Failed -o name)"
  [[ -n "$pods" ]] || die "no sample-app pod found"
  for pod in $pods; do
    names="$(kubectl get "$pod" --namespace "$APP_NS" \
      -o 'jsonpath={range .spec.initContainers[*]}{.name}{"\n"}{end}{range .spec.containers[*]}{.name}{"\n"}{end}')"
    count="$(grep -cx flipt-sidecar <<<"$names" || true)"
    [[ "$count" == 1 ]] ||
      die "$pod has $count flipt-sidecar containers, expected 1: see README 'Troubleshooting' (no sidecar)"
  done
  log "sample-app has its flipt-sidecar ($(wc -w <<<"$pods") pod(s))"
}

deploy() {
  label_default_namespace
  kubectl apply -f "$MANIFESTS/namespaces/flipt-system.yaml"
  create_secrets

  apply_dir "$MANIFESTS/minio"
  rollout "$APP_NS" minio
  wait_job "$APP_NS" minio-create-bucket

  apply_dir "$MANIFESTS/flipt-master"
  rollout "$APP_NS" flipt-master

  local injector_file=flipt-sidecar-injector.yaml
  if [[ $storage == direct ]]; then
    injector_file=flipt-sidecar-injector-direct.yaml
    # A cache left by an earlier run in cache mode: sidecars no longer use it.
    kubectl delete deployment,service,poddisruptionbudget,networkpolicy --namespace "$INJECTOR_NS" \
      -l "$CACHE_SELECTOR" --ignore-not-found --wait=true --timeout "$TIMEOUT"
  fi
  log "applying manifests/flipt-sidecar-injector/$injector_file (storage: $storage)"
  render_file "$MANIFESTS/flipt-sidecar-injector/$injector_file" | kubectl apply -f -
  apply_webhook
  rollout "$INJECTOR_NS" flipt-sidecar-injector

  apply_exporter "$MANIFESTS/flipt-exporter"
  initial_export
  if [[ $storage == cache ]]; then
    # Ready once it holds a first valid snapshot: the export above (its push, or the next refresh).
    rollout "$INJECTOR_NS" "$CACHE_DEPLOYMENT"
  fi

  apply_dir "$MANIFESTS/sample-app"
  rollout "$APP_NS" sample-app
  verify_injection

  cat <<EOF

Done. Port-forward (one at a time: both use local port 8080):

  kubectl port-forward svc/flipt-master --namespace default 8080:8080   # master UI and API, where flags are edited
  kubectl port-forward svc/sample-app  --namespace default 8080:8080   # the injected, read-only sidecar

and the sample app's page, which asks both and shows the answers and latencies side by side:

  kubectl port-forward svc/sample-app  --namespace default 3000:3000   # http://localhost:3000

Change a flag in the master UI: the exporter copies it to the bucket within a minute, the sidecar
reads it within 30 s, and sample-app's page follows.
EOF
  if [[ $storage == cache ]]; then
    cat <<EOF
Storage: sidecars read the bucket through the bucket cache ($INJECTOR_NS/$CACHE_DEPLOYMENT, 2 replicas;
each upload is pushed to it) and carry no credentials. ./deploy.sh --storage direct switches to S3.
EOF
  fi
}
# The exporter, without the cache push in direct mode (there is no cache to push to).
apply_exporter() {
  log "applying manifests/${1#"$MANIFESTS"/}"
  if [[ $storage == direct ]]; then
    render "$1" | kubectl set env --local -f - FLIPT_EXPORTER_NOTIFY_URL- FLIPT_EXPORTER_NOTIFY_TOKEN- -o yaml |
      kubectl apply -f -
  else
    render "$1" | kubectl apply -f -
  fi
}
render_file() {
  sed "s#image: $MANIFEST_IMAGE_NAME:$version\$#image: $image#" "$1"
}

delete_dir() {
  render "$1" | kubectl delete --ignore-not-found --wait=true --timeout "$TIMEOUT" -f -
}

do_teardown() {
  log "removing the webhook first, so that nothing waits for it"
  kubectl delete --ignore-not-found -f "$MANIFESTS/flipt-sidecar-injector/mutatingwebhookconfiguration.yaml"
  delete_dir "$MANIFESTS/sample-app"
  delete_dir "$MANIFESTS/flipt-exporter/watch"
  delete_dir "$MANIFESTS/flipt-exporter"
  # The first export's Job and the CronJob's Jobs (and their pods).
  kubectl delete jobs --namespace "$APP_NS" -l app.kubernetes.io/name=flipt-exporter \
    --ignore-not-found --wait=true --timeout "$TIMEOUT"
  kubectl delete job "$INITIAL_EXPORT_JOB" --namespace "$APP_NS" --ignore-not-found --wait=true --timeout "$TIMEOUT"
  delete_dir "$MANIFESTS/flipt-master"
  delete_dir "$MANIFESTS/minio"
  # The cache variant holds every object of the direct one, plus the bucket cache.
  kubectl delete --ignore-not-found --wait=true --timeout "$TIMEOUT" \
    -f "$MANIFESTS/flipt-sidecar-injector/flipt-sidecar-injector.yaml"
  kubectl delete secrets --namespace "$APP_NS" -l "$PART_OF" --ignore-not-found
  kubectl delete --ignore-not-found --wait=true --timeout "$TIMEOUT" -f "$MANIFESTS/namespaces/flipt-system.yaml"
  local before
  before="$(kubectl get namespace "$APP_NS" -o "jsonpath={.metadata.annotations.${LABELLED_ANNOTATION//./\\.}}")"
  if [[ -n "$before" ]]; then
    if [[ "$before" == none ]]; then
      kubectl label namespace "$APP_NS" pod-security.kubernetes.io/enforce- >/dev/null
    else
      kubectl label namespace "$APP_NS" "pod-security.kubernetes.io/enforce=$before" --overwrite >/dev/null
    fi
    kubectl annotate namespace "$APP_NS" "$LABELLED_ANNOTATION-" >/dev/null
  fi
  log "teardown complete (certificates in $certs_dir are kept; delete them to start afresh)"
}

main() {
  if [[ $certs_only == 1 ]]; then
    ensure_certs
    return
  fi
  need kubectl "Install kubectl (https://kubernetes.io/docs/tasks/tools/)."
  if [[ $use_minikube == 1 ]]; then
    [[ $teardown == 1 ]] || start_minikube
  fi
  check_cluster
  if [[ $teardown == 1 ]]; then
    do_teardown
    return
  fi
  ensure_certs
  if [[ $build_image == 1 ]]; then
    [[ $use_minikube == 1 ]] || die "building the image needs minikube: with --no-minikube also pass --no-image-build (and --image)"
    build
  fi
  deploy
}

main
