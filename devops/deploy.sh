#!/usr/bin/env bash
# Deployment orchestration of the videoconf platform (devops/README.md).
#
#   devops/deploy.sh prerequisites   install the Gateway API CRDs and Envoy Gateway
#   devops/deploy.sh build           build the two images (docker)
#   devops/deploy.sh deploy          apply everything, in the six-step order, waiting between
#   devops/deploy.sh health          rollouts, Gateway Programmed, endpoints, /metrics
#   devops/deploy.sh cleanup         remove everything deploy created (namespace included)
#   devops/deploy.sh help            this text
#
# Environment: KUBECTL_CONTEXT (kubectl context to use, default the current one),
# DRY_RUN=true (print what would be done; touches nothing, needs no cluster, no docker),
# IMAGE_REGISTRY, IMAGE_TAG (images built and deployed), ENVOY_GATEWAY_VERSION,
# ROLLOUT_TIMEOUT; JWT_SECRET, TURN_SECRET, AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_AUDIENCE seed
# the Secret backend-secrets when deploy has to create it (TURN_SECRET also when it lacks one).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# Paths are relative to the repository root, where main() changes to.
MANIFESTS="devops/kubernetes"
NAMESPACE="social-media"
GATEWAY="social-media-gateway"
TLS_SECRET="social-media-tls"
# TURN over TLS (coturn.yaml mounts it, optionally): a certificate for the TURN host name.
TURN_TLS_SECRET="social-media-turn-tls"

KUBECTL_CONTEXT="${KUBECTL_CONTEXT:-}"
DRY_RUN="${DRY_RUN:-false}"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-}"
IMAGE_TAG="${IMAGE_TAG:-0.1.0}"
ENVOY_GATEWAY_VERSION="${ENVOY_GATEWAY_VERSION:-v1.9.0}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"

# The images the manifests name, and the ones this run builds and deploys.
MANIFEST_BACKEND_IMAGE="videoconf-backend:0.1.0"
MANIFEST_FRONTEND_IMAGE="videoconf-frontend:0.1.0"
BACKEND_IMAGE="${IMAGE_REGISTRY:+${IMAGE_REGISTRY%/}/}videoconf-backend:${IMAGE_TAG}"
FRONTEND_IMAGE="${IMAGE_REGISTRY:+${IMAGE_REGISTRY%/}/}videoconf-frontend:${IMAGE_TAG}"

# The deployment order (README, "Deployment Order"): step names and their manifests.
STEP_NAMES=("Security policies" "Backend" "Frontend" "Gateway" "Routes" "Monitoring")
STEP_FILES=(
  "security-policies.yaml"
  "redis.yaml backend-deployment.yaml coturn.yaml"
  "frontend-deployment.yaml"
  "gateway/gateway.yaml"
  "gateway/routes.yaml"
  "monitoring.yaml"
)
# ServiceMonitor and PrometheusRule carry release=prometheus; HPAs and PDBs do not.
WITHOUT_PROMETHEUS_OPERATOR="release!=prometheus"

KUBECTL=(kubectl)
if [[ -n "$KUBECTL_CONTEXT" ]]; then
  KUBECTL+=(--context "$KUBECTL_CONTEXT")
fi

info() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

dry_run() { [[ "$DRY_RUN" == "true" ]]; }

# Print a command as it would be typed.
show() {
  local quoted
  printf -v quoted '%q ' "$@"
  printf '[dry-run] %s\n' "${quoted% }"
}

# A command that changes something: printed under DRY_RUN, run otherwise.
run() {
  if dry_run; then
    show "$@"
  else
    "$@"
  fi
}

k() { run "${KUBECTL[@]}" "$@"; }

# A read-only question to the cluster; false under DRY_RUN (nothing is asked).
k_has() {
  if dry_run; then
    return 1
  fi
  "${KUBECTL[@]}" "$@" >/dev/null 2>&1
}

require_kubectl() {
  command -v kubectl >/dev/null 2>&1 ||
    die "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/), or run with DRY_RUN=true to see the plan without a cluster"
}

