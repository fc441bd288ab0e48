/* exec.h - runs one exec handler as a child process (protocol v1), and the
 * process layer under the persistent pool (pool.h).
 *
 * DESIGN: the child is spawned with posix_spawn (glibc: clone with CLONE_VM
 * and CLONE_VFORK, so neither the daemon's page tables are copied nor its
 * pages made copy-on-write) in a new session (POSIX_SPAWN_SETSID), so it
 * leads its own process group and a stop signals the whole group: SIGTERM,
 * then SIGKILL after the kill grace. Its stdin, stdout and stderr are pipes
 * whose other ends, like every descriptor of jobd, are close-on-exec; the
 * child also closes everything above 2 before execve (closefrom), and its
 * signal mask and dispositions are reset (jobd ignores SIGPIPE). Its exit is
 * watched through a pidfd on the loop; the pid is registered with the
 * subreaper (orphans.h) until exec reaps it, so nobody else does. It gets the job as one JSON line
 * on stdin, written only when the caller says so (exec_send_input), so that the caller can first
 * make the child's process group durable. Its stdout is split into lines of at most max_value +
 * EXEC_LINE_ROOM bytes (a longer line is judged by its prefix and length, see hproto_parse_cut);
 * protocol messages, invalid and refused lines go to on_message, other lines to a bounded output
 * tail. Both tails (stdout's output lines, stderr) keep their last EXEC_TAIL_MAX bytes. When the
 * child has exited, the group is killed (no stragglers) and once both pipes are drained, every
 * handle is closed and on_exit runs exactly once; the exec_t is freed right after on_exit returns.
 */
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
} exec_cbs_t;

/* Spawns argv[0] (execve, no shell) with env ("K=V", NULL-terminated) and
 * keeps a copy of stdin_line for exec_send_input. A checkpoint or result
 * over max_value bytes is refused (hproto_parse). On success *out is the
 * running exec (owned by the module until on_exit). On failure returns a
 * negative libuv error and no callback ever runs. */
int exec_start(exec_t **out, uv_loop_t *loop, char *const argv[], char *const env[],
               const char *stdin_line, size_t len, size_t max_value, const exec_cbs_t *cbs,
               void *arg);

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

/* Spawns a persistent child (stdin open until exec_close_input). on_message
 * of cbs is not used; on_exit runs once as for exec_start. Same errors. */
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

/* Closes the child's stdin (it reads end of file). Idempotent. */
void exec_close_input(exec_t *e);

/* SIGKILL to the child's process group now (it has not exited yet). */
void exec_kill(exec_t *e);

/* Whether the child has exited (its pipes may still be draining). */
int exec_exited(const exec_t *e);

/* Writes the stdin line plus a newline to the child and closes its stdin.
 * Only the first call does anything. */
void exec_send_input(exec_t *e);

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
