#!/usr/bin/env bash
# CI check of the deployment files: docker/nginx.conf is the render of
# docker/nginx.conf.template, nginx (Debian 12's, the version the compose file pins) accepts
# it and actually balances with it, docker-compose.yml is valid, and every image is pinned.
# Runs from any directory, as root (CI) or not; needs nginx, docker-compose (installed with
# apt-get when missing and run as root), python3, curl and unshare. Starts nothing it does
# not stop.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The one render of the template that is committed, as docker/nginx.conf.
COMPOSE_RENDER=(80 api1:8080 api2:8080 api3:8080)
REGENERATE="docker/render-nginx.sh ${COMPOSE_RENDER[*]} > docker/nginx.conf"

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "tools"
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $EUID -eq 0 ]] || fail "missing ${missing[*]}: apt-get install -y nginx-light docker-compose"
  echo "   installing nginx-light docker-compose (missing: ${missing[*]})"
  # Keep the package's own nginx service from starting (and staying behind) on port 80.
  policy_rc=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy_rc=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy_rc"
    chmod 755 "$policy_rc"
  fi
  install_rc=0
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light docker-compose >/dev/null
  } || install_rc=$?
  [[ -z $policy_rc ]] || rm -f "$policy_rc"
  [[ $install_rc -eq 0 ]] || fail "apt-get install nginx-light docker-compose failed ($install_rc)"
fi
for tool in nginx docker-compose python3 curl unshare diff; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed"
done
nginx_version=$(nginx -v 2>&1 | sed -n 's|^nginx version: nginx/\([0-9.]*\).*|\1|p')
[[ -n $nginx_version ]] || fail "cannot read the version of $(command -v nginx)"
ok "nginx $nginx_version ($(command -v nginx)), docker-compose $(docker-compose version --short 2>/dev/null || echo '?')"

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx started as root runs its workers as nobody
pids=()          # the backends this script starts (nginx masters: nginx_masters)
nginx_masters=()

