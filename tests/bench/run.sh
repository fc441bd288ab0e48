#!/usr/bin/env bash
# run.sh BUILD_DIR - `make bench`: the figures that say whether jobd is fast.
#
# Starts a private redis-server (unix socket, tests/harness/redis-fixture.sh)
# and its own jobd processes, measures with fixed sizes (bench_tool does the
# timing, see tests/bench/bench_tool.c), prints a table and one JSON object,
# also written to BUILD_DIR/bench.json (tests/bench/report.py). Noisy figures
# run 3 times (exec and its spawn ceiling 5): median [min .. max]. Exit
# status 0 when every figure was measured, 1 when one could not be (the
# table says which and why).
#
# Not part of `make test`: timing goals live here, never in test assertions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
jobd=$build/jobd
tool=$build/tests/bin/bench_tool
ckpt_handler=$build/tests/bin/ckpt_handler
spawn_probe=$build/tests/bin/spawn_probe
pool_handler=$build/tests/bin/pool_bench_handler
for f in "$jobd" "$tool" "$ckpt_handler" "$spawn_probe" "$pool_handler"; do
  if [ ! -x "$f" ]; then
    echo "run.sh: $f is missing: build first (make build)" >&2
    exit 1
  fi
done

# Fixed sizes. They keep a run under 3 minutes on 2 cores.
REPEATS=3
DRAIN_JOBS=50000       # pre-filled noop jobs per throughput run
DRAIN_CAP=4            # seconds; a slower run is measured over this window
CONCURRENCIES="1 16 64"
BATCH_JOBS=100000      # one jobd_submit_batch call, and one Python submit_many
PY_SINGLE=2000         # Python Client.submit calls, one by one
EXEC_JOBS=3000         # exec handler jobs per run
EXEC_CONCURRENCIES="8 10"
SPAWN_JOBS=3000        # /bin/true spawns per ceiling run, 8 in flight
EXEC_REPEATS=5         # rounds of exec and its ceiling: the noisiest figure
POOL_JOBS=20000        # persistent C handler jobs (and noop jobs beside them) at conc. 8
PY_JOBS=10000          # persistent Python handler jobs at concurrency 8
SLOW_JOBS=64           # jobs of the handler whose start-up sleeps 2 s, 8 processes
PACED_PICKUP_RATE=500  # jobs/s, one submitter, concurrency 10
PICKUP_SAMPLES=500
PACED_SECONDS=5
CKPT_JOBS=64
CKPT_PER_JOB=5000
SIGTERM_JOBS=64
SHARD_JOBS=20000       # noop jobs per queue, 3 queues: one Redis vs a 3-primary cluster
DRAIN_TIMEOUT=1        # seconds, for the SIGTERM figure
KILL_GRACE=5

work=$(mktemp -d /tmp/jobd-bench.XXXXXX)
rdir=$work/redis
sock=$rdir/redis.sock
logs=$work/logs
results=$work/results.jsonl
mkdir -p "$logs"
: > "$results"
run_id="bench-$(date +%s)-$$"
toolpid=
failed=0

# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local rc=$?
  if [ -n "$toolpid" ]; then kill "$toolpid" 2>/dev/null || true; fi
  bash "$root/tests/harness/redis-fixture.sh" stop "$rdir" || true
  if [ -n "${cdir:-}" ]; then bash "$root/tests/harness/cluster-fixture.sh" stop "$cdir" "$cbase" 0 || true; fi
  if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
    rm -rf "$work"
  else
    echo "run.sh: logs kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

bash "$root/tests/harness/redis-fixture.sh" start "$rdir"
redis_pid=$(cat "$rdir/redis.pid")

rcli() { redis-cli -s "$sock" "$@" > /dev/null; }

