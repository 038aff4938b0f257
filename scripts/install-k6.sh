#!/usr/bin/env bash
# Builds the pinned k6 (the load-test runner, loadtest/) from source through the Go module proxy
# into .cache/bin/k6. GitHub release downloads are not needed. Skips when that version is there.
# Needs Go >= 1.23 (`apt-get install -y golang-go` or https://go.dev/dl/).
set -euo pipefail
cd "$(dirname "$0")/.."

K6_VERSION="${K6_VERSION:-v1.8.1}"
BIN_DIR="$PWD/.cache/bin"
K6="$BIN_DIR/k6"

if [ -x "$K6" ] && "$K6" version 2>/dev/null | grep -q "k6 ${K6_VERSION}"; then
  echo "k6 ${K6_VERSION} already at ${K6}"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "go is not installed: k6 is built with \`go install\`; install Go (apt-get install -y golang-go, or https://go.dev/dl/)" >&2
  exit 1
fi
mkdir -p "$BIN_DIR"
echo "building k6 ${K6_VERSION} into ${BIN_DIR} (a few minutes the first time)"
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install "go.k6.io/k6@${K6_VERSION}"
"$K6" version
