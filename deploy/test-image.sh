#!/usr/bin/env bash
# test-image.sh - builds the jobd image and tests it as a platform would run
# it (not part of `make test`: it needs a container runtime and takes about
# a minute plus the build).
#
#   bash deploy/test-image.sh [BUILD_DIR]          (default build; uses its jobctl)
#
# 1. builds deploy/Dockerfile (deploy/build-image.sh: docker, podman or
#    buildah; IMAGE names it, BASE_IMAGE overrides the base);
# 2. starts a private redis-server with a password on a unix socket, shared
#    with the container through a mount;
# 3. runs the image as a Kubernetes pod would: read-only root, tmpfs state
#    dir and /tmp, all capabilities dropped, no new privileges, the password
#    as a file;
# 4. checks: the process runs as uid 10001; GET /health/live is 200 and
#    /health/ready 200; a "hello" exec job (the handler that ships) succeeds;
#    then, with a long built-in sleep job in flight, SIGTERM: /health/ready
#    turns 503, the container exits 0 within drain timeout + kill grace
#    (25 s + 5 s, +3 s slack), and the sleep job is back in its queue with
#    its checkpoint and no attempt charged.
# JOBD_IMAGE_TOOL picks docker or podman; JOBD_IMAGE_RUN_ARGS adds `run`
# arguments (e.g. "--cgroups=disabled" for podman in a nested container).
# In a VM that may not raise rlimits and mounts cgroup v1 and v2 side by
# side, podman runs it with CONTAINERS_CONF naming a file that says
#   [containers] default_ulimits = ["nofile=N:N", "nproc=M:M"]  (at most
#                the current hard limits)
#   [engine] runtime = "runc"  and  cgroup_manager = "cgroupfs"
# Exit 0 when every check passed; each step is printed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build=$top/$build ;; esac
jobctl=$build/jobctl
[ -x "$jobctl" ] || { echo "test-image: $jobctl not built (make build)" >&2; exit 1; }
version=$(sed -n 's/^#define JOBD_VERSION "\(.*\)"/\1/p' "$top/include/jobd/version.h")
export IMAGE=${IMAGE:-localhost/jobd:test-$version}
name=jobd-image-test-$$
tmp=$(mktemp -d /tmp/jobd-image-test.XXXXXX)
port=$((20000 + $$ % 20000))
step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "build $IMAGE"
build_args=()
[ -n "${BASE_IMAGE:-}" ] && build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
bash "$top/deploy/build-image.sh" "${build_args[@]}"
tool=${JOBD_IMAGE_TOOL:-}
if [ -z "$tool" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=docker
  elif command -v podman >/dev/null; then tool=podman
  else fail "no docker daemon or podman to run the image with"; fi
fi

cleanup() {
  "$tool" rm -f "$name" >/dev/null 2>&1 || true
  bash "$top/tests/harness/redis-fixture.sh" stop "$tmp/redis" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

step "redis-server with a password, socket shared with the container"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/redis-password"
chmod 0644 "$tmp/redis-password" # the container's uid 10001 reads it
bash "$top/tests/harness/redis-fixture.sh" start "$tmp/redis" "unixsocketperm 777"
# The password is set once the fixture has seen PONG (it pings without one).
redis-cli -s "$tmp/redis/redis.sock" CONFIG SET requirepass "$(cat "$tmp/redis-password")" > /dev/null
chmod 0755 "$tmp/redis"
export JOBD_REDIS_URL=unix://$tmp/redis/redis.sock JOBD_REDIS_PASSWORD_FILE=$tmp/redis-password

step "run $IMAGE with $tool (read-only root, no capabilities, port 127.0.0.1:$port)"
# The state dir is a tmpfs, as an emptyDir in a pod. Under runc it takes
# the image directory's owner and mode (jobd, 0750) only when podman is told
# to chown it (U); docker applies mode=1777.
state_opts=rw,mode=1777
[ "$tool" = podman ] && state_opts=$state_opts,U
# shellcheck disable=SC2086
"$tool" run -d --name "$name" ${JOBD_IMAGE_RUN_ARGS:-} \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --tmpfs /tmp:rw,mode=1777 --tmpfs "/var/lib/jobd/state:$state_opts" \
  -v "$tmp/redis:/run/redis" -v "$tmp/redis-password:/run/secrets/jobd/redis-password:ro" \
  -e JOBD_REDIS_URL=unix:///run/redis/redis.sock \
  -e JOBD_REDIS_PASSWORD_FILE=/run/secrets/jobd/redis-password \
  -e JOBD_WORKER_ID="$name" \
  -p "127.0.0.1:$port:9090" "$IMAGE" > /dev/null

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$1" || true; }
wait_for() { # PATH CODE SECONDS
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(http_code "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  "$tool" logs "$name" 2>&1 | tail -20 >&2
  fail "GET $1 did not answer $2 within $3 s"
}

step "uid"
uid=$("$tool" exec "$name" id -u)
[ "$uid" = 10001 ] || fail "jobd runs as uid $uid, not 10001"
echo "   uid $uid"
step "GET /health/live, /health/ready"
wait_for /health/live 200 30
wait_for /health/ready 200 30
echo "   live 200, ready 200"

step "a job: hello (the exec handler in the image)"
id=$("$jobctl" submit default hello --payload '{"from":"test-image"}' --wait --wait-timeout 60s | head -1)
"$jobctl" status "$id" --json > "$tmp/hello.json"
grep -q '"state": *"succeeded"' "$tmp/hello.json" || { cat "$tmp/hello.json"; fail "hello job did not succeed"; }
echo "   $id succeeded"

step "SIGTERM with a long job in flight"
sid=$("$jobctl" submit batch demo.sleep --payload '{"ms":120000}')
deadline=$((SECONDS + 30))
until "$jobctl" status "$sid" --json | grep -q '"state": *"active"'; do
  [ $SECONDS -lt $deadline ] || fail "the sleep job was not claimed"
  sleep 0.2
done
sleep 1 # let it make some progress to checkpoint
t0=$(date +%s.%N)
"$tool" kill --signal TERM "$name" > /dev/null
saw503=0
for _ in $(seq 1 100); do
  c=$(http_code /health/ready)
  if [ "$c" = 503 ]; then saw503=1; break; fi
  sleep 0.05
done
[ $saw503 = 1 ] || fail "/health/ready did not turn 503 after SIGTERM"
echo "   /health/ready 503"
status=$("$tool" wait "$name")
t1=$(date +%s.%N)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
[ "$status" = 0 ] || { "$tool" logs "$name" 2>&1 | tail -20 >&2; fail "exit status $status, not 0"; }
awk -v t="$took" 'BEGIN { exit !(t <= 33) }' || fail "exit took $took s, over 25 + 5 + 3"
echo "   exit 0 after $took s (budget 30 s)"
"$jobctl" status "$sid" --json > "$tmp/sleep.json"
grep -q '"state": *"queued"' "$tmp/sleep.json" || { cat "$tmp/sleep.json"; fail "the sleep job was not released to its queue"; }
grep -q '"slept_ms"' "$tmp/sleep.json" || { cat "$tmp/sleep.json"; fail "the released job has no checkpoint"; }
grep -q '"attempt": *0' "$tmp/sleep.json" || { cat "$tmp/sleep.json"; fail "the release charged an attempt"; }
echo "   the sleep job is queued again with its checkpoint, attempt not charged"
step "all image checks passed"
