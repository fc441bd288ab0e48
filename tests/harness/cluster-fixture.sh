#!/usr/bin/env bash
# cluster-fixture.sh start|stop DIR BASE [REPLICAS]
#
# A Redis Cluster for the cluster tests: three primaries on 127.0.0.1 ports
# BASE, BASE+1, BASE+2, and (REPLICAS 1, the default; the bench passes 0)
# one replica each on BASE+3..BASE+5, cluster bus
# on port + 4000, no persistence, node timeout 1 s (a failover takes a
# second or two). `start` waits until every node reports cluster_state:ok and
# every replica is in sync; `stop` kills each server by its pid and removes
# DIR. BASE comes from CMake, derived from the build directory, so two build
# trees on one machine do not collide. Needs redis-server and redis-cli 7.
set -euo pipefail
cmd=$1 dir=$2 base=$3 replicas=${4:-1}
ports=()
n=$((3 + 3 * replicas))
for i in $(seq 0 $((n - 1))); do ports+=($((base + i))); done

stop_all() {
  # All at once (each takes a second or so to act on SIGTERM), then wait.
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

case "$cmd" in
start)
  stop_all
  rm -rf "$dir"
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    cat > "$dir/$p/redis.conf" <<CONF
bind 127.0.0.1
port $p
cluster-enabled yes
cluster-port $((p + 4000))
cluster-config-file $dir/$p/nodes.conf
cluster-node-timeout 1000
cluster-replica-validity-factor 0
daemonize yes
pidfile $dir/$p/redis.pid
dir $dir/$p
logfile $dir/$p/redis.log
save ""
appendonly no
maxclients 1000
shutdown-timeout 0
CONF
    redis-server "$dir/$p/redis.conf"
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 200); do
      redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break
      sleep 0.05
    done
  done
  addrs=()
  for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
      > "$dir/create.log" 2>&1; then
    cat "$dir/create.log" >&2
    stop_all
    exit 1
  fi
  # Every node agrees the cluster is up and every replica has synced.
  for _ in $(seq 1 400); do
    ok=1
    for p in "${ports[@]}"; do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    for p in "${ports[@]:3}"; do
      redis-cli -p "$p" info replication 2>/dev/null | grep -q 'master_link_status:up' || ok=0
    done
    [ $ok = 1 ] && exit 0
    sleep 0.05
  done
  echo "cluster-fixture: the cluster on $base.. did not come up" >&2
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
