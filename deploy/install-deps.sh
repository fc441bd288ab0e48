#!/usr/bin/env bash
# Installs the Debian packages jobd builds and tests with, if any is missing.
# Runs as root (CI, containers) or through sudo; says what to do otherwise.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev libhiredis-dev libsqlite3-dev
      libjansson-dev libhttp-parser-dev redis-server redis-tools python3
      chromium chromium-driver fonts-dejavu-core)
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
