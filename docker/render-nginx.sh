#!/usr/bin/env bash
# Renders docker/nginx.conf.template, the one nginx configuration of the load balancer in
# front of the leasehold-api pods, to stdout.
#
#   docker/render-nginx.sh LISTEN UPSTREAM...
#       The http-level block (map, upstream, server), as the nginx image includes it from
#       /etc/nginx/conf.d/. docker/nginx.conf is exactly
#       `docker/render-nginx.sh 80 api1:8080 api2:8080 api3:8080` (docker/check.sh checks it).
#   docker/render-nginx.sh --main PREFIX LISTEN UPSTREAM...
#       A whole nginx.conf around that block, for running nginx outside a container, root or
#       not: `nginx -p PREFIX -c PREFIX/nginx.conf [-g 'daemon off;']`. Everything it writes
#       is directly in PREFIX (an absolute path to an existing directory, writable by the
#       user starting nginx): nginx.pid, error.log, access.log and the *_temp directories
#       nginx creates itself. Started as root, the worker processes run as `nobody`; they
#       open nothing under PREFIX (bodies are never buffered to the *_temp directories), so
#       a PREFIX only root can enter (mktemp -d) works too.
#
# LISTEN is what `listen` takes: a port (80) or address:port (127.0.0.1:18080).
# UPSTREAM is a pod as host:port (api1:8080, 127.0.0.1:18081, [::1]:18081).
set -euo pipefail

usage() {
  echo "usage: $0 [--main PREFIX] LISTEN UPSTREAM..." >&2
  echo "  e.g. $0 80 api1:8080 api2:8080 api3:8080" >&2
  echo "       $0 --main /tmp/lb 127.0.0.1:18080 127.0.0.1:18081 127.0.0.1:18082" >&2
  exit 2
}

# Values are pasted into the configuration: refuse anything that could end a directive.
check_word() {
  local plain='^[][A-Za-z0-9._:/-]+$'
  if [[ ! $2 =~ $plain ]]; then
    echo "$0: $1 '$2' is not a plain address (letters, digits, . _ - : / [ ] only)" >&2
    exit 2
  fi
}

template="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nginx.conf.template"
invocation="docker/render-nginx.sh $*"

prefix=""
if [[ ${1-} == --main ]]; then
  [[ $# -ge 2 ]] || usage
  prefix=$2
  shift 2
  check_word PREFIX "$prefix"
  if [[ $prefix != /* ]]; then
    echo "$0: PREFIX must be an absolute path, not '$prefix'" >&2
    exit 2
  fi
  prefix=${prefix%/}
  [[ -n $prefix ]] || { echo "$0: PREFIX must not be /" >&2; exit 2; }
fi
[[ $# -ge 2 ]] || usage
[[ $1 != -* ]] || usage
listen=$1
shift
check_word LISTEN "$listen"
for upstream in "$@"; do
  check_word UPSTREAM "$upstream"
  [[ $upstream == *:* ]] || { echo "$0: UPSTREAM '$upstream' needs a port (host:port)" >&2; exit 2; }
done

# The http-level block, each line prefixed with $1 (indentation for --main).
render_block() {
  local indent=$1 line upstream
  printf '%s# Generated from docker/nginx.conf.template by: %s\n' "$indent" "$invocation"
  printf '%s# Edit the template, not this output, and render again.\n' "$indent"
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^([[:space:]]*)@UPSTREAM_SERVERS@[[:space:]]*$ ]]; then
      for upstream in "${UPSTREAMS[@]}"; do
        printf '%s%sserver %s max_fails=1 fail_timeout=2s;\n' \
          "$indent" "${BASH_REMATCH[1]}" "$upstream"
      done
    elif [[ -z $line ]]; then
      printf '\n'
    else
      printf '%s%s\n' "$indent" "${line//@LISTEN@/"$listen"}"
    fi
  done < "$template"
}
UPSTREAMS=("$@")

if [[ -z $prefix ]]; then
  render_block ""
  exit 0
fi

cat <<EOF
# A whole nginx.conf for the Leasehold load balancer outside a container; everything nginx
# writes is under $prefix. Start: nginx -p $prefix -c $prefix/nginx.conf [-g 'daemon off;']
# Stop: kill -TERM \$(cat $prefix/nginx.pid)
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log notice;

events {
    worker_connections 1024;
}

http {
    log_format leasehold '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                         'upstream=\$upstream_addr status=\$upstream_status '
                         'time=\$request_time id=\$leasehold_request_id';
    access_log $prefix/access.log leasehold;
    client_body_temp_path $prefix/client_body_temp;
    proxy_temp_path $prefix/proxy_temp;
    fastcgi_temp_path $prefix/fastcgi_temp;
    uwsgi_temp_path $prefix/uwsgi_temp;
    scgi_temp_path $prefix/scgi_temp;

EOF
render_block "    "
printf '}\n'
