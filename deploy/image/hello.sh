#!/bin/sh
# hello.sh - the exec handler that ships in the image (type "hello"), so a
# jobd started from the image alone runs an exec job end to end. It speaks
# exec protocol v1 (schema/handler-protocol.md): one JSON line on stdin, JSON
# lines on stdout, exit 0 for success. POSIX sh only: the runtime image holds
# no interpreter beyond /bin/sh. Your own handlers go in your own image (see
# deploy/k8s/README.md).
set -eu
trap 'exit 75' TERM # asked to stop: nothing to checkpoint, release the job
IFS= read -r job || { echo "hello: no job on stdin" >&2; exit 2; }
printf '{"log":"hello from job %s, attempt %s"}\n' "${JOBD_JOB_ID:-?}" "${JOBD_ATTEMPT:-?}"
printf '{"progress":0.5}\n'
printf '{"result":{"hello":"world","job_bytes":%d}}\n' "${#job}"
