#!/usr/bin/env bash
# A throwaway PostgreSQL for the test suite, from Debian's `postgresql` package. This script owns
# one cluster per DIR and nothing else: DIR/data (the cluster), DIR/log (the server log), the Unix
# socket in DIR, and the server process; it installs `postgresql` with apt-get when the machine
# has no initdb.
#   start DIR  installs what is missing, creates and starts the cluster on a free port of
#              127.0.0.1 (trust auth, loopback only), creates the role `consentry` and the database
#              `consentry_test` it owns, and prints one line on stdout: the URL. The rest goes to
#              stderr; on failure the log tail too, and the exit status is non-zero.
#   stop DIR   stops the server (fast shutdown) and removes DIR. Never fails if already stopped.
# The server never runs as root: as root it runs as the `postgres` system user the package
# creates (DIR is chowned to it, so DIR's parents must be traversable by it, as /tmp is).
set -euo pipefail

say() { printf '\033[1m[postgres]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The caller's libpq settings must not redirect our own psql/pg_ctl calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGDATA 2>/dev/null || true

newest_bin() {
  local d best="" best_v=-1 v
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] || continue
    v=$(basename "$(dirname "$d")")
    [[ $v =~ ^[0-9]+$ ]] || continue
    if [ "$v" -gt "$best_v" ]; then best_v=$v; best=$d; fi
  done
  [ -n "$best" ] && printf '%s\n' "$best"
}

# Runs a command as the cluster's user: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u "$run_user" -- "$@")
  else
    "$@"
  fi
}

free_port() {
  if command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  else
    echo $((20000 + RANDOM % 40000))
  fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] && { [ "$cmd" = start ] || [ "$cmd" = stop ]; } || die "usage: $0 start|stop DIR"

if [ "$(id -u)" -eq 0 ]; then run_user=postgres; else run_user=$(id -un); fi

case "$cmd" in
start)
  if [ -z "$(newest_bin || true)" ]; then
    say "installing Debian's postgresql"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq >&2
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  bin=$(newest_bin) || die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' system user"
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/data" ] || die "$dir/data exists already"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$run_user": "$dir"
    as_owner test -w "$dir" -a -x "$dir" \
      || die "$dir is not reachable by the '$run_user' user (choose a DIR under /tmp)"
  fi
  printf '%s\n' "$bin" >"$dir/bindir"

  started=""
  on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
      if [ -f "$dir/log" ]; then
        say "server log (tail):"
        tail -n 40 "$dir/log" >&2 || true
      fi
      if [ -n "$started" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >&2 2>&1 || true
      fi
    fi
    exit "$rc"
  }
  trap on_exit EXIT

  t0=$(date +%s.%N)
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync >&2
  # Trust, on the socket in DIR and on loopback only (the server listens on 127.0.0.1 alone).
  cat >"$dir/pg_hba.conf" <<'EOF'
local all all              trust
host  all all 127.0.0.1/32 trust
host  all all ::1/128      trust
EOF
  as_owner cp "$dir/pg_hba.conf" "$dir/data/pg_hba.conf"
  rm -f "$dir/pg_hba.conf"

  # The port is free when we look; another process can take it before the server binds it.
  port=""
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    seen=0
    if [ -f "$dir/log" ]; then seen=$(wc -l <"$dir/log"); fi
    if as_owner "$bin/pg_ctl" -w -t 60 -D "$dir/data" -l "$dir/log" \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on -c max_connections=200 -c autovacuum=off" \
      start >&2; then
      started=1
      break
    fi
    tail -n +"$((seen + 1))" "$dir/log" 2>/dev/null | grep -q 'could not bind\|Address already in use' \
      || die "the server did not start"
    say "port $port was taken (attempt $attempt), trying another"
    port=""
  done
  [ -n "$port" ] || die "no free port after 5 attempts"

  "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE consentry LOGIN" \
    -c "CREATE DATABASE consentry_test OWNER consentry" >&2
  t1=$(date +%s.%N)
  say "$("$bin/postgres" --version | awk '{print $3}') up on 127.0.0.1:$port in $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s ($dir)"
  printf 'postgres://consentry@127.0.0.1:%s/consentry_test\n' "$port"
  ;;

stop)
  [ -d "$dir" ] || exit 0
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/data/postmaster.pid" ]; then
    bin=$(cat "$dir/bindir" 2>/dev/null || newest_bin || true)
    if [ "$(id -u)" -eq 0 ]; then run_user=$(stat -c %U "$dir/data"); fi
    if [ -n "$bin" ] && [ -x "$bin/pg_ctl" ]; then
      if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        say "the server in $dir was not running"
      elif ! as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2; then
        say "fast shutdown failed; immediate shutdown"
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2 || true
      fi
    fi
  fi
  rm -rf "$dir"
  ;;
esac