# measure TAG_JSON CMD ARGS... : runs bench_tool (in the background, so that
# the trap can stop it), appends {"tag":TAG,"result":{...}} or
# {"tag":TAG,"error":"..."} to the results and leaves the result in $out.
out=
measure() {
  local tag=$1 err rc=0
  shift
  err=$work/tool.err
  "$tool" "$@" > "$work/tool.out" 2> "$err" &
  toolpid=$!
  wait "$toolpid" || rc=$?
  toolpid=
  out=$(cat "$work/tool.out")
  if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
    failed=1
    python3 -c 'import json, sys
msg = open(sys.argv[2]).read().strip() or "exit status " + sys.argv[3]
print(json.dumps({"tag": json.loads(sys.argv[1]), "error": msg[-500:]}))' \
      "$tag" "$err" "$rc" >> "$results"
    log "  FAILED: $(tail -c 300 "$err")"
    out=
    return 0
  fi
  printf '{"tag":%s,"result":%s}\n' "$tag" "$out" >> "$results"
}

# measure_py TAG_JSON ARGS...: as measure, for tests/bench/py_submit.py (the
# Python package's figures), run by Debian's python3 where it has redis-py.
py=${JOBD_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
measure_py() {
  local tag=$1 rc=0
  shift
  "$py" "$here/py_submit.py" "$@" > "$work/tool.out" 2> "$work/tool.err" &
  toolpid=$!
  wait "$toolpid" || rc=$?
  toolpid=
  out=$(cat "$work/tool.out")
  if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
    failed=1
    python3 -c 'import json, sys
msg = open(sys.argv[2]).read().strip() or "exit status " + sys.argv[3]
print(json.dumps({"tag": json.loads(sys.argv[1]), "error": msg[-500:]}))' \
      "$tag" "$work/tool.err" "$rc" >> "$results"
    log "  FAILED: $(tail -c 300 "$work/tool.err")"
    out=
    return 0
  fi
  printf '{"tag":%s,"result":%s}\n' "$tag" "$out" >> "$results"
}

# jobd ARGS for instance {i} (bench_tool substitutes {i} and {port}).
jobd_cmd() {
  local prefix=$1
  shift
  echo "$jobd" --redis "unix://$sock" --prefix "$prefix" --queues q \
    --state-dir "$work/state/$prefix-{i}" --worker-id "$prefix-{i}" \
    --log-level warn "$@"
}

# field KEY / pick KEY SUBKEY: a value of the JSON object on stdin ("?" if none).
field() {
  python3 -c 'import json, sys
print(json.loads(sys.stdin.read() or "{}").get(sys.argv[1], "?"))' "$1"
}
pick() {
  python3 -c 'import json, sys
print(json.loads(sys.stdin.read() or "{}").get(sys.argv[1], {}).get(sys.argv[2], "?"))' "$1" "$2"
}

log "jobd bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), work dir $work"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
mkdir -p "$work/state"

# 1. fsync floor of the state directory's file system.
log "fsync probe"
measure '{"phase":"fsync"}' fsync dir="$work/state" samples=200

# 2. Batch submission through libjobd.
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-batch-$r
  measure "{\"phase\":\"batch\",\"rep\":$r}" fill sock="$sock" prefix="$p" queue=q \
    n=$BATCH_JOBS
  log "batch submit $BATCH_JOBS jobs, run $r: $(field rate <<< "$out") jobs/s"
done

# 2b. The same from Python (client/python): one submit_many of as many jobs,
# and the round trip of one submit() call.
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  measure_py "{\"phase\":\"py_batch\",\"rep\":$r}" batch "$sock" "$run_id-pybatch-$r" \
    $BATCH_JOBS
  log "Python submit_many $BATCH_JOBS jobs, run $r: $(field rate <<< "$out") jobs/s"
  rcli FLUSHALL
  measure_py "{\"phase\":\"py_single\",\"rep\":$r}" single "$sock" "$run_id-pysingle-$r" \
    $PY_SINGLE
  log "Python submit() round trip, run $r: p50 $(pick ms p50 <<< "$out") ms"
done

# 3. Throughput of noop jobs from a pre-filled queue.
for r in $(seq 1 $REPEATS); do
  for c in $CONCURRENCIES; do
    for j in 1 2; do
      rcli FLUSHALL
      p=$run_id-tp-c$c-j$j-r$r
      tag="{\"phase\":\"drain\",\"c\":$c,\"jobds\":$j,\"rep\":$r}"
      measure "$tag" fill sock="$sock" prefix="$p" queue=q n=$DRAIN_JOBS
      [ -n "$out" ] || continue
      # shellcheck disable=SC2046
      measure "$tag" drain sock="$sock" prefix="$p" queue=q n=$DRAIN_JOBS \
        redis_pid="$redis_pid" jobds=$j cap=$DRAIN_CAP logdir="$logs" -- \
        $(jobd_cmd "$p" --concurrency "$c" --http 127.0.0.1:0 --once)
      log "drain concurrency $c x $j jobd, run $r: $(field rate <<< "$out") jobs/s"
    done
  done
done

# 3b. Exec handlers that do nothing (/bin/true): spawn, pipes, exit, ack,
# and 3c. the spawn ceiling: /bin/true with three pipes and a new session, 8
# in flight, fork+exec and posix_spawn (tests/bench/spawn_probe.c). Both in
# the same rounds, one after the other, so that the machine's speed, which
# drifts over a run here, weighs on jobd and on its ceiling alike.
printf '{"bench.exec": {"exec": ["/bin/true"]}}\n' > "$work/exec-handlers.json"
for r in $(seq 1 $EXEC_REPEATS); do
  for c in $EXEC_CONCURRENCIES; do
    rcli FLUSHALL
    p=$run_id-exec-c$c-r$r
    tag="{\"phase\":\"exec\",\"c\":$c,\"rep\":$r}"
    measure "$tag" fill sock="$sock" prefix="$p" queue=q n=$EXEC_JOBS type=bench.exec
    [ -n "$out" ] || continue
    # shellcheck disable=SC2046
    measure "$tag" drain sock="$sock" prefix="$p" queue=q n=$EXEC_JOBS \
      redis_pid="$redis_pid" jobds=1 cap=$DRAIN_CAP logdir="$logs" -- \
      $(jobd_cmd "$p" --concurrency "$c" --http 127.0.0.1:0 --once \
        --handlers "$work/exec-handlers.json")
    log "exec /bin/true, concurrency $c, run $r: $(field rate <<< "$out") jobs/s"
  done
  for mode in fork spawn; do
    rc=0
    "$spawn_probe" "$mode" $SPAWN_JOBS 8 > "$work/tool.out" 2> "$work/tool.err" || rc=$?
    out=$(cat "$work/tool.out")
    if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
      failed=1
      python3 -c 'import json, sys
print(json.dumps({"tag": {"phase": "spawn", "mode": sys.argv[1]},
                  "error": open(sys.argv[2]).read().strip()[-500:] or "failed"}))' \
        "$mode" "$work/tool.err" >> "$results"
      continue
    fi
    printf '{"tag":{"phase":"spawn","mode":"%s","rep":%d},"result":%s}\n' "$mode" "$r" "$out" \
      >> "$results"
    log "spawn ceiling $mode, run $r: $(field rate <<< "$out") spawns/s"
  done
done

# 3d. Persistent handlers (protocol v2) at concurrency 8: a trivial C
# handler beside the built-in noop, a trivial Python handler, and a C
# handler whose start-up sleeps 2 s (8 processes, 64 jobs).
cat > "$work/pool-handlers.json" <<EOF
{"bench.pool": {"exec": ["$pool_handler"], "mode": "persistent"},
 "bench.slow": {"exec": ["$pool_handler", "--startup-ms", "2000"], "mode": "persistent",
                "processes": 8},
 "bench.py": {"exec": ["$py", "$here/py_noop.py"], "mode": "persistent"}}
EOF
for r in $(seq 1 $REPEATS); do
  for spec in "noop $POOL_JOBS" "bench.pool $POOL_JOBS" "bench.py $PY_JOBS" \
              "bench.slow $SLOW_JOBS"; do
    read -r type n <<< "$spec"
    rcli FLUSHALL
    p=$run_id-pool-${type//./-}-r$r
    tag="{\"phase\":\"pool\",\"type\":\"$type\",\"c\":8,\"rep\":$r}"
    measure "$tag" fill sock="$sock" prefix="$p" queue=q n="$n" type="$type"
    [ -n "$out" ] || continue
    # shellcheck disable=SC2046
    measure "$tag" drain sock="$sock" prefix="$p" queue=q n="$n" \
      redis_pid="$redis_pid" jobds=1 cap=20 logdir="$logs" -- \
      $(jobd_cmd "$p" --concurrency 8 --http 127.0.0.1:0 --once \
        --handlers "$work/pool-handlers.json")
    log "$type at concurrency 8, run $r: $(field rate <<< "$out") jobs/s in $(field seconds <<< "$out") s"
  done
done

# 4. Pickup latency, one job at a time, idle worker. The earlier phases left
# journals and logs behind: write them out first, so that their writeback
# does not land in the latency samples ("an otherwise idle machine").
sync
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-pickup-$r
  # shellcheck disable=SC2046
  measure "{\"phase\":\"pickup\",\"rep\":$r}" pickup sock="$sock" prefix="$p" queue=q \
    samples=$PICKUP_SAMPLES logdir="$logs" -- \
    $(jobd_cmd "$p" --concurrency 64 --http 127.0.0.1:0)
  log "pickup, run $r: claim p99 $(pick claim_ms p99 <<< "$out") ms"
done

# 4b. Pickup under a steady paced load: one submitter, one jobd_submit()
# per job at 500 jobs/s for 5 s, concurrency 10.
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-ppickup-$r
  # shellcheck disable=SC2046
  measure "{\"phase\":\"pacedpickup\",\"rep\":$r}" pacedpickup sock="$sock" prefix="$p" \
    queue=q rate=$PACED_PICKUP_RATE seconds=$PACED_SECONDS logdir="$logs" \
    trace="$build/bench-pacedpickup-$r.trace" -- \
    $(jobd_cmd "$p" --concurrency 10 --http 127.0.0.1:0)
  log "paced pickup $PACED_PICKUP_RATE/s, run $r: claim p99 $(pick claim_ms p99 <<< "$out") ms"
done

# 5. End-to-end latency at half the best measured throughput.
read -r best_rate best_c best_j < <(python3 "$here/report.py" --best "$results")
rate=$(( ${best_rate%.*} / 2 ))
if [ "$rate" -lt 100 ]; then rate=100; fi
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-paced-$r
  # shellcheck disable=SC2046
  measure "{\"phase\":\"paced\",\"rep\":$r,\"c\":$best_c,\"jobds\":$best_j}" paced \
    sock="$sock" prefix="$p" queue=q rate=$rate seconds=$PACED_SECONDS jobds="$best_j" \
    logdir="$logs" -- $(jobd_cmd "$p" --concurrency "$best_c" --http 127.0.0.1:0)
  if grep -q '"error"' <<< "$out"; then failed=1; fi
  e=$(field error <<< "$out")
  if [ "$e" = "?" ]; then e="e2e p99 $(pick e2e_ms p99 <<< "$out") ms"; fi
  log "paced $rate jobs/s, run $r: $e"
done

# 6. Checkpoints: 64 exec handlers checkpointing as fast as they can.
printf '{"bench.ckpt": {"exec": ["%s", "%d"], "timeout_s": 600}}\n' "$ckpt_handler" \
  $CKPT_PER_JOB > "$work/handlers.json"
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-ckpt-$r
  # shellcheck disable=SC2046
  measure "{\"phase\":\"ckpt\",\"rep\":$r}" ckpt sock="$sock" prefix="$p" queue=q \
    jobs=$CKPT_JOBS per_job=$CKPT_PER_JOB logdir="$logs" -- \
    $(jobd_cmd "$p" --concurrency 64 --handlers "$work/handlers.json" \
      --http '127.0.0.1:{port}')
  log "checkpoints, run $r: $(field rate <<< "$out") checkpoints/s"
done

# 6b. Durable checkpoint latency, timed inside jobd by the built-in
# checkpoint.probe (each jobd_job_checkpoint returns once the journal has
# committed it), with 1 job and with 64 jobs checkpointing at once.
jobctl=$build/jobctl
for spec in "1 2000" "64 300"; do
  read -r njobs count <<< "$spec"
  for r in $(seq 1 $REPEATS); do
    rcli FLUSHALL
    p=$run_id-probe-$njobs-$r
    for _ in $(seq 1 "$njobs"); do
      echo "{\"queue\":\"q\",\"type\":\"checkpoint.probe\",\"payload\":{\"count\":$count}}"
    done | JOBD_REDIS_URL="unix://$sock" JOBD_PREFIX=$p "$jobctl" submit --batch - > /dev/null
    # shellcheck disable=SC2046
    $(jobd_cmd "$p" --concurrency 64 --http 127.0.0.1:0 --once | sed 's/{i}/0/g') \
      > "$logs/$p.log" 2>&1 || failed=1
    JOBD_REDIS_URL="unix://$sock" JOBD_PREFIX=$p "$jobctl" list q --state succeeded --json \
        --limit 0 | python3 -c 'import json, statistics, sys
tag = json.loads(sys.argv[1])
rs = [j["result"] for j in json.load(sys.stdin) if j.get("result")]
want = tag["jobs"]
if len(rs) != want:
    print(json.dumps({"tag": tag, "error": "%d of %d probes finished" % (len(rs), want)}))
else:
    print(json.dumps({"tag": tag, "result": {
        "p50_us": statistics.median(x["p50_us"] for x in rs),
        "p99_us": statistics.median(x["p99_us"] for x in rs),
        "max_us": max(x["max_us"] for x in rs),
        "per_s": sum(x["per_s"] for x in rs)}}))' \
        "{\"phase\":\"probe\",\"jobs\":$njobs,\"rep\":$r}" >> "$results"
    log "checkpoint probe, $njobs jobs, run $r: $(tail -1 "$results" | cut -c1-160)"
  done
done

# 6c. Three queues on one Redis against the same three queues on a Redis
# Cluster of three primaries (one queue per primary), same machine, same
# run: the routing overhead here; on separate machines what lets throughput
# grow with shards. jobd --once drains all three; the time is its whole life
# (start, connect, drain, exit), taken around it.
cbase=$((23000 + ($$ % 400) * 10))
cdir=$work/cluster
bash "$root/tests/harness/cluster-fixture.sh" start "$cdir" "$cbase" 0
shard_queues=()
declare -A seen=()
for i in $(seq 0 999); do
  q=sq$i
  port=$(redis-cli -p "$cbase" cluster nodes | python3 -c 'import sys
slot = int(sys.argv[1])
for line in sys.stdin:
    f = line.split()
    if "master" not in f[2]:
        continue
    for r in f[8:]:
        lo, _, hi = r.partition("-")
        if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
            print(f[1].split("@")[0])' "$(redis-cli -p "$cbase" cluster keyslot "{$q}")")
  if [ -z "${seen[$port]:-}" ]; then
    seen[$port]=1
    shard_queues+=("$q")
  fi
  [ ${#shard_queues[@]} -eq 3 ] && break
done
qlist=$(IFS=,; echo "${shard_queues[*]}")
for q in "${shard_queues[@]}"; do
  for _ in $(seq 1 $SHARD_JOBS); do echo "{\"queue\":\"$q\",\"type\":\"noop\"}"; done
done > "$work/shards.jsonl"
for r in $(seq 1 $REPEATS); do
  for topo in single cluster; do
    p=$run_id-shards-$topo-$r
    if [ $topo = single ]; then
      rcli FLUSHALL
      url="unix://$sock"
    else
      for i in 0 1 2; do redis-cli -p $((cbase + i)) FLUSHALL > /dev/null; done
      url="redis+cluster://127.0.0.1:$cbase,127.0.0.1:$((cbase + 1))"
    fi
    "$jobctl" --redis "$url" --prefix "$p" submit --batch "$work/shards.jsonl" > /dev/null
    t0=$(date +%s.%N)
    rc=0
    "$jobd" --redis "$url" --prefix "$p" --queues "$qlist" --state-dir "$work/state/$p" \
      --worker-id "$p" --log-level warn --concurrency 64 --http 127.0.0.1:0 --once \
      > "$logs/$p.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    done_n=$("$jobctl" --redis "$url" --prefix "$p" stats --json | python3 -c 'import json, sys
print(sum(q["succeeded"] for q in json.load(sys.stdin).values()))')
    total=$((3 * SHARD_JOBS))
    if [ "$rc" -ne 0 ] || [ "$done_n" -ne "$total" ]; then
      failed=1
      printf '{"tag":{"phase":"shards","topology":"%s","rep":%d},"error":"jobd exit %d, %s of %d succeeded"}\n' \
        "$topo" "$r" "$rc" "$done_n" "$total" >> "$results"
      log "  FAILED: shards $topo run $r: jobd exit $rc, $done_n of $total succeeded"
      continue
    fi
    python3 -c 'import json, sys
t = float(sys.argv[2]) - float(sys.argv[1])
print(json.dumps({"tag": {"phase": "shards", "topology": sys.argv[3], "rep": int(sys.argv[4])},
                  "result": {"cmd": "shards", "jobs": int(sys.argv[5]), "seconds": round(t, 4),
                             "rate": round(int(sys.argv[5]) / t, 1)}}))' \
      "$t0" "$t1" "$topo" "$r" "$total" >> "$results"
    log "3 queues, $topo, run $r: $(tail -1 "$results" | field result | tr -d "'{}")"
  done
done
bash "$root/tests/harness/cluster-fixture.sh" stop "$cdir" "$cbase" 0

# 7. SIGTERM to exit with 64 in-flight sleeps.
for r in $(seq 1 $REPEATS); do
  rcli FLUSHALL
  p=$run_id-sigterm-$r
  # shellcheck disable=SC2046
  measure "{\"phase\":\"sigterm\",\"rep\":$r}" sigterm sock="$sock" prefix="$p" queue=q \
    jobs=$SIGTERM_JOBS logdir="$logs" -- \
    $(jobd_cmd "$p" --concurrency 64 --http 127.0.0.1:0 --drain-timeout $DRAIN_TIMEOUT \
      --kill-grace $KILL_GRACE)
  log "SIGTERM to exit, run $r: $(field exit_seconds <<< "$out") s"
done

t_end=$(date +%s)
python3 "$here/report.py" "$results" "$build/bench.json" \
  jobd="$("$jobd" --version)" cores="$(nproc)" load_start="$load_start" \
  load_end="$(cut -d' ' -f1-3 /proc/loadavg)" seconds=$((t_end - t_start)) \
  repeats=$REPEATS exec_repeats=$EXEC_REPEATS exec_jobs=$EXEC_JOBS spawn_jobs=$SPAWN_JOBS pool_jobs=$POOL_JOBS \
  py_jobs=$PY_JOBS slow_jobs=$SLOW_JOBS paced_pickup_rate=$PACED_PICKUP_RATE drain_jobs=$DRAIN_JOBS drain_cap_s=$DRAIN_CAP batch_jobs=$BATCH_JOBS py_single=$PY_SINGLE \
  pickup_samples=$PICKUP_SAMPLES paced_seconds=$PACED_SECONDS paced_rate="$rate" \
  paced_concurrency="$best_c" paced_jobds="$best_j" ckpt_jobs=$CKPT_JOBS \
  ckpt_per_job=$CKPT_PER_JOB sigterm_jobs=$SIGTERM_JOBS drain_timeout_s=$DRAIN_TIMEOUT \
  kill_grace_s=$KILL_GRACE shard_jobs=$SHARD_JOBS || failed=1
log "bench.json: $build/bench.json"
exit "$failed"
