#!/usr/bin/env bash
# tests/deploy/check.sh STEP - checks deploy/ with the real tools, offline
# (after a one-time npm install into the build tree). One ctest test per step
# (tests/CMakeLists.txt: deploy.STEP):
#   manifests  kustomize build of the base, both example overlays and once/
#              (kubectl kustomize or kustomize; without either, the resource
#              files the kustomizations name, as they are), every document
#              validated against the Kubernetes, KEDA and Prometheus Operator
#              schemas with unknown-field detection (validate.cjs), then the
#              rules the schemas cannot state (policy.cjs)
#   config     the base config and handlers pass `jobd --check-config` with
#              the files the image ships, laid out as deploy/Dockerfile copies them
#   rules      promtool check rules and promtool test rules (every alert)
#   systemd    systemd-analyze verify on deploy/systemd/jobd.service (any
#              warning fails), and its TimeoutStopSec against the drain budget
#   image      deploy/Dockerfile: pinned base, non-root USER, OCI labels, COPY
#              sources present and let through Dockerfile.dockerignore; the
#              shipped exec handler speaks the protocol
#   demo       make run's demo (deploy/run-demo.sh) ends 0 with the outcomes it
#              is meant to have: 214 jobs succeeded, 2 dead on purpose
#   batch_keys the CronJob's script gives every line of a run one stable
#              idempotency key, and submitting a run twice (a retried pod)
#              makes no second job (needs the ctest Redis fixture)
# Exit 0 pass, 1 fail, 77 skipped (only `manifests`, only when npm cannot
# reach its registry; it says so).
set -euo pipefail
step=${1:?usage: check.sh STEP}
here=$(cd "$(dirname "$0")" && pwd)
src=${JOBD_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
work=${JOBD_DEPLOY_WORK:-/tmp/jobd-deploy-check}/$step
jobd=${JOBD_BIN:-$src/build/jobd}
jobctl=${JOBCTL_BIN:-$src/build/jobctl}
rm -rf "$work"
mkdir -p "$work"
npm_dir=$(dirname "$work")/npm

die() { echo "FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found (bash deploy/install-deps.sh installs it)"; }

# The npm tools of package.json, installed once into the build tree.
npm_tools() {
  need node
  need npm
  if cmp -s "$here/package.json" "$npm_dir/package.json" && [ -f "$npm_dir/.installed" ]; then
    return 0
  fi
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  cp "$here/package.json" "$npm_dir/"
  if ! (cd "$npm_dir" && npm install --no-package-lock --no-audit --no-fund --loglevel=error \
          > "$npm_dir/install.log" 2>&1); then
    cat "$npm_dir/install.log" >&2
    if ! (cd "$npm_dir" && timeout 30 npm ping >/dev/null 2>&1); then
      rm -rf "$npm_dir"
      echo "SKIPPED: npm cannot reach its registry, so the schema packages cannot be installed;" \
           "the manifests were NOT validated" >&2
      exit 77
    fi
    die "npm install of tests/deploy/package.json failed (see above)"
  fi
  touch "$npm_dir/.installed"
}

kustomize_build() { # DIR OUT
  if command -v kustomize >/dev/null; then kustomize build "$1" > "$2"
  else kubectl kustomize "$1" > "$2"; fi
}

k8s=$src/deploy/k8s
case "$step" in
manifests)
  npm_tools
  files=()
  if command -v kustomize >/dev/null || command -v kubectl >/dev/null; then
    for d in base overlays/example overlays/example-hpa once; do
      out=$work/$(echo "$d" | tr / -).yaml
      kustomize_build "$k8s/$d" "$out" || die "kustomize build $d failed"
      files+=("$out")
    done
    echo "built with $(command -v kustomize || echo kubectl kustomize): base, overlays/example, overlays/example-hpa, once"
    node "$here/validate.cjs" "$npm_dir" "$work/ts" "${files[@]}"
    POLICY_EXPECT_FULL=1 node "$here/policy.cjs" "$npm_dir" "$src" "$work/overlays-example.yaml"
    node "$here/policy.cjs" "$npm_dir" "$src" "${files[@]}"
  else
    echo "NOTE: neither kustomize nor kubectl is installed: validating the resource files" \
         "as they are (patches and generated ConfigMaps not applied)"
  fi
  # The resource files themselves, whichever way the build went.
  mapfile -t raw < <(node "$here/policy.cjs" "$npm_dir" "$src" --resources \
    "$k8s/overlays/example" "$k8s/overlays/example-hpa" "$k8s/once")
  [ ${#raw[@]} -gt 10 ] || die "found only ${#raw[@]} resource files under deploy/k8s"
  node "$here/validate.cjs" "$npm_dir" "$work/ts-raw" "${raw[@]}"
  node "$here/policy.cjs" "$npm_dir" "$src" "${raw[@]}"
  ;;

config)
  [ -x "$jobd" ] || die "jobd binary $jobd not found"
  # Lay out what the final image stage copies (COPY lines without --from),
  # under $root, and point the handlers' absolute exec paths into it.
  root=$work/root
  mkdir -p "$root"
  n=0
  while read -r from to; do
    [ -e "$src/$from" ] || die "deploy/Dockerfile copies $from, which does not exist"
    mkdir -p "$root$(dirname "$to")"
    cp -p "$src/$from" "$root$to"
    n=$((n + 1))
  done < <(sed -n '/^FROM .* AS build/,$p' "$src/deploy/Dockerfile" \
             | awk '/^FROM / && !/ AS build/ {final=1} final && $1 == "COPY" && $2 !~ /^--from/ {print $2, $3}')
  [ "$n" -gt 0 ] || die "no COPY into the final image stage found in deploy/Dockerfile"
  for f in config.json handlers.json; do
    cmp -s "$k8s/base/$f" "$root/etc/jobd/$f" || die "the image does not ship deploy/k8s/base/$f at /etc/jobd/$f"
  done
  python3 - "$root" <<'PY'
import json, sys
root = sys.argv[1]
p = root + "/etc/jobd/handlers.json"
h = json.load(open(p))
for spec in h.values():
    if "exec" in spec and spec["exec"][0].startswith("/"):
        spec["exec"][0] = root + spec["exec"][0]
json.dump(h, open(root + "/handlers.staged.json", "w"))
PY
  printf 'not-a-real-password\n' > "$work/redis-password"
  chmod 600 "$work/redis-password"
  # The environment of the Deployment (jobd-env and env), paths into $root.
  out=$(env -i PATH="$PATH" JOBD_REDIS_URL=redis://redis:6379/0 \
          JOBD_REDIS_PASSWORD_FILE="$work/redis-password" JOBD_HTTP=0.0.0.0:9090 \
          JOBD_STATE_DIR="$work/state" JOBD_WORKER_ID=jobd-worker-0 \
          "$jobd" --config "$root/etc/jobd/config.json" --handlers "$root/handlers.staged.json" \
          --check-config 2>&1) || { echo "$out" >&2; die "jobd --check-config refused the shipped config"; }
  echo "$out"
  # And the exec handler that ships must be the one the handlers name.
  python3 - "$root" <<'PY' || exit 1
import json, os, sys
root = sys.argv[1]
for t, spec in json.load(open(root + "/etc/jobd/handlers.json")).items():
    if "exec" in spec:
        p = root + spec["exec"][0]
        if not os.access(p, os.X_OK):
            sys.exit(f"FAIL: handler {t}: {spec['exec'][0]} is not an executable the image ships")
        print(f"handler {t}: {spec['exec'][0]} ships in the image")
PY
  ;;

rules)
  need promtool
  cd "$src/deploy/monitoring"
  promtool check rules jobd-rules.yml
  promtool test rules jobd-rules.test.yml
  # Every alert has a test case.
  for a in $(sed -n 's/^ *- alert: *//p' jobd-rules.yml); do
    grep -q "alertname: $a\$" jobd-rules.test.yml || die "alert $a has no test in jobd-rules.test.yml"
  done
  echo "every alert of jobd-rules.yml has a promtool test"
  ;;

