/* exec.h - runs one exec handler as a child process (protocol v1).
 *
 * DESIGN: the child is spawned detached (setsid), so it leads its own
 * process group and a stop signals the whole group: SIGTERM, then SIGKILL
 * after the kill grace. It gets the job as one JSON line on stdin. Its stdout
 * is split into lines (at most EXEC_LINE_MAX bytes; longer lines are cut and
 * kept as output); protocol messages go to on_message, other lines to a
 * bounded output tail. stderr keeps its last EXEC_TAIL_MAX bytes. When the
 * child has exited, the group is killed (no stragglers) and once both pipes
 * are drained, every handle is closed and on_exit runs exactly once; the
 * exec_t is freed right after on_exit returns. */
#ifndef JOBD_EXEC_H
#define JOBD_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hproto.h"

#define EXEC_LINE_MAX (1024 * 1024)
#define EXEC_TAIL_MAX (64 * 1024)

typedef struct exec exec_t;

typedef struct {
    /* A protocol message (progress, checkpoint, result, log, invalid). The
     * message is borrowed for the call. */
    void (*on_message)(void *arg, const hproto_msg_t *msg);
    /* The child is gone. exit_status is its exit code (when term_signal is
     * 0); the tails are borrowed for the call (copy what you keep). */
    void (*on_exit)(void *arg, int64_t exit_status, int term_signal, const char *stderr_tail,
                    size_t stderr_len, const char *output_tail, size_t output_len);
} exec_cbs_t;

/* Spawns argv[0] (execve, no shell) with env ("K=V", NULL-terminated),
 * writes stdin_line plus a newline to its stdin and closes it. On success
 * *out is the running exec (owned by the module until on_exit). On failure
 * returns a negative libuv error and no callback ever runs. */
int exec_start(exec_t **out, uv_loop_t *loop, char *const argv[], char *const env[],
               const char *stdin_line, size_t len, const exec_cbs_t *cbs, void *arg);

/* Asks the child to stop: SIGTERM to its process group now, SIGKILL after
 * grace_ms if it is still there. Idempotent. */
void exec_stop(exec_t *e, int64_t grace_ms);

/* The child's pid (its process group id too). */
int exec_pid(const exec_t *e);

/* The start time of process pid (field 22 of /proc/PID/stat, clock ticks
 * since boot), or -1 if there is no such process. With the pid it names one
 * process even after the pid is reused. */
int64_t exec_start_time(int pid);

#endif
