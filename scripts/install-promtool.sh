#!/usr/bin/env bash
# Builds the pinned promtool (checks the shipped Prometheus alert rules, test/deploy/) into
# .cache/bin/promtool from the Go module proxy (no release downloads) and prints its path on
# stdout. Does nothing when that build is already there.
#   bash scripts/install-promtool.sh
set -euo pipefail
# Prometheus 3.16 (its Go module versions are v0.3MM.P for Prometheus 3.MM.P).
PROMETHEUS_VERSION="v0.316.0"

root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="$root/.cache/bin"
promtool="$bin_dir/promtool"
stamp="$bin_dir/promtool.build"
build="promtool ${PROMETHEUS_VERSION}"

if [ -x "$promtool" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$build" ]; then
  echo "$promtool"
  exit 0
fi

PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  echo "install-promtool: Go 1.26+ is required to build promtool (https://go.dev/dl, unpacked to /usr/local/go); then rerun: bash scripts/install-promtool.sh" >&2
  exit 1
fi

mkdir -p "$bin_dir"
echo "install-promtool: building promtool ${PROMETHEUS_VERSION} into ${bin_dir} (a few minutes the first time)" >&2
GOBIN="$bin_dir" CGO_ENABLED=0 go install -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}" >&2
echo "$build" > "$stamp"
echo "$promtool"
