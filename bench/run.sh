#!/usr/bin/env bash
# Runs the benchmarks on both shapes: SQLite + files, and PostgreSQL + S3 (s3s-fs, started
# here on a free port with static keys and a fresh data dir). Figures go to stdout.
#   bash bench/run.sh [size_mib] [storage] [expiry] [mailbox] [checkpoint] [handoff] [webhook] [claim-rss] [x402] [mcp] [cli]  (default: all)
# Storage (issue 2), expiry (3), mailbox (4), checkpoint (5), handoff (6), webhook (7),
# the RSS of concurrent Mailbox claims (12), x402 creation latency (14), MCP and the CLI (15).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
shift || true
WHICH=${*:-storage expiry mailbox checkpoint handoff webhook claim-rss x402 mcp cli}
wants() { [[ " $WHICH " == *" $1 "* ]]; }
PG_URL=${LEASEHOLD_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cargo build --release -p leasehold-server -p leasehold-cli -p leasehold-bench
command -v s3s-fs >/dev/null || cargo install s3s-fs@0.14.1 --features binary --locked

S3_DIR=$(mktemp -d)
S3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$S3_DIR/bench"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key bench --secret-key bench-secret "$S3_DIR" >/dev/null 2>&1 &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null; rm -rf "$S3_DIR"' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.2; done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
S3="--backend s3 --database-url $PG_URL --s3-endpoint http://127.0.0.1:$S3_PORT --s3-bucket bench"
if wants storage; then
  ./target/release/leasehold-bench storage --backend fs --size-mib "$SIZE_MIB"
  ./target/release/leasehold-bench storage --size-mib "$SIZE_MIB" $S3
fi
if wants expiry; then
  ./target/release/leasehold-bench expiry --leases 10000 --window-seconds 10
  ./target/release/leasehold-bench expiry --leases 100000 --window-seconds 0
  ./target/release/leasehold-bench expiry --leases 10000 --window-seconds 10 $S3
  ./target/release/leasehold-bench expiry --leases 100000 --window-seconds 0 $S3
fi
if wants mailbox; then
  ./target/release/leasehold-bench mailbox --concurrency 64 --seconds 2 --rounds 10
  ./target/release/leasehold-bench mailbox --concurrency 64 --seconds 2 --rounds 10 $S3
fi
if wants checkpoint; then
  ./target/release/leasehold-bench checkpoint --concurrency 16 --seconds 2 --rounds 10
  ./target/release/leasehold-bench checkpoint --concurrency 16 --seconds 2 --rounds 10 $S3
fi
if wants handoff; then
  ./target/release/leasehold-bench handoff-large --size-mib "$SIZE_MIB"
  ./target/release/leasehold-bench handoff-large --size-mib "$SIZE_MIB" $S3
  ./target/release/leasehold-bench handoff-rate --concurrency 64 --seconds 10
  ./target/release/leasehold-bench handoff-rate --concurrency 64 --seconds 10 $S3
fi
if wants claim-rss; then
  ./target/release/leasehold-bench handoff-mailbox-rss --size-mib 256 --claimers 4
  ./target/release/leasehold-bench handoff-mailbox-rss --size-mib 256 --claimers 4 $S3
fi
if wants webhook; then
  # With PostgreSQL the bench starts target/release/leasehold-worker next to the API.
  ./target/release/leasehold-bench webhook --rate 100 --seconds 60 --burst 5000 --concurrency 32
  ./target/release/leasehold-bench webhook --rate 100 --seconds 60 --burst 5000 --concurrency 32 $S3
fi
if wants x402; then
  ./target/release/leasehold-bench x402 --concurrency 4 --seconds 3 --rounds 3
  ./target/release/leasehold-bench x402 --concurrency 4 --seconds 3 --rounds 3 $S3
fi
if wants mcp; then
  ./target/release/leasehold-bench mcp --concurrency 8 --seconds 3 --rounds 2
  ./target/release/leasehold-bench mcp --concurrency 8 --seconds 3 --rounds 2 $S3
fi
if wants cli; then
  # Embedded shape: S3 through s3s-fs on the same two cores would measure s3s-fs.
  ./target/release/leasehold-bench cli --size-mib "$SIZE_MIB" --rounds 2
fi
