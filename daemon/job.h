/* job.h - one claimed job, from claim to its confirmed outcome.
 *
 * DESIGN: a job_t lives in the worker's held list while jobd holds its
 * lease: while its handler runs, and afterwards until Redis confirms its
 * outcome (or rejects its token). Fields shared with a built-in handler's
 * thread (progress, checkpoint, result, error) are guarded by mu; the stop
 * flag is atomic. Everything else belongs to the loop thread.
 *
 *   claimed --start--> RUNNING --handler ends--> outcome set
 *   outcome set --flush--> SENT --Redis confirms or rejects--> freed
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

typedef enum {
    OUT_NONE = 0, /* still running */
    OUT_ACK,      /* succeeded: ack.lua with result */
    OUT_RETRY,    /* failed: fail.lua, retry after retry_ms (or dead when out of attempts) */
    OUT_DEAD,     /* failed for good (bad input, unknown type): fail.lua -1 */
    OUT_CANCELED, /* stopped on a cancel request: fail.lua -2 */
    OUT_RELEASE,  /* stopped at a checkpoint: release.lua, attempt not charged */
    OUT_DROP      /* lease lost: nothing to report */
} job_outcome_t;

typedef enum {
    STOP_NONE = 0,
    STOP_LEASE_LOST, /* extend said the token is stale */
    STOP_CANCEL,     /* a cancel was requested */
    STOP_TIMEOUT,    /* the job's or handler's timeout passed */
    STOP_DRAIN       /* SIGTERM: stop and checkpoint */
} job_stop_t;

struct worker;

struct job {
    struct worker *w;
    struct job *prev, *next; /* held list */
    int qidx;                /* index of its queue in the config */
    char id[JOBD_ID_LEN + 1];
    char token[48];
    int attempt;
    char *raw_env;
    envelope_t env; /* decoded; env.root NULL if malformed */
    const handler_t *handler;
    log_job_t log; /* fields for log lines */
    int running;   /* the handler has not ended yet */
    int sent;      /* its outcome is in a Redis call in flight */
    job_outcome_t outcome;
    int64_t retry_ms;
    int64_t started_ms, deadline_ms; /* deadline 0: no timeout */
    job_stop_t stop_reason;
    atomic_int stop; /* the handler should stop */
    exec_t *exec;    /* exec handler while it runs */
    uv_work_t work;  /* built-in run off the loop */
    int work_rc;
    /* A persistent handler's job in its pool (pool.h), while it runs. */
    struct pool_job *pjob;
    /* Exec handler output of this attempt (reset at each start). */
    int invalid_lines;      /* invalid protocol lines seen (the first is logged) */
    int output_refused;     /* a result or checkpoint was refused: the attempt fails */
    json_t *resume;         /* checkpoint to resume from (new ref) or NULL */
    int journaled;          /* a row in the journal exists for it */
    int lease_lost;         /* counted in jobd_lease_lost_total (once per job) */
    int res_state;          /* resources: 0 none needed, 1 waiting, 2 held */
    int res_inflight;       /* an acquire call is out */
    int64_t res_retry_at;   /* when a waiting job asks again (Unix ms) */
    int spawn_tries;        /* exec spawns failed for want of descriptors or processes */
    int64_t spawn_retry_at; /* when to try the spawn again (Unix ms); 0: not waiting */
    uv_async_t *ckpt_async; /* wakes the loop to journal a built-in's checkpoint */

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled on stop, for jobd_job_sleep */
    double progress;
    char *checkpoint;       /* newest checkpoint JSON text, or NULL */
    int ckpt_dirty;         /* newer than what Redis has */
    int64_t ckpt_seq;       /* numbers checkpoints, for the journal */
    int64_t ckpt_journaled; /* newest seq written to the journal */
    int64_t ckpt_durable;   /* newest seq committed (built-ins wait for it) */
    int ckpt_closing;       /* the loop is going away: do not wait */
    char *result;           /* result JSON text, or NULL */
    char *error;            /* failure text, or NULL */
};
typedef struct job job_t;

/* Allocates a job (new). Returns NULL on out-of-memory. */
job_t *job_new(struct worker *w);
void job_free(job_t *j);

/* Stores a checkpoint (JSON text, stolen) as the job's newest, numbering
 * it. Does not wait. Returns its sequence number. */
int64_t job_store_checkpoint(job_t *j, char *text);

/* Sets the error text (copied), replacing any earlier one. */
void job_set_error(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Asks the handler to stop (sets the flag, wakes jobd_job_sleep). */
void job_request_stop(job_t *j, job_stop_t why);

#endif
