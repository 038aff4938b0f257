#!/bin/bash
# A before/after pair of builds on the cluster suite, alternating so both see the same machine:
#   git worktree add /tmp/before <commit> && (cd /tmp/before && ln -s "$PWD/node_modules" . && npx tsc -p tsconfig.build.json)
#   npx tsc -p tsconfig.build.json && bench/tools/ab-cluster.sh 3 cross-node
# Arguments: rounds, BENCH_PLACEMENTS. Env: BASE_DIST (default /tmp/before/dist), SECS (window, default 3),
# SUITE (default cluster; cluster-cost takes BENCH_COST_CASES from the environment).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
placements=${2:-cross-node}
for _ in $(seq 1 "$rounds"); do
  for build in base new; do
    if [ "$build" = base ]; then export BENCH_ENGINE_DIST=${BASE_DIST:-/tmp/before/dist}; else unset BENCH_ENGINE_DIST; fi
    BENCH_SUITES=${SUITE:-cluster} BENCH_SECONDS=${SECS:-3} BENCH_ROUNDS=1 BENCH_PLACEMENTS=$placements node dist/bench/run.js 2>&1 \
      | grep '^  [a-z].* K=' | sed "s/^/$build /"
  done
done
