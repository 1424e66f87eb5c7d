#!/usr/bin/env bash
# S3 conformance run against Garage (a second S3 implementation next to CI's s3s-fs):
# installs Garage if missing, starts a throw-away single-node Garage with one bucket and
# one key, then runs
#   (a) `cargo test --workspace` against PostgreSQL + Garage (every backend-parameterised
#       test's `distributed` variant uses Garage; a fresh PostgreSQL role and database are
#       created here and dropped again with every database the tests made), and
#   (b) the storage benchmark (`leasehold-bench storage --backend s3`) against Garage,
# and cleans everything up. Exits non-zero on any failure. Not part of every CI run:
# building Garage takes 10–20 minutes the first time (21 min on 2 shared cores).
#
#   bash bench/garage.sh [--tests-only | --bench-only] [--size-mib N] [-- <cargo test args>]
#
# LEASEHOLD_TEST_REQUIRE_ALL is deliberately left unset: the schemathesis / x402 / MCP
# client tests skip unless their LEASEHOLD_TEST_* tool paths are in the environment (they
# are passed through if they are). Logs (Garage, tests, bench) stay in target/garage-run/.
#
# Garage specifics: its S3 region is "us-east-1" because the storage bench signs for
# us-east-1 whatever the settings (bench/src/server.rs), and Garage refuses (400
# AuthorizationHeaderMalformed) a signature for any region but its `s3_region`. Garage
# stores objects as content-addressed 1 MiB blocks (deduplicated, zstd-compressed when
# that helps), so a benchmark body that repeats itself is written to disk once: see the
# note the benchmark part prints.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE_VERSION=2.5.0
PG_HOST=127.0.0.1
PG_PORT=5432
REGION=us-east-1
SIZE_MIB=256
RUN_TESTS=1
RUN_BENCH=1
TEST_ARGS=()
TEST_SUMMARY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tests-only) RUN_BENCH=0 ;;
    --bench-only) RUN_TESTS=0 ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --) shift; TEST_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

LOG_DIR=$PWD/target/garage-run
mkdir -p "$LOG_DIR"
RUN_ID="$$_$(date +%s)"
PG_ROLE="lh_garage_$RUN_ID"
PG_DB="lh_garage_$RUN_ID"
GARAGE_DIR=""
GARAGE_PID=""
START=$(date +%s)

