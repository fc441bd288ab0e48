#!/usr/bin/env bash
# Installs the Debian packages jobd builds and tests with, if any is missing.
# Runs as root (CI, containers) or through sudo; says what to do otherwise.
set -euo pipefail
# `install-deps.sh run` installs what `make run` needs; with no argument (or
# `test`) also what the test suite, the sanitizer run and `make lint` need.
# libsystemd-dev: sd_notify (READY=1, STATUS=, STOPPING=1, WATCHDOG=1).
pkgs=(build-essential cmake pkg-config libuv1-dev libhiredis-dev libsqlite3-dev
      libjansson-dev libhttp-parser-dev libsystemd-dev redis-server redis-tools python3 tzdata)
if [ "${1:-test}" != run ]; then
  # The Python package (client/python) and its tests: redis-py, pytest, the
  # envelope schema check, the FastAPI example and its HTTP client; venv,
  # setuptools and wheel for the offline `pip install` test.
  pkgs+=(python3-redis python3-pytest python3-jsonschema python3-fastapi python3-uvicorn
         python3-httpx python3-venv python3-setuptools python3-wheel)
  # tests/deploy/check.sh: promtool (Debian's prometheus package),
  # systemd-analyze, node and npm (the schema tools are npm packages it installs
  # into the build tree). node/npm only when the commands are missing: a
  # NodeSource nodejs already carries npm and conflicts with Debian's.
  pkgs+=(prometheus systemd)
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  # make lint and make format.
  pkgs+=(clang-tidy clang-format)
  # tests/browser: the dashboard in headless Chromium over WebDriver.
  pkgs+=(chromium chromium-driver fonts-dejavu-core)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