require_cluster() {
  require_kubectl
  if [[ -n "$KUBECTL_CONTEXT" ]] && ! kubectl config get-contexts "$KUBECTL_CONTEXT" >/dev/null 2>&1; then
    die "no kubectl context named '$KUBECTL_CONTEXT' (kubectl config get-contexts lists them)"
  fi
  local output
  if ! output="$("${KUBECTL[@]}" cluster-info --request-timeout=10s 2>&1)"; then
    die "cannot reach the Kubernetes cluster (context: ${KUBECTL_CONTEXT:-current}): ${output##*$'\n'}"
  fi
}

# The objects of a manifest, as Kind/name lines (our manifests: kind and metadata.name at
# the top of each document).
objects_of() {
  awk '/^kind:/ { kind = $2 } /^metadata:/ { meta = 1; next } meta && /^  name:/ { print "    " kind "/" $2; meta = 0 } /^[^ ]/ && !/^metadata:/ { meta = 0 }' "$1"
}

# A manifest with this run's image names in place of the manifests' own.
render() {
  sed -e "s#image: ${MANIFEST_BACKEND_IMAGE}\$#image: ${BACKEND_IMAGE}#" \
    -e "s#image: ${MANIFEST_FRONTEND_IMAGE}\$#image: ${FRONTEND_IMAGE}#" "$1"
}

apply_manifest() {
  local file="$MANIFESTS/$1"
  shift
  [[ -f "$file" ]] || die "missing manifest $file"
  if dry_run; then
    show "${KUBECTL[@]}" apply "$@" -f "$file"
    if grep -qE "image: (${MANIFEST_BACKEND_IMAGE}|${MANIFEST_FRONTEND_IMAGE})\$" "$file"; then
      printf '    (images: %s, %s)\n' "$BACKEND_IMAGE" "$FRONTEND_IMAGE"
    fi
    objects_of "$file"
  else
    render "$file" | "${KUBECTL[@]}" apply "$@" -f -
  fi
}

crd_installed() { k_has get crd "$1"; }

