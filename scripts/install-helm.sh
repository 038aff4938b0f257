#!/usr/bin/env bash
# Builds the pinned helm into .cache/bin/helm from the Go module proxy (GitHub release downloads
# are not needed) and prints its path on stdout. Does nothing when that build is already there.
#   bash scripts/install-helm.sh
set -euo pipefail
HELM_VERSION="v3.22.0"
# The Kubernetes version helm assumes without a cluster (`helm template`, `helm lint`, checked
# against a chart's kubeVersion): helm's Makefile derives it from its client-go (v0.37 -> 1.37);
# a plain `go install` would leave helm's fallback, 1.20.
KUBE_MAJOR=1
KUBE_MINOR=37

root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="$root/.cache/bin"
helm="$bin_dir/helm"
stamp="$bin_dir/helm.build"
build="helm ${HELM_VERSION} kubernetes ${KUBE_MAJOR}.${KUBE_MINOR}"

if [ -x "$helm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$build" ]; then
  echo "$helm"
  exit 0
fi

# helm v3.22 needs Go 1.26+ (its go.mod); the official tarball installs to /usr/local/go.
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  echo "install-helm: Go 1.26+ is required to build helm (https://go.dev/dl, unpacked to /usr/local/go); then rerun: bash scripts/install-helm.sh" >&2
  exit 1
fi

mkdir -p "$bin_dir"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=${KUBE_MAJOR} -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${KUBE_MINOR}"
done
GOBIN="$bin_dir" CGO_ENABLED=0 go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
echo "$build" > "$stamp"
echo "$helm"
