/* exec.h - runs one exec handler as a child process (protocol v1), and the
 * process layer under the persistent pool (pool.h).
 *
 * DESIGN: the child is started by child.h (posix_spawn in a new session,
 * three pipes, nothing else of jobd; its pidfd and start time). A job's
 * child (exec_start) is spawned on a spawner thread (spawner.h), so the loop
 * goes on while posix_spawn waits for the child to exec; on_spawned then
 * tells the loop it runs (or why it could not start). A persistent child
 * (exec_spawn) is spawned at once, on the loop. A stop signals the child's
 * whole process group: SIGTERM, then SIGKILL after the kill grace. Its exit
 * is watched through the pidfd on the loop; the pid stays registered with
 * the subreaper (orphans.h) until exec reaps it, so nobody else does. It
 * gets the job as one JSON line on stdin, written only when the caller says
 * so (exec_send_input), so that the caller can first make the child's
 * process group durable. Its stdout is split into lines of at most
 * max_value + EXEC_LINE_ROOM bytes (a longer line is judged by its prefix
 * and length, see hproto_parse_cut); protocol messages, invalid and refused
 * lines go to on_message, other lines to a bounded output tail. Both tails
 * (stdout's output lines, stderr) keep their last EXEC_TAIL_MAX bytes. When
 * the child has exited, the group is killed (no stragglers) and once both
 * pipes are drained, every handle is closed and on_exit runs exactly once;
 * the exec_t is freed right after on_exit returns. Loop thread only. */
#ifndef JOBD_EXEC_H
#define JOBD_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hproto.h"

/* Room around a value on its line (its key, other keys), beyond max_value. */
#define EXEC_LINE_ROOM 65536 /* 64 KiB */
#define EXEC_TAIL_MAX 65536  /* 64 KiB */

typedef struct exec exec_t;

/* A bounded tail: keeps the last EXEC_TAIL_MAX bytes written; its buffer is
 * allocated on the first byte. Zero-initialise; exec_tail_reset frees. */
typedef struct {
    char *buf;
    size_t start, len;
    uint64_t total; /* every byte written, kept or not */
} exec_tail_t;

void exec_tail_add(exec_tail_t *t, const char *s, size_t n);
/* Copies the kept bytes in order into out (room for EXEC_TAIL_MAX); returns
 * how many. */
size_t exec_tail_copy(const exec_tail_t *t, char *out);
/* Frees the buffer and empties the tail. */
void exec_tail_reset(exec_tail_t *t);

/* How the child ended and what it left: the tails are borrowed for the
 * on_exit call (copy what you keep); the totals count every byte of output
 * lines and of stderr, kept or not. */
typedef struct {
    int64_t exit_status; /* its exit code, when term_signal is 0 */
    int term_signal;
    const char *stderr_tail;
    size_t stderr_len;
    uint64_t stderr_total;
    const char *output_tail; /* stdout lines that were not messages */
    size_t output_len;
    uint64_t output_total;
} exec_exit_t;

typedef struct {
    /* A stdout line that is not plain output: a message, an invalid line or
     * a refused value (hproto.h). The message is lent for the call; the
     * callee may take its text fields (setting them NULL). */
    void (*on_message)(void *arg, hproto_msg_t *msg);
    /* The child is gone and its pipes are drained. */
    void (*on_exit)(void *arg, const exec_exit_t *x);
    /* exec_start only, on the loop thread, never from inside exec_start: rc
     * 0, the child runs (exec_pid and exec_start_ticks are set; a stop or
     * kill asked for before now is applied right after this returns); or a
     * negative libuv error: it could not be started, the exec_t is freed
     * after this returns and on_exit never runs. */
    void (*on_spawned)(void *arg, int rc);
} exec_cbs_t;

/* Has sp spawn argv[0] (execve, no shell) with env ("K=V",
 * NULL-terminated; both copied) and keeps a copy of stdin_line for
 * exec_send_input. A checkpoint or result over max_value bytes is refused
 * (hproto_parse). Returns 0 with *out the exec (owned by the module until
 * on_exit, or until on_spawned reports a failure), whose on_spawned runs
 * later; or a negative libuv error (out of memory) and no callback ever
 * runs. */
struct spawner;
int exec_start(exec_t **out, uv_loop_t *loop, struct spawner *sp, char *const argv[],
               char *const env[], const char *stdin_line, size_t len, size_t max_value,
               const exec_cbs_t *cbs, void *arg);

/* The process layer for persistent handlers (pool.h): a child whose stdin
 * stays open for many lines (exec_write) and whose output goes raw to the
 * caller instead of through the v1 parser. */
typedef struct {
    char *const *argv; /* argv[0] is the program (no PATH search) */
    char *const *env;  /* "K=V", NULL-terminated */
    size_t max_value;  /* bound on a value; lines are cut at max_value + EXEC_LINE_ROOM */
    /* Every stdout line (without its newline), or the kept prefix of a line
     * longer than the bound (cut set, total its full length). NULL: v1. */
    void (*on_line)(void *arg, const char *line, size_t len, size_t total, int cut);
    /* Every stderr chunk as it comes. NULL: v1 (the bounded tail). */
    void (*on_stderr)(void *arg, const char *buf, size_t len);
} exec_opts_t;

/* Spawns a persistent child now, on the loop thread (stdin open until
 * exec_close_input). on_message and on_spawned of cbs are not used; on_exit
 * runs once as for exec_start. Returns 0, or a negative libuv error (the
 * child could not be started; no callback ever runs). exec_write and
 * exec_drain_stderr are for these children only. */
int exec_spawn(exec_t **out, uv_loop_t *loop, const exec_opts_t *o, const exec_cbs_t *cbs,
               void *arg);

/* Writes len bytes to the child's stdin (copied). Returns 0, or a negative
 * libuv error if stdin is closed or the write could not be queued. */
int exec_write(exec_t *e, const char *buf, size_t len);

/* Reads now what the child has written to stderr so far (its pipe is
 * non-blocking) and hands it on as the loop would have: a handler writes a
 * traceback to stderr before its final line on stdout, and the two pipes
 * are read in no particular order. */
void exec_drain_stderr(exec_t *e);

/* Closes the child's stdin (it reads end of file); a job's child then
 * never gets its line. Idempotent; nothing before on_spawned. */
void exec_close_input(exec_t *e);

/* SIGKILL to the child's process group now, or as soon as it is spawned. */
void exec_kill(exec_t *e);

/* Whether the child has exited (its pipes may still be draining). */
int exec_exited(const exec_t *e);

/* Writes the stdin line plus a newline to the child and closes its stdin.
 * Only the first call after on_spawned does anything. */
void exec_send_input(exec_t *e);

/* Asks the child to stop: SIGTERM to its process group now (or as soon as
 * it is spawned), SIGKILL after grace_ms if it is still there. Idempotent. */
void exec_stop(exec_t *e, int64_t grace_ms);

/* The child's pid (its process group id too); 0 before on_spawned. */
int exec_pid(const exec_t *e);
/* Its start time, as child_start_time(exec_pid(e)) gives it; -1 before
 * on_spawned. */
int64_t exec_start_ticks(const exec_t *e);

#endif