psql_admin() { psql -v ON_ERROR_STOP=1 -qAt -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"; }

# Drops the databases owned by this run's role (its own and every per-test or bench
# database made from it; nobody else's), then the role.
drop_pg() {
  psql_admin -c "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = '$PG_ROLE'" |
    while read -r db; do psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
  psql_admin -c "DROP ROLE IF EXISTS \"$PG_ROLE\""
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$GARAGE_PID" ]; then
    kill "$GARAGE_PID" 2>/dev/null
    wait "$GARAGE_PID" 2>/dev/null
  fi
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then drop_pg >/dev/null 2>&1; fi
  [ -n "$GARAGE_DIR" ] && rm -rf "$GARAGE_DIR"
  echo "== done in $(($(date +%s) - START)) s, exit $rc (logs in $LOG_DIR)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

echo "== Garage $GARAGE_VERSION"
# `garage --version` of a cargo-installed build says "garage cargo:2.5.0 [features: …]".
if ! command -v garage >/dev/null 2>&1 || ! garage --version 2>/dev/null | grep -Eq "[v:]$GARAGE_VERSION( |\$)"; then
  # Default features (bundled libsodium/zstd/LMDB/SQLite): a C compiler is all it needs.
  cargo install "garage@$GARAGE_VERSION" --locked
fi
garage --version

echo "== PostgreSQL"
if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 1; done
fi
pg_isready -h "$PG_HOST" -p "$PG_PORT"
# A role of this run's own (CREATEDB, not superuser): what it creates is what is dropped.
psql_admin -c "CREATE ROLE \"$PG_ROLE\" LOGIN CREATEDB"
psql_admin -c "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_ROLE\""
PG_URL="postgres://$PG_ROLE@$PG_HOST:$PG_PORT/$PG_DB"

echo "== Garage server"
GARAGE_DIR=$(mktemp -d /tmp/leasehold-garage.XXXXXX)
S3_PORT=$(free_port)
RPC_PORT=$(free_port)
while [ "$RPC_PORT" = "$S3_PORT" ]; do RPC_PORT=$(free_port); done
CONF="$GARAGE_DIR/garage.toml"
cat >"$CONF" <<EOF
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "lmdb"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
EOF
chmod 600 "$CONF"
export GARAGE_CONFIG_FILE="$CONF"
RUST_LOG=${GARAGE_LOG:-garage=info} garage server >"$LOG_DIR/garage.log" 2>&1 &
GARAGE_PID=$!
for _ in $(seq 1 100); do
  garage status >/dev/null 2>&1 && break
  kill -0 "$GARAGE_PID" 2>/dev/null || { tail -20 "$LOG_DIR/garage.log"; echo "garage exited" >&2; exit 1; }
  sleep 0.2
done
NODE_ID=$(garage node id -q 2>/dev/null | cut -d@ -f1)
[ -n "$NODE_ID" ] || { tail -20 "$LOG_DIR/garage.log"; echo "garage did not start" >&2; exit 1; }
garage layout assign -z dc1 -c 1G "$NODE_ID" >/dev/null
garage layout apply --version 1 >/dev/null
garage status

S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
S3_BUCKET=leasehold-garage
S3_KEY="GK$(hex 12)"
S3_SECRET=$(hex 32)
# The layout takes a moment to become active; bucket creation is the first thing that needs it.
for i in $(seq 1 50); do
  garage bucket create "$S3_BUCKET" >/dev/null 2>&1 && break
  [ "$i" = 50 ] && { garage bucket create "$S3_BUCKET"; exit 1; }
  sleep 0.2
done
garage key import --yes -n leasehold "$S3_KEY" "$S3_SECRET" >/dev/null
garage bucket allow --read --write --owner "$S3_BUCKET" --key leasehold >/dev/null
# Ready when a signed HeadBucket succeeds with the imported key (Garage wants the payload
# hash header, which curl does not add by itself).
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
for i in $(seq 1 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -I -H "x-amz-content-sha256: $EMPTY_SHA256" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$S3_KEY:$S3_SECRET" "$S3_ENDPOINT/$S3_BUCKET" || true)
  [ "$code" = 200 ] && break
  [ "$i" = 50 ] && { tail -20 "$LOG_DIR/garage.log"; echo "HeadBucket answered $code" >&2; exit 1; }
  sleep 0.2
done
echo "S3 at $S3_ENDPOINT, bucket $S3_BUCKET, region $REGION, key $S3_KEY"

if [ "$RUN_TESTS" = 1 ]; then
  echo "== tests: cargo test --workspace ${TEST_ARGS[*]} (PostgreSQL + Garage)"
  unset LEASEHOLD_TEST_REQUIRE_ALL
  export LEASEHOLD_TEST_DATABASE_URL="$PG_URL"
  export LEASEHOLD_TEST_S3_ENDPOINT="$S3_ENDPOINT"
  export LEASEHOLD_TEST_S3_BUCKET="$S3_BUCKET"
  export LEASEHOLD_TEST_S3_ACCESS_KEY_ID="$S3_KEY"
  export LEASEHOLD_TEST_S3_SECRET_ACCESS_KEY="$S3_SECRET"
  export LEASEHOLD_TEST_S3_REGION="$REGION"
  set +e
  cargo test --workspace "${TEST_ARGS[@]}" 2>&1 | tee "$LOG_DIR/tests.log"
  test_rc=${PIPESTATUS[0]}
  set -e
  TEST_SUMMARY=$(awk '/^test result:/ { p += $4; f += $6; i += $8 }
       / \.\.\. ok$/ && /::distributed::/ { d++ }
       END { printf "tests against PostgreSQL + Garage: %d passed, %d failed, %d ignored (%d distributed variants passed)", p, f, i, d }' \
    "$LOG_DIR/tests.log")
  echo "== $TEST_SUMMARY"
  if [ "$test_rc" != 0 ]; then
    grep -E '^test .* FAILED$|^    [a-z_:]+$' "$LOG_DIR/tests.log" | sort -u || true
    echo "tests failed (exit $test_rc); Garage's log: $LOG_DIR/garage.log" >&2
    exit "$test_rc"
  fi
fi

if [ "$RUN_BENCH" = 1 ]; then
  echo "== storage benchmark, $SIZE_MIB MiB (PostgreSQL + Garage)"
  cargo build --release -p leasehold-server -p leasehold-bench
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "$(garage --version | head -1); PostgreSQL $(psql_admin -c 'SHOW server_version')"
  set +e
  AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" \
    ./target/release/leasehold-bench storage --size-mib "$SIZE_MIB" --backend s3 \
    --database-url "$PG_URL" --s3-endpoint "$S3_ENDPOINT" --s3-bucket "$S3_BUCKET" 2>&1 | tee "$LOG_DIR/bench.log"
  bench_rc=${PIPESTATUS[0]}
  set -e
  [ "$bench_rc" = 0 ] || { echo "the storage benchmark failed (exit $bench_rc); Garage's log: $LOG_DIR/garage.log" >&2; exit 1; }
  # Garage keeps unreferenced blocks for a while before deleting them, so this is what
  # the benchmark's uploads put on disk.
  echo "Garage data dir after the benchmark: $(du -sm "$GARAGE_DIR/data" | cut -f1) MiB on disk" \
    "(the benchmark body repeats one 1 MiB chunk, which Garage stores once: block dedup)"
fi

echo "== summary"
[ -n "$TEST_SUMMARY" ] && echo "$TEST_SUMMARY"
[ "$RUN_BENCH" = 1 ] && grep -E '^(upload|download|API RSS)' "$LOG_DIR/bench.log"
exit 0
