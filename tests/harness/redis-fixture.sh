#!/usr/bin/env bash
# redis-fixture.sh start|stop|halt DIR [extra redis.conf lines...]
#
# Starts a private redis-server on a unix socket DIR/redis.sock (no TCP port,
# no persistence unless extra lines ask), waits until it answers PING, and
# stops it by its pid: `stop` also removes DIR, `halt` keeps it (a restart
# test starts it again on the same data).
# Used by the ctest fixture for integration tests and by tests that need a
# Redis of their own.
set -euo pipefail
cmd=$1 dir=$2
shift 2
case "$cmd" in
start)
  mkdir -p "$dir"
  if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    kill "$(cat "$dir/redis.pid")" || true
  fi
  rm -f "$dir/redis.sock" "$dir/redis.pid"
  {
    echo "port 0"
    echo "unixsocket $dir/redis.sock"
    echo "unixsocketperm 700"
    echo "daemonize yes"
    echo "pidfile $dir/redis.pid"
    echo "dir $dir"
    echo "logfile $dir/redis.log"
    echo 'save ""'
    echo "appendonly no"
    echo "maxclients 1000"
    for l in "$@"; do echo "$l"; done
  } > "$dir/redis.conf"
  redis-server "$dir/redis.conf"
  for _ in $(seq 1 200); do
    if redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG; then exit 0; fi
    sleep 0.05
  done
  echo "redis-fixture: redis-server did not answer on $dir/redis.sock" >&2
  cat "$dir/redis.log" >&2 || true
  exit 1
  ;;
stop|halt)
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ "$cmd" = stop ] && rm -rf "$dir"
  exit 0
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 64
  ;;
esac
