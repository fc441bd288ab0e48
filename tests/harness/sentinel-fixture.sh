#!/usr/bin/env bash
# sentinel-fixture.sh start|stop DIR BASE
#
# Redis Sentinel for the sentinel tests: a primary on 127.0.0.1:BASE, its
# replica on BASE+1, three Sentinels on BASE+2..BASE+4 watching it as
# "mymaster" (quorum 2, down after 1 s). The Sentinels are redis-server
# --sentinel (what Debian's redis-sentinel package runs). `start` waits until
# the replica is in sync and every Sentinel knows the replica and the two
# other Sentinels; `stop` kills each server by its pid and removes DIR.
set -euo pipefail
cmd=$1 dir=$2 base=$3
ports=()
for i in 0 1 2 3 4; do ports+=($((base + i))); done

stop_all() {
  pids=()
  for p in "${ports[@]}"; do
    f="$dir/$p/redis.pid"
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

common() {
  cat <<CONF
bind 127.0.0.1
port $1
daemonize yes
pidfile $dir/$1/redis.pid
dir $dir/$1
logfile $dir/$1/redis.log
CONF
}

case "$cmd" in
start)
  stop_all
  rm -rf "$dir"
  for p in "${ports[@]}"; do mkdir -p "$dir/$p"; done
  { common "${ports[0]}"; echo 'save ""'; echo "appendonly no"; echo "shutdown-timeout 0"; } \
    > "$dir/${ports[0]}/redis.conf"
  { common "${ports[1]}"; echo 'save ""'; echo "appendonly no"; echo "shutdown-timeout 0"
    echo "replicaof 127.0.0.1 ${ports[0]}"; } > "$dir/${ports[1]}/redis.conf"
  redis-server "$dir/${ports[0]}/redis.conf"
  redis-server "$dir/${ports[1]}/redis.conf"
  for p in "${ports[@]:2}"; do
    { common "$p"
      echo "sentinel monitor mymaster 127.0.0.1 ${ports[0]} 2"
      echo "sentinel down-after-milliseconds mymaster 1000"
      echo "sentinel failover-timeout mymaster 5000"
      echo "sentinel parallel-syncs mymaster 1"; } > "$dir/$p/sentinel.conf"
    redis-server "$dir/$p/sentinel.conf" --sentinel
  done
  for _ in $(seq 1 600); do
    ok=1
    redis-cli -p "${ports[1]}" info replication 2>/dev/null | grep -q 'master_link_status:up' || ok=0
    for p in "${ports[@]:2}"; do
      m=$(redis-cli -p "$p" sentinel master mymaster 2>/dev/null | tr '\n' ' ')
      echo "$m" | grep -q 'num-slaves 1 ' || ok=0
      echo "$m" | grep -q 'num-other-sentinels 2 ' || ok=0
    done
    [ $ok = 1 ] && exit 0
    sleep 0.05
  done
  echo "sentinel-fixture: Sentinel on $base.. did not come up" >&2
  for p in "${ports[@]}"; do tail -5 "$dir/$p/redis.log" >&2 || true; done
  stop_all
  exit 1
  ;;
stop)
  stop_all
  rm -rf "$dir"
  exit 0
  ;;
*)
  echo "usage: $0 start|stop DIR BASE" >&2
  exit 64
  ;;
esac