# The processes whose parent is $1 (from /proc: pgrep is not on every machine).
children_of() {
  local stat fields ppid
  for stat in /proc/[0-9]*/stat; do
    fields=$(cat "$stat" 2>/dev/null) || continue
    fields=${fields##*) }
    read -r _ ppid _ <<<"$fields"
    if [[ $ppid == "$1" ]]; then
      stat=${stat#/proc/}
      printf '%s\n' "${stat%/stat}"
    fi
  done
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Stops an nginx master started with -g 'daemon off;' and makes sure its workers are gone.
stop_nginx() {
  local master=$1 workers worker
  workers=$(children_of "$master")
  stop_pid "$master"
  for worker in $workers; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$worker" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$worker" 2>/dev/null; then
      kill -KILL "$worker" 2>/dev/null || true
    fi
  done
}

cleanup() {
  local rc=$? pid
  for pid in "${nginx_masters[@]}"; do stop_nginx "$pid"; done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The nginx image's /etc/nginx/nginx.conf, with its paths moved under $1; the committed
# docker/nginx.conf goes where compose mounts it (conf.d/default.conf).
image_main_conf() {
  local dir=$1 user_line=${2-}
  mkdir -p "$dir/conf.d"
  cp docker/nginx.conf "$dir/conf.d/default.conf"
  local mime=""
  [[ ! -f /etc/nginx/mime.types ]] || mime="include /etc/nginx/mime.types;"
  cat > "$dir/nginx.conf" <<EOF
$user_line
worker_processes auto;
error_log $dir/error.log notice;
pid $dir/nginx.pid;
events {
    worker_connections 1024;
}
http {
    $mime
    default_type application/octet-stream;
    access_log $dir/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    include $dir/conf.d/*.conf;
}
EOF
}

step "(a) docker/nginx.conf is the render of docker/nginx.conf.template"
if ! docker/render-nginx.sh "${COMPOSE_RENDER[@]}" > "$tmp/rendered.conf"; then
  fail "docker/render-nginx.sh ${COMPOSE_RENDER[*]} failed"
fi
if ! diff -u docker/nginx.conf "$tmp/rendered.conf"; then
  fail "docker/nginx.conf is not the render of docker/nginx.conf.template; regenerate with: $REGENERATE"
fi
ok "docker/nginx.conf = docker/render-nginx.sh ${COMPOSE_RENDER[*]}"

step "(b) nginx -t on docker/nginx.conf as the nginx image loads it"
mapfile -t upstream_hosts < <(sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([A-Za-z0-9._-]\{1,\}\):[0-9]\{1,\}[[:space:];].*$/\1/p' docker/nginx.conf | sort -u)
[[ ${#upstream_hosts[@]} -gt 0 ]] || fail "no 'server host:port' lines in docker/nginx.conf"
# nginx resolves upstream names when it loads the configuration, and the compose service
# names resolve only on the compose network: in a private mount namespace, a hosts file
# that maps them to 127.0.0.1 is bind-mounted over /etc/hosts (the machine's stays as is).
# A private network namespace too: nginx -t binds the listen port (80) to try it.
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s\n' "${upstream_hosts[*]}" > "$tmp/hosts"
if [[ $EUID -eq 0 ]]; then
  namespace=(unshare --mount --net)
  user_line=""
else
  # An unprivileged user namespace: "root" there is this user, so no chown to nobody.
  namespace=(unshare --user --map-root-user --mount --net)
  user_line="user root;"
fi
if "${namespace[@]}" true 2>/dev/null; then
  image_main_conf "$tmp/compose" "$user_line"
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner sh
  if ! "${namespace[@]}" sh -c 'mount --bind "$1" /etc/hosts && exec nginx -t -p "$2" -c "$2/nginx.conf"' \
    sh "$tmp/hosts" "$tmp/compose" 2>&1 | sed 's/^/   /'; then
    fail "nginx -t refuses docker/nginx.conf"
  fi
  ok "nginx $nginx_version accepts docker/nginx.conf in the image's http block, ${upstream_hosts[*]} resolving (private /etc/hosts)"
else
  # No namespaces here (e.g. an unprivileged container): check a copy with the names
  # replaced by 127.0.0.1, and say so.
  echo "   WARNING: '${namespace[*]}' is not permitted here; checking a copy of docker/nginx.conf with ${upstream_hosts[*]} replaced by 127.0.0.1"
  image_main_conf "$tmp/compose" ""
  for host in "${upstream_hosts[@]}"; do
    sed -i "s/\([[:space:]]server[[:space:]]\{1,\}\)$host:/\1127.0.0.1:/" "$tmp/compose/conf.d/default.conf"
  done
  if [[ $EUID -ne 0 ]]; then # nginx -t binds the listen port, and 80 needs root
    port=$(free_port)
    echo "   WARNING: not root either: the copy listens on 127.0.0.1:$port instead"
    sed -i "s/^\([[:space:]]*listen[[:space:]]\{1,\}\)[^;]*;/\1127.0.0.1:$port;/" "$tmp/compose/conf.d/default.conf"
  fi
  if ! nginx -t -p "$tmp/compose" -c "$tmp/compose/nginx.conf" 2>&1 | sed 's/^/   /'; then
    fail "nginx -t refuses docker/nginx.conf"
  fi
  ok "nginx $nginx_version accepts docker/nginx.conf (upstream names replaced: see the warning)"
fi

step "(c) nginx -t on a --main render with 127.0.0.1 upstreams"
mkdir -p "$tmp/main"
docker/render-nginx.sh --main "$tmp/main" 127.0.0.1:18080 127.0.0.1:18081 127.0.0.1:18082 127.0.0.1:18083 \
  > "$tmp/main/nginx.conf"
if ! nginx -t -p "$tmp/main" -c "$tmp/main/nginx.conf" 2>&1 | sed 's/^/   /'; then
  fail "nginx -t refuses the --main render"
fi
ok "nginx $nginx_version accepts docker/render-nginx.sh --main PREFIX 127.0.0.1:18080 127.0.0.1:18081 ..."

step "(d) nginx from a --main render balances two backends"
# A backend answers with its name and the headers nginx passed on.
backend_py='
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(length) if length else b""
        body = ("backend=%s method=%s body=%d xff=%s request_id=%s\n" % (
            name, self.command, len(got), self.headers.get("X-Forwarded-For"),
            self.headers.get("X-Request-Id"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'
declare -A backend_pid backend_port
start_backend() {
  python3 -c "$backend_py" "$1" "${backend_port[$1]}" &
  backend_pid[$1]=$!
  pids+=("$!")
  for _ in $(seq 1 50); do
    curl -fs -o /dev/null "http://127.0.0.1:${backend_port[$1]}/" && return 0
    sleep 0.1
  done
  fail "backend $1 did not start"
}
backend_port[a]=$(free_port)
backend_port[b]=$(free_port)
start_backend a
start_backend b
lb_port=$(free_port)
lb_dir="$tmp/lb"
mkdir -p "$lb_dir"
docker/render-nginx.sh --main "$lb_dir" "127.0.0.1:$lb_port" \
  "127.0.0.1:${backend_port[a]}" "127.0.0.1:${backend_port[b]}" > "$lb_dir/nginx.conf"
nginx -p "$lb_dir" -c "$lb_dir/nginx.conf" -g 'daemon off;' &
nginx_masters+=("$!")
lb_pid=$!
lb="http://127.0.0.1:$lb_port"
for _ in $(seq 1 50); do
  curl -fs -o /dev/null "$lb/" && break
  kill -0 "$lb_pid" 2>/dev/null || { cat "$lb_dir/error.log" >&2 || true; fail "nginx exited"; }
  sleep 0.1
done
curl -fs -o /dev/null "$lb/" || { cat "$lb_dir/error.log" >&2 || true; fail "nginx does not answer on $lb"; }
ok "nginx (pid $lb_pid) on $lb in front of a (:${backend_port[a]}) and b (:${backend_port[b]})"

# Fetches $lb$1 (extra curl arguments after it); prints the backend's answer.
get() {
  local path=$1
  shift
  curl -fsS "$@" "$lb$path" || fail "curl $* $lb$path failed"
}
# Field $1 (backend, xff, request_id, ...) of the answer $2.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
backends_of() { # $1 requests; prints the sorted distinct backends that answered
  local i
  for i in $(seq 1 "$1"); do field backend "$(get "/rr/$i")"; done | sort | uniq -c | awk '{print $2 ":" $1}' | xargs
}

seen=$(backends_of 6)
[[ $seen == "a:3 b:3" ]] || fail "6 requests were not round-robined over a and b: $seen"
ok "round robin: 6 requests → $seen"

answer=$(get /xff -H 'X-Forwarded-For: 203.0.113.7')
grep -q 'xff=203.0.113.7, 127.0.0.1 ' <<<"$answer" ||
  fail "X-Forwarded-For did not arrive as '203.0.113.7, 127.0.0.1': $answer"
answer=$(get /xff)
grep -q 'xff=127.0.0.1 ' <<<"$answer" || fail "X-Forwarded-For did not arrive as '127.0.0.1': $answer"
ok "X-Forwarded-For arrives: the client's address appended to any the client sent"

answer=$(get /id -H 'X-Request-Id: check-123')
[[ $(field request_id "$answer") == check-123 ]] || fail "the client's X-Request-Id did not arrive: $answer"
answer=$(get /id)
[[ $(field request_id "$answer") =~ ^[0-9a-f]{32}$ ]] || fail "nginx did not make an X-Request-Id: $answer"
ok "X-Request-Id: the client's goes through, nginx makes one when absent"

answer=$(get /post -X POST --data-binary 'hello, pods')
[[ $(field method "$answer") == POST && $(field body "$answer") == 11 ]] || fail "a POST body did not arrive: $answer"
ok "a POST body arrives whole"

stop_pid "${backend_pid[b]}"
sleep 0.3
seen=$(backends_of 4)
[[ $seen == "a:4" ]] || fail "with b stopped, 4 GETs were not all answered by a: $seen"
answer=$(get /post -X POST --data-binary 'failover')
[[ $(field backend "$answer") == a ]] || fail "with b stopped, a POST was not answered by a: $answer"
ok "b stopped: every GET and POST answered by a (connection refused → next upstream)"

start_backend b
sleep 3.2 # fail_timeout=2s, counted in whole seconds by nginx: up to 3 s
seen=$(backends_of 6)
[[ $seen == *a* && $seen == *b* ]] || fail "b restarted, but 6 requests did not reach both: $seen"
ok "b restarted: back in the rotation after fail_timeout ($seen)"

workers=$(children_of "$lb_pid" | xargs)
stop_nginx "$lb_pid"
nginx_masters=()
left=""
for pid in $lb_pid $workers; do
  if kill -0 "$pid" 2>/dev/null; then left="$left $pid"; fi
done
[[ -z $left ]] || fail "nginx processes left:$left"
ok "nginx stopped (master $lb_pid, workers ${workers:-none}): none left"

step "(e) docker-compose config"
compose=(docker-compose --project-directory "$root" -f "$root/docker-compose.yml")
LEASEHOLD_SECRET_KEY=check-only-not-a-secret "${compose[@]}" config -q ||
  fail "docker-compose config refuses docker-compose.yml"
mapfile -t services < <(LEASEHOLD_SECRET_KEY=check-only-not-a-secret "${compose[@]}" config --services)
for host in "${upstream_hosts[@]}"; do
  printf '%s\n' "${services[@]}" | grep -qx "$host" ||
    fail "docker/nginx.conf balances over '$host', which is not a service of docker-compose.yml"
done
ok "docker-compose $(docker-compose version --short 2>/dev/null) accepts docker-compose.yml; services: ${services[*]}"
ok "every upstream of docker/nginx.conf (${upstream_hosts[*]}) is a compose service"

step "(f) images pinned to exact tags"
# Exact: a digest, a MinIO RELEASE.<date> tag, or a version with all its parts
# (three for nginx and rust, x.y.z; two for postgres 15.13 and debian 12.12), never
# `latest`, a bare major (postgres:15) or a codename (bookworm-slim).
exact_tag() {
  local ref=$1 last name tag version parts want=2
  [[ $ref != *@sha256:* ]] || return 0
  last=${ref##*/} # registry:port/owner/name:tag → name:tag
  [[ $last == *:* ]] || return 1
  name=${last%%:*}
  tag=${last#*:}
  [[ $tag != latest ]] || return 1
  [[ ! $tag =~ ^RELEASE\.[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}Z$ ]] || return 0
  version=$(grep -oE '^[0-9]+(\.[0-9]+)*' <<<"$tag") || return 1
  parts=$(tr -cd . <<<"$version" | wc -c)
  parts=$((parts + 1))
  case $name in nginx | rust) want=3 ;; esac
  [[ $parts -ge $want ]]
}
bad=()
checked=()
while read -r ref; do
  [[ -n $ref ]] || continue
  checked+=("$ref")
  exact_tag "$ref" || bad+=("docker-compose.yml: $ref")
done < <(sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\'' #]*\).*/\1/p' docker-compose.yml)
stages=()
while read -r ref stage; do
  checked+=("$ref")
  if [[ " ${stages[*]} " != *" $ref "* ]]; then
    exact_tag "$ref" || bad+=("Dockerfile: FROM $ref")
  fi
  [[ -z $stage ]] || stages+=("$stage")
done < <(sed -n 's/^FROM[[:space:]]\{1,\}\(--[^[:space:]]*[[:space:]]\{1,\}\)*\([^[:space:]]*\)\([[:space:]]\{1,\}[Aa][Ss][[:space:]]\{1,\}\([^[:space:]]*\)\)\{0,1\}.*/\2 \4/p' Dockerfile)
[[ ${#bad[@]} -eq 0 ]] || fail "not pinned to an exact tag: ${bad[*]}"
ok "exact tags: ${checked[*]}"
lb_image=$(LEASEHOLD_SECRET_KEY=check-only-not-a-secret "${compose[@]}" config |
  sed -n 's/^[[:space:]]*image:[[:space:]]*\(nginx:.*\)$/\1/p')
[[ $lb_image == "nginx:$nginx_version" ]] ||
  fail "the compose file runs ${lb_image:-no nginx image}, but this check tests with nginx $nginx_version: pin nginx:$nginx_version"
ok "the lb image ($lb_image) is the nginx version checked here"
copies=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' Dockerfile | grep '^COPY' || true)
for binary in leasehold-api leasehold-worker leasehold; do
  grep -Eq "/release/$binary( |$)" <<<"$copies" || fail "the Dockerfile does not copy $binary into the image"
done
ok "the image holds leasehold-api, leasehold-worker and leasehold"

printf '\nall deployment checks passed\n'
