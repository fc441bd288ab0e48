/* pool.h - persistent handlers (exec protocol v2): a pool of warm processes
 * per handler, each running one job at a time.
 *
 * DESIGN: a pool starts its processes at once (exec_spawn: same session,
 * descriptor and environment rules as v1, plus JOBD_PROTOCOL=2) and keeps
 * them warm. A process says {"ready":true} once it can take jobs (within
 * start_timeout); the pool then writes it one job line at a time on stdin
 * and routes the lines it writes back, tagged with the job's id, to that
 * job's callbacks: v1 messages to on_message, and the final
 * {"id":...,"done":"succeeded"|"failed"|"stopped"} to on_done. Untagged
 * plain lines and stderr go to the job's bounded output tails. Jobs wait in
 * FIFO order while no process is idle.
 *
 * Stopping a job: a stop line {"id":...,"stop":true}; if the job has not
 * answered done within the kill grace, its process is killed (SIGKILL to its
 * group) and the job ends as died. A kill stop (a timeout) sends SIGTERM to
 * the process group at once, SIGKILL after the grace, and the process is
 * replaced. A process that dies fails only its current job; one that dies
 * without being asked to (or never gets ready) is a crash: it is restarted
 * with backoff (100 ms doubling to 30 s), and RESPAWN_CRASH_LOOP crashes in
 * a row (no job completed in between) mark the pool unhealthy (logged;
 * shown by readiness) until a job completes again (respawn.h). A process is
 * recycled (stdin closed, SIGTERM, SIGKILL after the grace) once it has run
 * max_jobs jobs or its RSS passed max_rss_mb, and replaced at once.
 *
 * Crash recovery: each process is recorded (pid and start time) in the
 * handler process table (procs.h) when it starts, before it can get a job:
 * one pwrite, no fsync (a crash of jobd leaves the record in the page
 * cache; a crash of the machine takes the process with it). pools_start
 * (pools.h) kills every process an earlier jobd recorded before it starts
 * its own pools.
 *
 * Lifetimes: a pool_job_t is owned by the pool from pool_submit until its
 * on_done returns (exactly once, never from inside pool_submit or
 * pool_job_stop); after pool_close no callback runs. Loop thread only. */
#ifndef JOBD_POOL_H
#define JOBD_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "exec.h"
#include "handlers.h"
#include "hproto.h"
#include "metrics.h"
#include "procs.h"

typedef struct pool pool_t;
typedef struct pool_job pool_job_t;

typedef enum {
    POOL_SUCCEEDED = 0, /* done: succeeded */
    POOL_FAILED,        /* done: failed (error: the handler's reason, if it gave one) */
    POOL_STOPPED,       /* done: stopped at its last checkpoint: release */
    POOL_DIED,          /* its process ended first (exit_status / term_signal) */
    POOL_UNSTARTED      /* stopped (or the pool closed) before a process took it */
} pool_status_t;

/* How a job ended; strings and tails are lent for the on_done call. */
typedef struct {
    pool_status_t status;
    const char *error; /* POOL_FAILED: the "error" of its done line, or NULL */
    int64_t exit_status;
    int term_signal;                       /* POOL_DIED: how the process ended */
    const char *why_died;                  /* POOL_DIED: a reason jobd killed it, or NULL */
    const char *output_tail, *stderr_tail; /* written while the job ran */
    size_t output_len, stderr_len;
    uint64_t output_total, stderr_total;
} pool_done_t;

typedef struct {
    /* A tagged line of this job that is not plain output (hproto.h), as
     * exec_cbs_t's on_message. */
    void (*on_message)(void *arg, hproto_msg_t *msg);
    void (*on_done)(void *arg, const pool_done_t *d);
} pool_cbs_t;

typedef struct {
    const char *type;             /* the job type it serves (logs, the process table) */
    char *const *argv;            /* copied */
    char *const *env;             /* copied; the pool adds JOBD_PROTOCOL and JOBD_JOB_TYPE */
    int processes;                /* >= 1 */
    int64_t max_jobs, max_rss_mb; /* 0: never recycle for it */
    int64_t start_timeout_ms;
    int64_t kill_grace_ms;
    size_t max_value;   /* bound on a result or checkpoint */
    procs_t *procs;     /* where its processes are recorded; NULL: nowhere */
    int64_t backoff_ms; /* first restart delay after a crash; 0: 100 */
} pool_opts_t;

typedef struct {
    int processes, ready, busy; /* now */
    long long started, crashes, recycled, jobs;
    int crash_streak; /* crashes in a row */
    int unhealthy;
} pool_stats_t;

/* Creates the pool and starts its processes. Returns 0 or a negative libuv
 * error (nothing started then). */
int pool_new(pool_t **out, uv_loop_t *loop, const pool_opts_t *o);

/* Queues a job. line is its v2 job line (JSON, no newline), id its id.
 * Returns 0 and *out, or UV_ENOMEM / UV_ECANCELED (closing). */
int pool_submit(pool_t *p, pool_job_t **out, const char *id, const char *line, size_t len,
                const pool_cbs_t *cbs, void *arg);

/* Asks the job to stop: a stop line (kill 0) or, for a timeout, SIGTERM to
 * its process (kill 1; the process is replaced). A job still queued ends
 * POOL_UNSTARTED. Either way the process is killed after the kill grace if
 * the job is still on it. Idempotent; kill 1 after kill 0 escalates. */
void pool_job_stop(pool_job_t *j, int kill);

/* The pid of the process running the job, 0 while it waits. */
int pool_job_pid(const pool_job_t *j);

/* Stops the pool: queued and running jobs are dropped without callbacks,
 * every process gets end of file on stdin and SIGTERM, SIGKILL after the
 * kill grace; the pool frees itself once they are reaped (its handles keep
 * the loop running until then). */
void pool_close(pool_t *p);

void pool_stats(const pool_t *p, pool_stats_t *s);
const char *pool_type(const pool_t *p);

#endif
