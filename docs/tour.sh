#!/usr/bin/env bash
# The README's curl tour, with a check on every answer: status code and the JSON fields that
# matter. Runs against a server that is already running; needs only bash, curl and python3.
#
#   TOUR_URL       base URL (default http://127.0.0.1:8080)
#   TOUR_KEY       an API key (default: the contents of TOUR_KEY_FILE)
#   TOUR_KEY_FILE  default leasehold-data/dev-api-key (what the embedded first start writes)
#   TOUR_WEBHOOK   auto (default: skipped when the server refuses a receiver on this machine),
#                  yes (must pass; the server needs LEASEHOLD_WEBHOOK_ALLOW_PRIVATE=true), no
#
# Prints one line per check and ends with "N passed, 0 failed"; exits 1 at the first failure,
# showing the request's status and answer.
set -euo pipefail

BASE=${TOUR_URL:-http://127.0.0.1:8080}
BASE=${BASE%/}
KEY=${TOUR_KEY:-$(cat "${TOUR_KEY_FILE:-leasehold-data/dev-api-key}")}
H="Authorization: Bearer $KEY"
WEBHOOK=${TOUR_WEBHOOK:-auto}
T=$(mktemp -d)
passed=0
step_name=
status=
helper_pids=()
cleanup() {
  for pid in "${helper_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"

step() { step_name=$1; printf '== %s\n' "$1"; }
ok() { passed=$((passed + 1)); printf '  ok  %s\n' "$1"; }
fail() {
  printf '  FAIL  %s: %s\n' "$step_name" "$1" >&2
  printf '  last answer: HTTP %s\n' "${status:-?}" >&2
  [ -s "$T/body" ] && { head -c 2000 "$T/body" >&2; echo >&2; }
  printf '%s passed, 1 failed\n' "$passed" >&2
  exit 1
}

# req METHOD URL [curl options…]: the status goes to $status, the body to $T/body and the
# headers to $T/headers. A URL starting with / is relative to TOUR_URL.
req() {
  local method=$1 url=$2
  shift 2
  case $url in /*) url=$BASE$url ;; esac
  local how=(-X "$method")
  [ "$method" = HEAD ] && how=(-I)
  : >"$T/body"
  status=$(curl -sS "${how[@]}" "$url" -D "$T/headers" -o "$T/body" -w '%{http_code}' "$@") ||
    fail "curl $method $url failed"
}

# json PATH: a field of the last answer ("items.0.seq", or "items[type=x].state" for the first
# item whose field type is x); strings raw, everything else as JSON.
json() {
  python3 - "$T/body" "$1" <<'EOF' || fail "the answer has no field $1"
import json, re, sys
value = json.load(open(sys.argv[1]))
for part in re.findall(r"\[[^\]]*\]|[^.\[\]]+", sys.argv[2]):
    if part.startswith("["):
        key, want = part[1:-1].split("=", 1)
        value = next(item for item in value if str(item.get(key)) == want)
    else:
        value = value[int(part)] if isinstance(value, list) else value[part]
print(value if isinstance(value, str) else json.dumps(value))
EOF
}

# header NAME: a header of the last answer (empty when absent).
header() {
  local want=${1,,} line name value=
  while IFS= read -r line; do
    line=${line%$'\r'}
    name=${line%%:*}
    [ "${name,,}" = "$want" ] && value=${line#*: }
  done <"$T/headers"
  printf '%s\n' "$value"
}

expect_status() { [ "$status" = "$1" ] || fail "expected HTTP $1, got $status"; ok "HTTP $1"; }
expect_json() {
  local got
  got=$(json "$1")
  [ "$got" = "$2" ] || fail "expected $1 = $2, got $got"
  ok "$1 = $2"
}
expect_header() {
  local got
  got=$(header "$1")
  [ "$got" = "$2" ] || fail "expected header $1: $2, got '$got'"
  ok "$1: $2"
}
expect_body() {
  cmp -s "$T/body" "$1" || fail "the body differs from $1"
  ok "body = $1"
}
expect_error() { expect_status "$1"; expect_json code "$2"; }

step "The server is up"
req GET /healthz
expect_status 200
req GET /v1/account -H "$H"
expect_status 200
balance=$(json balance_micros)
ok "the key works (balance $balance micros)"

step "What things cost, and a quote"
req GET /api/pricing
expect_status 200
expect_json currency USDC
req GET "/api/quote?size_bytes=1048576&duration_seconds=3600"
expect_status 200
expect_json cost_micros 29

step "Store a file for an hour"
echo 'hello, future agent' >note.txt
req POST /api/store -H "$H" \
  -H "X-File-Name: note.txt" -H "X-Size-Bytes: $(wc -c <note.txt)" \
  -H "X-Duration-Seconds: 3600" -H "Content-Type: text/plain" \
  --data-binary @note.txt
expect_status 201
expect_json variant storage
expect_json size_bytes 20
expect_json sha256 "$(sha256sum note.txt | cut -d' ' -f1)"
expect_json cost_micros 29
LEASE=$(json lease_id)
expect_json download_url "$BASE/api/download/$LEASE"

step "Download it"
req GET "/api/download/$LEASE" -H "$H"
expect_status 200
expect_body note.txt
expect_header Content-Type text/plain
req GET "/api/download/$LEASE" -H "$H" -H "Range: bytes=0-4"
expect_status 206
[ "$(cat "$T/body")" = hello ] || fail "the range is not 'hello'"
ok "bytes 0-4 = hello"
req HEAD "/api/download/$LEASE" -H "$H"
expect_status 200
expect_header Content-Length 20
req GET "/api/leases/$LEASE" -H "$H"
expect_status 200
expect_json lease.state active
req GET "/api/leases?variant=storage&state=active" -H "$H"
expect_status 200
expect_json items.0.lease_id "$LEASE"

step "The account: balance, ledger, keys"
req GET /v1/account -H "$H"
expect_status 200
expect_json balance_micros $((balance - 29))
req GET /v1/account/ledger -H "$H"
expect_status 200
expect_json items.0.kind charge
expect_json items.0.lease_id "$LEASE"
expect_json items.0.amount_micros 29
req POST /v1/account/api-keys -H "$H"
expect_status 201
KEY2=$(json key)
PREFIX=$(json prefix)
req GET /v1/account -H "Authorization: Bearer $KEY2"
expect_status 200
req DELETE "/v1/account/api-keys/$PREFIX" -H "$H"
expect_status 200
req GET /v1/account -H "Authorization: Bearer $KEY2"
expect_error 401 unauthorized

step "A Mailbox: create, drop without auth"
req POST /api/mailbox -H "$H" \
  -H "X-Capacity-Bytes: 1048576" -H "X-Duration-Seconds: 3600"
expect_status 201
MB=$(json lease_id)
DROP=$(json drop_url)
req POST "$DROP" -H "Content-Type: application/json" -d '{"task":"done"}'
expect_status 201
expect_json seq 1
expect_json size_bytes 15
MSG=$(json message_id)

step "Read the Mailbox: a page, a long poll, the event stream"
req GET "/api/mailbox/$MB/messages?after=0" -H "$H"
expect_status 200
expect_json items.0.id "$MSG"
expect_json next_cursor 1
(curl -s "$BASE/api/mailbox/$MB/messages?after=1&wait=30" -H "$H" \
  -o "$T/poll" -w '%{http_code} %{time_total}' >"$T/poll.status") &
poll=$!
sleep 1
req POST "$DROP" -H "Content-Type: text/plain" -d 'second'
expect_status 201
wait "$poll"
read -r poll_status poll_seconds <"$T/poll.status" || true
cp "$T/poll" "$T/body"
status=$poll_status
expect_status 200
expect_json items.0.seq 2
python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= 25)' "$poll_seconds" ||
  fail "the long poll waited ${poll_seconds}s instead of waking on the drop"
ok "the long poll woke on the drop (${poll_seconds}s)"
curl -sN --max-time 10 "$BASE/api/mailbox/$MB/events" -H "$H" >"$T/events" &
events=$!
for _ in $(seq 100); do grep -qx 'id: 2' "$T/events" && break; sleep 0.1; done
kill "$events" 2>/dev/null || true
wait "$events" 2>/dev/null || true
grep -qx 'event: message' "$T/events" && grep -qx 'id: 2' "$T/events" ||
  fail "the event stream did not replay both messages: $(head -c 500 "$T/events")"
ok "the event stream replays both messages"

step "A message: fetch, delete"
req GET "/api/mailbox/$MB/messages/$MSG" -H "$H"
expect_status 200
[ "$(cat "$T/body")" = '{"task":"done"}' ] || fail "the message body differs"
ok 'body = {"task":"done"}'
expect_header Content-Type application/json
expect_header X-Message-Id "$MSG"
req DELETE "/api/mailbox/$MB/messages/$MSG" -H "$H"
expect_status 200
expect_json freed_bytes 15
req GET "/api/mailbox/$MB/messages/$MSG" -H "$H"
expect_status 404

step "A Checkpoint: create, read with its ETag"
WF=crawl-$RANDOM
req POST /api/checkpoint -H "$H" -H "X-Workflow-Id: $WF" \
  -H "X-Duration-Seconds: 86400" -H "Content-Type: application/json" -d '{"page":1}'
expect_status 201
expect_json workflow_id "$WF"
expect_json version 1
req GET "/api/checkpoint/$WF" -H "$H"
expect_status 200
expect_header ETag '"1"'
expect_header X-Checkpoint-Version 1
[ "$(cat "$T/body")" = '{"page":1}' ] || fail "version 1 differs"
ok 'body = {"page":1}'
req GET "/api/checkpoint/$WF" -H "$H" -H 'If-None-Match: "1"'
expect_status 304

step "Write version 2 with If-Match; a stale If-Match is refused"
req PUT "/api/checkpoint/$WF" -H "$H" -H 'If-Match: "1"' \
  -H "Content-Type: application/json" -d '{"page":2}'
expect_status 200
expect_json version 2
req PUT "/api/checkpoint/$WF" -H "$H" -H 'If-Match: "1"' \
  -H "Content-Type: application/json" -d '{"page":3}'
expect_error 412 version_conflict
expect_json current_version 2
req GET "/api/checkpoint/$WF" -H "$H"
expect_status 200
expect_header Content-Type application/json
[ "$(cat "$T/body")" = '{"page":2}' ] || fail "version 2 differs"
ok 'body = {"page":2}'
req GET "/api/checkpoint/$WF/versions" -H "$H"
expect_status 200
expect_json current_version 2
expect_json items.0.version 2
expect_json items.1.version 1
req GET "/api/checkpoint/$WF/versions/1" -H "$H"
expect_status 200
[ "$(cat "$T/body")" = '{"page":1}' ] || fail "version 1 differs"
ok 'version 1 = {"page":1}'

step "A Handoff of the stored file: one claim, counted"
req POST "/api/handoff/$LEASE" -H "$H" -H "Content-Type: application/json" \
  -d '{"max_claims":1,"ttl_seconds":600}'
expect_status 201
expect_json max_claims 1
HND=$(json handoff_id)
CLAIM=$(json claim_url)
req HEAD "$CLAIM"
expect_status 200
expect_header X-Claims-Remaining 1
req GET "$CLAIM"
expect_status 200
expect_body note.txt
expect_header X-Claims-Remaining 0
req GET "$CLAIM"
expect_error 410 handoff_exhausted
req GET "/api/handoffs?lease_id=$LEASE" -H "$H"
expect_status 200
expect_json items.0.handoff_id "$HND"
expect_json items.0.claims_completed 1
req GET "/api/handoffs/$HND" -H "$H"
expect_status 200
expect_json claims.0.outcome completed
expect_json claims.0.bytes_sent 20
req DELETE "/api/handoffs/$HND" -H "$H"
expect_status 200
expect_json claims_completed 1
req GET "$CLAIM"
expect_error 410 handoff_revoked

step "A webhook to a receiver on this machine"
if [ "$WEBHOOK" = no ]; then
  echo "  skipped (TOUR_WEBHOOK=no)"
else
  python3 - "$T/hooks" >"$T/receiver.port" <<'EOF' &
import http.server, json, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with open(sys.argv[1], "a") as out:
            out.write(json.dumps({"headers": headers, "body": body.decode()}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
  helper_pids+=($!)
  for _ in $(seq 50); do [ -s "$T/receiver.port" ] && break; sleep 0.1; done
  HOOK="http://127.0.0.1:$(cat "$T/receiver.port")/hook"
  req POST /api/mailbox -H "$H" -H 'X-Capacity-Bytes: 1048576' -H 'X-Duration-Seconds: 3600' \
    -H "X-Webhook-Url: $HOOK" -H 'X-Expiry-Warning-Seconds: 300'
  if [ "$WEBHOOK" = auto ] && [ "$status" = 400 ] && [ "$(json code)" = webhook_url_forbidden ]; then
    echo "  skipped: the server refuses receivers on this machine (start it with LEASEHOLD_WEBHOOK_ALLOW_PRIVATE=true)"
  else
    expect_status 201
    expect_json webhook_url "$HOOK"
    MBOX=$(json lease_id)
    SECRET=$(json webhook_secret)
    req POST "$(json drop_url)" -H "Content-Type: application/json" -d '{"hello":"hook"}'
    expect_status 201
    RECEIVED="items[type=mailbox.message.received]"
    for _ in $(seq 60); do
      req GET "/api/leases/$MBOX/deliveries" -H "$H"
      [ "$status" = 200 ] && [ "$(json "$RECEIVED.state" 2>/dev/null)" = delivered ] && break
      sleep 0.5
    done
    expect_status 200
    expect_json "$RECEIVED.state" delivered
    expect_json "$RECEIVED.attempts" 1
    expect_json "items[type=lease.expiring].state" pending
    python3 - "$T/hooks" "$SECRET" "$MBOX" <<'EOF' || fail "the receiver did not get a correctly signed event"
import base64, hashlib, hmac, json, sys
hooks, secret, lease = sys.argv[1], sys.argv[2], sys.argv[3]
got = [json.loads(line) for line in open(hooks)]
hook = next(h for h in got if json.loads(h["body"])["lease_id"] == lease)
body, headers = hook["body"].encode(), hook["headers"]
assert json.loads(body)["type"] == "mailbox.message.received"
mailbox = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
assert headers["x-mailbox-signature"] == mailbox, "X-Mailbox-Signature"
key = base64.b64decode(secret.removeprefix("whsec_"))
signed = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
standard = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
assert standard in headers["webhook-signature"].split(), "webhook-signature"
EOF
    ok "the receiver got mailbox.message.received with both signatures valid"
  fi
fi

step "Delete the stored file early (no refund)"
req DELETE "/api/store/$LEASE" -H "$H"
expect_status 200
expect_json state deleted
req GET "/api/leases/$LEASE" -H "$H"
expect_error 410 lease_deleted
req GET "/api/download/$LEASE" -H "$H"
expect_error 410 lease_deleted

printf '%s passed, 0 failed\n' "$passed"