systemd)
  need systemd-analyze
  [ -x "$jobd" ] || die "jobd binary $jobd not found"
  unit=$src/deploy/systemd/jobd.service
  grep -q '^ExecStart=/usr/local/bin/jobd ' "$unit" || die "ExecStart is not /usr/local/bin/jobd"
  # verify wants ExecStart's binary to exist: a copy of the unit pointing at
  # the built one.
  sed "s|^ExecStart=/usr/local/bin/jobd |ExecStart=$jobd |" "$unit" > "$work/jobd.service"
  out=$(cd "$work" && systemd-analyze verify ./jobd.service 2>&1) && rc=0 || rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then
    echo "$out" >&2
    die "systemd-analyze verify: exit $rc, $(echo "$out" | grep -c .) line(s) of complaints"
  fi
  for k in 'Type=notify' 'NotifyAccess=main' 'KillMode=mixed' 'DynamicUser=yes' 'StateDirectory=jobd' \
           'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes'; do
    grep -qx "$k" "$unit" || die "jobd.service lacks $k"
  done
  grep -q '^WatchdogSec=' "$unit" || die "jobd.service lacks WatchdogSec="
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$unit")
  budget=$(python3 -c '
import json, re, sys
c = json.load(open(sys.argv[1]))
def s(v):
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", str(v))
    return float(m.group(1)) * {"ms": .001, "s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]
print(int(s(c.get("drain_timeout", 25)) + s(c.get("kill_grace", 5))))' "$k8s/base/config.json")
  [ -n "$stop" ] && [ "$stop" -ge $((budget + 5)) ] \
    || die "TimeoutStopSec=${stop:-?} < drain_timeout + kill_grace + 5 = $((budget + 5))"
  echo "systemd-analyze verify: clean; TimeoutStopSec=${stop}s covers the drain budget (${budget}s)"
  ;;

image)
  df=$src/deploy/Dockerfile
  ign=$src/deploy/Dockerfile.dockerignore
  grep -Eq '^ARG BASE_IMAGE=[a-z0-9./-]+:[0-9]+\.[0-9]+[A-Za-z0-9.-]*(@sha256:[0-9a-f]{64})?$' "$df" \
    || die "the base image is not pinned to an exact version (ARG BASE_IMAGE=NAME:X.Y...)"
  grep -Eq '^USER [1-9][0-9]*:[1-9][0-9]*$' "$df" || die "no numeric non-root USER uid:gid"
  for l in title description version revision created base.name; do
    grep -q "org.opencontainers.image.$l=" "$df" || die "no OCI label org.opencontainers.image.$l"
  done
  grep -q '^ENTRYPOINT \["/usr/local/bin/jobd"\]' "$df" || die "jobd is not the entrypoint (PID 1)"
  grep -q '^STOPSIGNAL SIGTERM' "$df" || die "STOPSIGNAL is not SIGTERM"
  [ -f "$ign" ] || die "deploy/Dockerfile.dockerignore missing"
  head -n 20 "$ign" | grep -qx '\*' || die "Dockerfile.dockerignore does not start from excluding everything"
  while read -r from; do
    [ -e "$src/$from" ] || die "COPY source $from does not exist"
    top=${from%%/*}
    grep -qx "!$from" "$ign" || grep -qx "!$top/" "$ign" || grep -qx "!$top" "$ign" \
      || die "COPY source $from is excluded by Dockerfile.dockerignore"
  done < <(awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' "$df")
  # The exec handler that ships: one job line in, protocol lines out.
  out=$(echo '{"id":"x","type":"hello","queue":"q","attempt":1,"payload":{},"checkpoint":null}' \
          | JOBD_JOB_ID=01TEST JOBD_ATTEMPT=1 "$src/deploy/image/hello.sh")
  echo "$out" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
assert any("result" in l for l in lines), "no result line"
print("hello.sh: %d protocol lines, result %s" % (len(lines), [l["result"] for l in lines if "result" in l][0]))'
  echo "Dockerfile: pinned base, non-root USER, OCI labels, COPY sources let through"
  ;;

batch_keys)
  [ -n "${JOBD_TEST_REDIS:-}" ] || die "JOBD_TEST_REDIS is not set (run through ctest)"
  [ -x "$jobctl" ] || die "jobctl binary $jobctl not found"
  need awk
  # The CronJob's script, its paths moved under $work, jobctl replaced by a
  # recorder (the script execs `jobctl submit --batch FILE ...`).
  python3 - "$k8s/components/batch/cronjob.yaml" > "$work/script.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"args:\n\s*- \|\n((?:\s{18}.*\n|\n)+)", text)
if not m:
    sys.exit("FAIL: no `args: - |` script in the CronJob")
print("\n".join(l[18:] for l in m.group(1).splitlines()))
PY
  grep -q 'exec jobctl submit --batch /tmp/batch.jsonl' "$work/script.sh" || die "the CronJob does not exec jobctl submit --batch"
  mkdir -p "$work/etc" "$work/tmp" "$work/bin"
  cp "$k8s/components/batch/batch.jsonl" "$work/etc/batch.jsonl"
  sed -i "s|/tmp/batch.jsonl|$work/tmp/batch.jsonl|g; s|/etc/jobd-batch/batch.jsonl|$work/etc/batch.jsonl|" \
    "$work/script.sh"
  cat > "$work/bin/jobctl" <<SH
#!/bin/sh
printf '%s\n' "\$*" > "$work/args"
SH
  chmod +x "$work/bin/jobctl"
  run_script() { # JOB_NAME -> keyed batch in $work/tmp/batch.jsonl
    JOB_NAME=$1 PATH="$work/bin:$PATH" sh "$work/script.sh" > /dev/null
  }
  run_script jobd-nightly-29420760            # 2025-12-09T02:00Z, first pod
  cp "$work/tmp/batch.jsonl" "$work/first.jsonl"
  run_script jobd-nightly-29420760            # the same run, retried pod
  cmp -s "$work/first.jsonl" "$work/tmp/batch.jsonl" || die "a retried pod keys its lines differently"
  grep -q -- '--wait' "$work/args" || die "the CronJob does not --wait"
  python3 - "$work/first.jsonl" "$k8s/components/batch/batch.jsonl" <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
src = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(got) == len(src), "lines lost"
keys = [g.pop("idempotency_key") for g in got]
assert got == src, "lines changed beyond the key"
assert len(set(keys)) == len(keys), "two lines share a key: %s" % keys
assert all(k.startswith("nightly:2025-12-09T02:00Z:") for k in keys), keys
print("keys:", ", ".join(keys))
PY
  run_script jobd-nightly-29422200            # the next day's run
  ! cmp -s "$work/first.jsonl" "$work/tmp/batch.jsonl" || die "two runs share their keys"
  # Submitting the same run twice (the retried pod) makes no new jobs.
  export JOBD_REDIS_URL=$JOBD_TEST_REDIS JOBD_PREFIX=deploycheck$$
  "$jobctl" submit --batch "$work/first.jsonl" > "$work/ids1"
  "$jobctl" submit --batch "$work/first.jsonl" > "$work/ids2"
  cmp -s "$work/ids1" "$work/ids2" || die "a resubmitted run made new jobs: $(paste -sd' ' "$work/ids1") vs $(paste -sd' ' "$work/ids2")"
  [ "$(sort -u "$work/ids1" | wc -l)" -eq "$(grep -c . "$work/first.jsonl")" ] || die "expected one job per line"
  echo "a retried run resubmits nothing: the same $(wc -l < "$work/ids1") ids"
  ;;

demo)
  # make run's demo (deploy/run-demo.sh) on the build's jobd and jobctl, in a
  # directory of its own: it must end 0, with the outcomes it is meant to have.
  rm -rf "$work/run"
  JOBD_DEMO_DIR="$work/run" bash "$src/deploy/run-demo.sh" "$(dirname "$jobd")" > "$work/out" 2>&1 ||
    die "make run's demo failed: $(tail -5 "$work/out")"
  grep -q '^== done: jobd --once exited 1 ' "$work/out" || die "jobd --once did not end with 1: $(grep '^==' "$work/out")"
  stats=$(awk '$1 == "default" || $1 == "batch"' "$work/out" | tail -2)
  echo "$stats" | grep -Eq '^batch +0 +0 +0 +6 +0 ' || die "batch queue: $stats"
  echo "$stats" | grep -Eq '^default +0 +0 +0 +208 +2 ' || die "default queue: $stats"
  [ "$(grep -Ec '^[0-9a-f-]{36} +dead ' "$work/out")" -eq 2 ] || die "expected the two dead jobs listed"
  [ "$(grep -c ': 20000 documents, ' "$work/out")" -eq 2 ] || die "expected both indexes with 20000 documents"
  echo "the demo ran: 214 jobs succeeded, the 2 meant to end dead did, both indexes built"
  ;;

*)
  echo "check.sh: unknown step $step" >&2
  exit 2
  ;;
esac
echo "deploy.$step: passed"
