#!/usr/bin/env bash
# build-image.sh - builds deploy/Dockerfile with the repository root as the
# context, using docker, podman or buildah (the first one found that works;
# JOBD_IMAGE_TOOL=NAME picks one). Used by `make image` and deploy/test-image.sh.
#   IMAGE=jobd:0.1.0 bash deploy/build-image.sh [extra build args...]
# Prints the tool it used on stderr; exits 1 if none is usable.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
version=$(sed -n 's/^#define JOBD_VERSION "\(.*\)"/\1/p' include/jobd/version.h)
image=${IMAGE:-jobd:$version}
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision"
      --build-arg "CREATED=$created" -f deploy/Dockerfile -t "$image" "$@")

pick_tool() {
  local t
  if [ -n "${JOBD_IMAGE_TOOL:-}" ]; then echo "$JOBD_IMAGE_TOOL"; return; fi
  for t in docker podman buildah; do
    command -v "$t" >/dev/null || continue
    # A docker client without a daemon cannot build: try the next tool.
    if [ "$t" = docker ] && ! docker info >/dev/null 2>&1; then
      echo "build-image: docker is installed but its daemon does not answer; trying podman/buildah" >&2
      continue
    fi
    echo "$t"; return
  done
  echo "build-image: none of docker, podman or buildah is usable; install one (apt-get install podman)" >&2
  exit 1
}
tool=$(pick_tool)
echo "build-image: building $image with $tool" >&2
case "$tool" in
  # BuildKit reads deploy/Dockerfile.dockerignore beside the Dockerfile itself.
  docker) DOCKER_BUILDKIT=1 docker build "${args[@]}" . ;;
  podman) podman build --ignorefile deploy/Dockerfile.dockerignore "${args[@]}" . ;;
  buildah) buildah bud --ignorefile deploy/Dockerfile.dockerignore "${args[@]}" . ;;
  *) echo "build-image: unknown tool $tool" >&2; exit 1 ;;
esac
echo "build-image: built $image" >&2
