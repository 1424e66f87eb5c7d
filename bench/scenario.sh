#!/usr/bin/env bash
# The production-shape scenario in one command: Debian's nginx (config rendered from
# docker/nginx.conf.template) in front of 3 leasehold-api pods and 2 leasehold-worker
# processes on PostgreSQL + s3s-fs, a mixed workload while pods and workers are SIGKILLed
# and restarted; prints the invariants (tried / held / violated) and p50/p99 per operation,
# and exits non-zero on any violation.
#   bash bench/scenario.sh [--debug] [leasehold-bench scenario options…]
#   bash bench/scenario.sh --seconds 1800              # longer
#   bash bench/scenario.sh --compare-pods 1,3 --seconds 120   # throughput, 1 vs 3 pods
# --debug uses target/debug binaries (what `cargo test` already built: CI); the default is
# a release build. PostgreSQL: $LEASEHOLD_BENCH_DATABASE_URL or postgres@127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=release
if [ "${1:-}" = "--debug" ]; then
  PROFILE=debug
  shift
fi
PG_URL=${LEASEHOLD_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

if [ "$PROFILE" = release ]; then
  cargo build --release -p leasehold-server -p leasehold-bench
else
  # The workspace's features, as `cargo test --workspace` resolves them: after CI's test
  # run this builds nothing (building only the two packages resolves other features and
  # recompiled half the dependencies, about 4 minutes of CI).
  cargo build --workspace --all-targets
fi
command -v s3s-fs >/dev/null || cargo install s3s-fs@0.14.1 --features binary --locked
if ! command -v nginx >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
# Debian's package starts a system nginx on port 80; the scenario runs its own.

S3_DIR=$(mktemp -d)
S3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$S3_DIR/scenario"
export AWS_ACCESS_KEY_ID=scenario AWS_SECRET_ACCESS_KEY=scenario-secret
s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key scenario --secret-key scenario-secret "$S3_DIR" >"$S3_DIR.log" 2>&1 &
S3_PID=$!
stop_s3() {
  local rc=$?
  kill "$S3_PID" 2>/dev/null || true
  wait "$S3_PID" 2>/dev/null || true
  rm -rf "$S3_DIR" "$S3_DIR.log"
  exit "$rc"
}
trap stop_s3 EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.2; done

"target/$PROFILE/leasehold-bench" scenario \
  --api-bin "target/$PROFILE/leasehold-api" --worker-bin "target/$PROFILE/leasehold-worker" \
  --database-url "$PG_URL" --s3-endpoint "http://127.0.0.1:$S3_PORT" --s3-bucket scenario "$@"
