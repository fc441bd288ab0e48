#!/usr/bin/env bash
# make run: a private redis-server, a demo batch, and jobd working it off.
#
# Starts redis-server on a unix socket under .run/ (no TCP port, no
# persistence), submits a demo batch with jobctl (no-op jobs, built-in sleeps,
# a Python exec handler that checkpoints, a flaky job that ends dead, a job of
# an unknown type, and one FTS5 indexing job each for the built-in index.fts
# and its Python twin), runs jobd --once until the queues are empty, prints the
# queue stats, and stops redis-server by its pid. Exit 0 when the demo ran
# as meant (two of its jobs end dead on purpose, and jobd --once says so with
# exit status 1), else jobd's exit status.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
run=${JOBD_DEMO_DIR:-$top/.run} # the test (tests/deploy/check.sh demo) uses its own
mkdir -p "$run"
redis_dir="$run/redis"
export JOBD_REDIS_URL="unix://$redis_dir/redis.sock"
export JOBD_PREFIX=demo
bash tests/harness/redis-fixture.sh start "$redis_dir"
trap 'bash tests/harness/redis-fixture.sh stop "$redis_dir"' EXIT

python3 deploy/examples/make_docs.py 20000 > "$run/docs.jsonl"
rm -f "$run"/index-*.db*

jobctl="$build/jobctl"
jobd="$build/jobd"
echo "== submitting a demo batch to $JOBD_REDIS_URL (prefix $JOBD_PREFIX)"
{
  for i in $(seq 1 200); do echo "{\"queue\":\"default\",\"type\":\"noop\",\"payload\":{\"n\":$i}}"; done
  for i in $(seq 1 8); do echo "{\"queue\":\"default\",\"type\":\"demo.sleep\",\"payload\":{\"ms\":300},\"priority\":7}"; done
  for i in $(seq 1 4); do echo "{\"queue\":\"batch\",\"type\":\"demo.count\",\"payload\":{\"to\":25}}"; done
  echo '{"queue":"default","type":"demo.flaky","payload":{"message":"the demo flaky job always fails"}}'
  echo '{"queue":"default","type":"no.such.type","payload":{}}'
  # The same indexing job twice: the built-in C handler and the Python one.
  echo "{\"queue\":\"batch\",\"type\":\"index.fts\",\"payload\":{\"source\":\"$run/docs.jsonl\",\"index\":\"$run/index-c.db\",\"batch\":1000}}"
  echo "{\"queue\":\"batch\",\"type\":\"index.fts.py\",\"payload\":{\"source\":\"$run/docs.jsonl\",\"index\":\"$run/index-py.db\",\"batch\":1000}}"
} > "$run/batch.jsonl"
"$jobctl" submit --batch "$run/batch.jsonl" > "$run/ids.txt"
echo "   $(wc -l < "$run/ids.txt") jobs submitted"
"$jobctl" stats

echo "== running jobd --once (JSON log lines follow)"
rc=0
# --unknown-type-tries 2: a one-worker fleet, no one else knows that type.
"$jobd" --queues default:3,batch:1 --concurrency 8 --handlers deploy/examples/handlers.json \
  --state-dir "$run/state" --http 127.0.0.1:0 --once --log-level info \
  --unknown-type-tries 2 --unknown-type-delay 250ms || rc=$?
# --once exits 1 when a job ended dead, as two of the demo's are meant to.
case $rc in
  0 | 1) echo "== done: jobd --once exited $rc (1: jobs ended dead; the demo's flaky and unknown-type jobs do)" ;;
  *) echo "== jobd --once exited $rc" >&2; exit "$rc" ;;
esac
"$jobctl" stats
echo "   the dead jobs, and why:"
"$jobctl" list default --state dead
echo "   the two FTS5 indexes (C built-in and Python exec handler):"
python3 - "$run/index-c.db" "$run/index-py.db" <<'PY'
import sqlite3, sys
for path in sys.argv[1:]:
    db = sqlite3.connect(path)
    n = db.execute("SELECT count(*) FROM docs").fetchone()[0]
    hits = db.execute("SELECT count(*) FROM docs WHERE docs MATCH 'checkpoint AND drain'").fetchone()[0]
    print(f"   {path}: {n} documents, {hits} match 'checkpoint AND drain'")
PY
