/* job.h - one claimed job, from claim to its confirmed outcome.
 *
 * DESIGN: a job_t is created by claim (or by lease's crash recovery), held
 * by lease while jobd holds its lease, and freed by lease only, from the
 * pump, once Redis confirmed or refused its outcome (or the lease was
 * lost). The modules that touch it on the way own disjoint parts of it:
 * run the handler fields and the per-job timer, resources res_*, outbox
 * outcome/sent, lease the list, hash and journal fields. Fields shared with
 * a built-in handler's thread (progress, checkpoint, result, error, the
 * checkpoint handshake) are guarded by mu; the stop flag is atomic.
 * Everything else belongs to the loop thread.
 *
 *   claimed --run_start--> RUNNING --handler ends--> outcome set (outbox)
 *   outcome set --flush--> SENT --Redis confirms or rejects--> retired --pump--> freed
 *   RUNNING --extend says lost/cancel, timeout, drain--> stop asked
 */
#ifndef JOBD_JOB_H
#define JOBD_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "envelope.h"
#include "exec.h"
#include "handlers.h"
#include "jobd/client.h"
#include "jobd/handler.h"
#include "log.h"
#include "outcome.h"

#define JOB_TOKEN_MAX 48 /* bytes of a lease token, NUL included */

struct run;

struct job {
    /* lease: the held list, the hash by id, the young list (held less than
     * a second, not journaled yet), the retired list. */
    struct job *prev, *next;
    struct job *hnext;
    struct job *young_prev, *young_next;
    uint64_t held_since; /* uv_now() when it was added */
    int young;           /* in the young list */
    int retired;         /* out of the list and hash; freed by the pump */
    int journaled;       /* a row in the journal exists for it (lease.h's ROW_*) */
    int proc_slot;       /* its handler's record in procs.h's table, -1: none */
    int lease_lost;      /* counted in jobd_lease_lost_total (once per job) */

    int qidx; /* index of its queue in the config */
    char id[JOBD_ID_LEN + 1];
    char token[JOB_TOKEN_MAX];
    int attempt;
    char *raw_env;
    envelope_t env; /* decoded; env.root NULL if malformed */
    const handler_t *handler;
    log_job_t log; /* fields for log lines */

    /* run */
    struct run *run;                 /* the module running it (borrowed) */
    int running;                     /* the handler has not ended yet (or it waits to start) */
    int64_t started_ms, deadline_ms; /* deadline 0: no timeout */
    job_stop_t stop_reason;
    atomic_int stop; /* the handler should stop */
    exec_t *exec;    /* exec handler while it runs */
    uv_work_t work;  /* built-in run off the loop */
    int work_rc;
    /* A persistent handler's job in its pool (pool.h), while it runs. */
    struct pool_job *pjob;
    uv_timer_t timer;   /* its next deadline: resource retry, spawn retry or timeout */
    int timer_open;     /* timer initialized and not closed yet: not freed before */
    int spawn_tries;    /* exec spawns failed for want of descriptors or processes */
    int spawn_waiting;  /* waits to try the spawn again */
    int invalid_lines;  /* exec output of this attempt: invalid protocol lines seen */
    int output_refused; /* a result or checkpoint was refused: the attempt fails */
    json_t *resume;     /* checkpoint to resume from (new ref) or NULL */

    /* resources */
    int res_state;    /* 0 none needed, 1 waiting, 2 held */
    int res_inflight; /* an acquire call is out */

    /* outbox */
    job_outcome_t outcome;
    int64_t retry_ms; /* a retry's backoff, or a deferral's delay */
    int defer_bound;  /* a deferral's bound (defer.lua; 0: none) */
    int sent;         /* its outcome is in a Redis call in flight */

    uv_async_t *ckpt_async; /* wakes the loop to journal a built-in's checkpoint */

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled on stop and on checkpoint news */
    double progress;
    char *checkpoint;         /* newest checkpoint JSON text, or NULL */
    int ckpt_dirty;           /* newer than what Redis has */
    _Atomic int64_t ckpt_seq; /* numbers checkpoints, for the journal; written under mu,
                                 read without it by the loop's cheap "anything new?" */
    int64_t ckpt_journaled;   /* newest seq written to the journal */
    int64_t ckpt_durable;     /* newest seq committed (built-ins wait for it) */
    int64_t ckpt_failed;      /* newest seq whose commit failed (its waiter gives up) */
    int ckpt_closing;         /* the loop is going away: do not wait */
    char *result;             /* result JSON text, or NULL */
    char *error;              /* failure text, or NULL */
};
typedef struct job job_t;

/* Allocates a job (new). Returns NULL on out-of-memory. */
job_t *job_new(void);
/* Frees j and what it owns. Only lease calls it. */
void job_free(job_t *j);

/* Stores a checkpoint (JSON text, stolen) as the job's newest, numbering
 * it. Does not wait. Returns its sequence number. */
int64_t job_store_checkpoint(job_t *j, char *text);

/* Sets the error text (copied), replacing any earlier one. */
void job_set_error(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Asks the handler to stop (sets the flag, wakes jobd_job_sleep). */
void job_request_stop(job_t *j, job_stop_t why);

#endif