random_secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# The TURN secret backend-secrets gets: $TURN_SECRET, or random. The backend refuses a shorter
# one in production, and coturn reads the same key.
turn_secret() {
  local turn="${TURN_SECRET:-$(random_secret)}"
  [[ ${#turn} -ge 32 ]] || die "TURN_SECRET must be at least 32 characters (the backend refuses shorter ones in production)"
  printf '%s' "$turn"
}

# backend-secrets and redis-secrets: left alone when present, created when missing (never
# from a file in git; secrets.template.yaml documents their keys). One exception: a
# backend-secrets made before TURN existed gets a TURN_SECRET added, the keys it has stay.
ensure_secrets() {
  if dry_run; then
    show "${KUBECTL[@]}" -n "$NAMESPACE" create secret generic backend-secrets --from-env-file=/dev/stdin
    printf '    (only if missing: JWT_SECRET and TURN_SECRET random or taken from the environment, AUTH0_* from the environment)\n'
    show "${KUBECTL[@]}" -n "$NAMESPACE" patch secret backend-secrets --type=merge --patch-file=/dev/stdin
    printf '    (only if it has no TURN_SECRET: a random one, or TURN_SECRET from the environment; its other keys stay)\n'
    show "${KUBECTL[@]}" -n "$NAMESPACE" create secret generic redis-secrets --from-env-file=/dev/stdin
    printf '    (only if missing: REDIS_PASSWORD random)\n'
    return
  fi
  if k_has -n "$NAMESPACE" get secret backend-secrets; then
    # Whether it has the key, without reading its value.
    local has_turn
    has_turn="$("${KUBECTL[@]}" -n "$NAMESPACE" get secret backend-secrets -o 'go-template={{if .data.TURN_SECRET}}yes{{end}}')"
    if [[ "$has_turn" == "yes" ]]; then
      info "Secret backend-secrets exists: left as it is"
    else
      local turn
      turn="$(turn_secret)"
      info "Secret backend-secrets exists without TURN_SECRET (made before TURN): adding one, the other keys stay"
      printf '{"data":{"TURN_SECRET":"%s"}}' "$(printf '%s' "$turn" | base64 | tr -d '\n')" |
        "${KUBECTL[@]}" -n "$NAMESPACE" patch secret backend-secrets --type=merge --patch-file=/dev/stdin
    fi
  else
    local jwt="${JWT_SECRET:-$(random_secret)}"
    [[ ${#jwt} -ge 32 ]] || die "JWT_SECRET must be at least 32 characters (the backend refuses shorter ones in production)"
    local turn
    turn="$(turn_secret)"
    if [[ -n "${AUTH0_DOMAIN:-}" && -z "${AUTH0_AUDIENCE:-}" ]]; then
      die "AUTH0_DOMAIN is set without AUTH0_AUDIENCE (the backend needs both)"
    fi
    info "Creating Secret backend-secrets"
    {
      printf 'JWT_SECRET=%s\n' "$jwt"
      printf 'TURN_SECRET=%s\n' "$turn"
      local name
      for name in AUTH0_DOMAIN AUTH0_CLIENT_ID AUTH0_AUDIENCE; do
        if [[ -n "${!name:-}" ]]; then
          printf '%s=%s\n' "$name" "${!name}"
        fi
      done
    } | "${KUBECTL[@]}" -n "$NAMESPACE" create secret generic backend-secrets --from-env-file=/dev/stdin
  fi
  if k_has -n "$NAMESPACE" get secret redis-secrets; then
    info "Secret redis-secrets exists: left as it is"
  else
    info "Creating Secret redis-secrets"
    printf 'REDIS_PASSWORD=%s\n' "$(random_secret)" |
      "${KUBECTL[@]}" -n "$NAMESPACE" create secret generic redis-secrets --from-env-file=/dev/stdin
  fi
  if ! k_has -n "$NAMESPACE" get secret "$TLS_SECRET"; then
    warn "Secret $TLS_SECRET is missing: the HTTPS (443) and WebSocket (8080) listeners stay unprogrammed until you create it:"
    warn "  kubectl create secret tls $TLS_SECRET --cert=path/to/tls.crt --key=path/to/tls.key -n $NAMESPACE"
  fi
  if ! k_has -n "$NAMESPACE" get secret "$TURN_TLS_SECRET"; then
    warn "Secret $TURN_TLS_SECRET is missing: coturn runs without TURN over TLS (turns:, port 443) until you create it, with a certificate for the TURN host name, and restart coturn:"
    warn "  kubectl create secret tls $TURN_TLS_SECRET --cert=path/to/turn.crt --key=path/to/turn.key -n $NAMESPACE"
    warn "  kubectl -n $NAMESPACE rollout restart deployment/coturn-deployment"
  fi
}

# The new pods rolled out, then the app (by its app.kubernetes.io/name label) Available. Not
# `wait pod -l ...`: during an update that would also wait on the old, terminating pods.
wait_for_app() {
  local deployment="$1" name="$2"
  k -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout="$ROLLOUT_TIMEOUT"
  k -n "$NAMESPACE" wait --for=condition=Available deployment -l "app.kubernetes.io/name=$name" --timeout="$ROLLOUT_TIMEOUT"
}

step() {
  local number="$1"
  info "Step $number/6: ${STEP_NAMES[number - 1]} (${STEP_FILES[number - 1]})"
}

cmd_prerequisites() {
  dry_run || require_cluster
  info "Installing the Gateway API CRDs and Envoy Gateway $ENVOY_GATEWAY_VERSION"
  k apply --server-side --force-conflicts -f "https://github.com/envoyproxy/gateway/releases/download/${ENVOY_GATEWAY_VERSION}/install.yaml"
  k -n envoy-gateway-system wait --for=condition=Available deployment/envoy-gateway --timeout=5m
  if ! dry_run; then
    k_has get apiservice v1beta1.metrics.k8s.io ||
      warn "metrics-server is not installed: the HPAs cannot scale without it (README, \"HPA Not Scaling\")"
    crd_installed servicemonitors.monitoring.coreos.com ||
      warn "the Prometheus Operator CRDs are missing: deploy will skip the ServiceMonitor and PrometheusRule (README, \"Monitoring Stack Installation\")"
    command -v docker >/dev/null 2>&1 || warn "docker is not on PATH: 'build' needs it"
  fi
  info "Prerequisites done"
}

cmd_build() {
  if ! dry_run; then
    command -v docker >/dev/null 2>&1 ||
      die "docker is not on PATH: install Docker to build the images, or run with DRY_RUN=true to see the commands"
    docker info >/dev/null 2>&1 ||
      die "the Docker daemon is not reachable (docker info failed): start it, or check DOCKER_HOST"
  fi
  info "Building $BACKEND_IMAGE"
  run docker build -f devops/docker/backend.dockerfile -t "$BACKEND_IMAGE" .
  info "Building $FRONTEND_IMAGE"
  run docker build -f devops/docker/frontend.dockerfile -t "$FRONTEND_IMAGE" .
  if [[ -n "$IMAGE_REGISTRY" ]]; then
    run docker push "$BACKEND_IMAGE"
    run docker push "$FRONTEND_IMAGE"
  fi
}

cmd_deploy() {
  dry_run || require_cluster
  dry_run && info "DRY_RUN=true: printing what would be applied; nothing is changed"

  step 1
  apply_manifest security-policies.yaml
  ensure_secrets

  step 2
  apply_manifest redis.yaml
  wait_for_app redis-deployment redis
  apply_manifest backend-deployment.yaml
  wait_for_app backend-deployment backend
  apply_manifest coturn.yaml
  wait_for_app coturn-deployment coturn

  step 3
  apply_manifest frontend-deployment.yaml
  wait_for_app frontend-deployment frontend

  step 4
  if ! dry_run && ! crd_installed gateways.gateway.networking.k8s.io; then
    die "the Gateway API CRDs are not installed: run '$0 prerequisites' first"
  fi
  apply_manifest gateway/gateway.yaml
  if ! k -n "$NAMESPACE" wait --for=condition=Programmed "gateway/$GATEWAY" --timeout=120s; then
    warn "Gateway $GATEWAY is not Programmed yet: '$0 health' checks it again (is $TLS_SECRET there?)"
  fi

  step 5
  apply_manifest gateway/routes.yaml

  step 6
  if dry_run || crd_installed servicemonitors.monitoring.coreos.com; then
    apply_manifest monitoring.yaml
  else
    warn "the Prometheus Operator CRDs are missing: applying the HPAs and PDBs only, not the ServiceMonitor and PrometheusRule"
    apply_manifest monitoring.yaml --selector="$WITHOUT_PROMETHEUS_OPERATOR"
  fi

  info "Deployed. Frontend: https://social-media.example.com  WebSocket: wss://social-media.example.com:8080/ws  API: https://social-media.example.com/api"
  info "Check it with: $0 health"
}

cmd_health() {
  dry_run || require_cluster
  local failures=0 name
  for name in redis backend coturn frontend; do
    if ! k -n "$NAMESPACE" rollout status "deployment/$name-deployment" --timeout=120s; then
      warn "deployment/$name-deployment has not rolled out"
      failures=$((failures + 1))
    fi
  done
  if ! k -n "$NAMESPACE" wait --for=condition=Programmed "gateway/$GATEWAY" --timeout=60s; then
    warn "Gateway $GATEWAY is not Programmed (kubectl describe gateway $GATEWAY -n $NAMESPACE)"
    failures=$((failures + 1))
  fi
  for name in backend-service frontend-service redis-service coturn-service; do
    if dry_run; then
      show "${KUBECTL[@]}" -n "$NAMESPACE" get endpointslices -l "kubernetes.io/service-name=$name" -o "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[*]}"
      continue
    fi
    local addresses
    addresses="$("${KUBECTL[@]}" -n "$NAMESPACE" get endpointslices -l "kubernetes.io/service-name=$name" \
      -o "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[*]}" 2>/dev/null || true)"
    if [[ -z "${addresses// /}" ]]; then
      warn "Service $name has no ready endpoints"
      failures=$((failures + 1))
    else
      info "Service $name: ready endpoints $addresses"
    fi
  done
  if ! check_metrics; then
    failures=$((failures + 1))
  fi
  check_turn_address
  if ((failures > 0)); then
    die "$failures health check(s) failed"
  fi
  if dry_run; then
    info "DRY_RUN=true: these are the checks health runs"
  else
    info "Healthy"
  fi
}

# The address coturn-service's load balancer got, which TURN_EXTERNAL_IP in coturn.yaml and
# the DNS name in the backend's TURN_URLS must name. A warning, not a failure: calls between
# browsers that reach each other directly work without TURN.
check_turn_address() {
  local jsonpath='{.status.loadBalancer.ingress[*].ip}{.status.loadBalancer.ingress[*].hostname}'
  if dry_run; then
    show "${KUBECTL[@]}" -n "$NAMESPACE" get service coturn-service -o "jsonpath=$jsonpath"
    return
  fi
  local address
  address="$("${KUBECTL[@]}" -n "$NAMESPACE" get service coturn-service -o "jsonpath=$jsonpath" 2>/dev/null || true)"
  if [[ -z "${address// /}" ]]; then
    warn "coturn-service has no load balancer address yet: TURN is unreachable from outside (devops/README.md, \"TURN (coturn)\")"
  else
    info "coturn-service (TURN) is at $address: TURN_EXTERNAL_IP in coturn.yaml and the host of TURN_URLS must lead there"
  fi
}

# /metrics of the backend through a port-forward to backend-service (a free local port).
check_metrics() {
  if dry_run; then
    show "${KUBECTL[@]}" -n "$NAMESPACE" port-forward svc/backend-service :8080
    show curl -fsS "http://127.0.0.1:<port>/metrics"
    return 0
  fi
  command -v curl >/dev/null 2>&1 || {
    warn "curl is not on PATH: /metrics not checked"
    return 1
  }
  local log pid port="" metrics tries
  log="$(mktemp)"
  "${KUBECTL[@]}" -n "$NAMESPACE" port-forward svc/backend-service :8080 >"$log" 2>&1 &
  pid=$!
  for ((tries = 0; tries < 50; tries++)); do
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$log" | head -n1)"
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  local ok=1
  if [[ -z "$port" ]]; then
    warn "kubectl port-forward to backend-service did not start: $(tr '\n' ' ' <"$log")"
  elif ! metrics="$(curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics")"; then
    warn "GET /metrics through the port-forward failed"
  elif ! grep -q '^websocket_connections_total' <<<"$metrics"; then
    warn "/metrics answered without websocket_connections_total"
  else
    info "Backend /metrics: $(grep -c '^[a-z]' <<<"$metrics") samples, websocket_connections_total present"
    ok=0
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
  return "$ok"
}

cmd_cleanup() {
  dry_run || require_cluster
  info "Removing the deployment in reverse order (namespace $NAMESPACE last, with its Secrets)"
  local index position file files
  for ((index = ${#STEP_FILES[@]} - 1; index >= 0; index--)); do
    read -r -a files <<<"${STEP_FILES[index]}"
    for ((position = ${#files[@]} - 1; position >= 0; position--)); do
      file="${files[position]}"
      case "$file" in
        monitoring.yaml)
          if dry_run || crd_installed servicemonitors.monitoring.coreos.com; then
            k delete --ignore-not-found -f "$MANIFESTS/$file"
          else
            k delete --ignore-not-found --selector="$WITHOUT_PROMETHEUS_OPERATOR" -f "$MANIFESTS/$file"
          fi
          ;;
        gateway/*)
          if dry_run || crd_installed gateways.gateway.networking.k8s.io; then
            k delete --ignore-not-found -f "$MANIFESTS/$file"
          fi
          ;;
        *)
          k delete --ignore-not-found -f "$MANIFESTS/$file"
          ;;
      esac
    done
  done
  info "Removed. Envoy Gateway (namespace envoy-gateway-system) is left installed: it may serve others."
}

# The comment at the top of this file.
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

main() {
  local verb="${1:-}"
  cd "$ROOT"
  case "$verb" in
    prerequisites) cmd_prerequisites ;;
    build) cmd_build ;;
    deploy) cmd_deploy ;;
    health) cmd_health ;;
    cleanup) cmd_cleanup ;;
    help | -h | --help) usage ;;
    "")
      usage >&2
      exit 2
      ;;
    *)
      printf 'error: unknown command %q\n\n' "$verb" >&2
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
