/* lease.h - the jobs jobd holds a lease on, and their durable checkpoints.
 *
 * DESIGN: every held job is in one list (for the per-queue batches) and in
 * a hash by id; a reply from Redis names a job by (id, token), and
 * lease_find answers only when both match, so a reply about an older lease
 * of the same job (same id, older token) never touches the newer one: the
 * fence of CONTRACT guarantee 2 on our side. A job leaves through
 * lease_retire (out of the list and hash at once, so no later reply finds
 * it) and is freed by lease_free_retired, which only the pump calls: never
 * inside a loop over the list, never while a handle of the job is open.
 *
 * Durability (Guarantees 3, 5, 6): a job's lease, checkpoints and outcome
 * go into the journal; lease_commit is the group commit (once per loop
 * iteration, from the pump). A built-in that checkpoints waits in
 * jobd_job_checkpoint until that commit: lease_commit wakes it with
 * ckpt_durable on success, ckpt_failed when the commit failed (its rows
 * are rolled back; the held rows are written again), and lease_close sets
 * ckpt_closing so no thread waits on a loop that is gone. A job held for a
 * second without a journal row gets one (it is then worth resuming after a
 * crash); before that ("young") it has none, whatever its handler kind, so
 * a short job costs the journal nothing unless it checkpoints or Redis is
 * away (its outcome is journaled then). A process-per-job handler's
 * process group and lease go into the handler process table instead
 * (lease_record_proc, procs.h: no fsync), so its input is sent at once; a
 * restarted jobd stops that group and releases that lease (lease_recover)
 * even when the journal has no row for it. The slot is cleared when the
 * job is retired. Every lease/3 lease_extend_all renews every held
 * lease in one extend.lua call per queue; every sync interval lease_sync
 * sends changed checkpoints to Redis; a stale token reported by either goes
 * up through on_lost (once per job), a cancel request through on_cancel.
 * Loop thread only, except the fields job.h marks as guarded by mu. */
#ifndef JOBD_LEASE_H
#define JOBD_LEASE_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "job.h"
#include "journal.h"
#include "proto.h"
#include "rq.h"
#include "stats.h"

/* job_t.journaled: no row, written in the open transaction, committed. */
enum { ROW_NONE = 0, ROW_WRITTEN, ROW_COMMITTED };

typedef struct {
    void (*on_lost)(void *arg, job_t *j);   /* Redis says its token is stale */
    void (*on_cancel)(void *arg, job_t *j); /* Redis says a cancel was requested */
    void (*kick)(void *arg);                /* run the pump soon */
    void *arg;
} lease_cbs_t;

typedef struct lease {
    uv_loop_t *loop;
    const config_t *cfg;
    rq_t *rq;       /* borrowed */
    journal_t *jn;  /* borrowed; NULL: no journal */
    stats_t *stats; /* borrowed */
    lease_cbs_t cbs;
    job_t *head, *tail; /* held jobs, oldest first */
    int n;
    job_t **buckets; /* the hash by id */
    size_t nbuckets;
    job_t *young_head, *young_tail; /* held, not journaled, in the order added */
    job_t *retired;                 /* waiting for lease_free_retired */
    int parked;                     /* parked checkpoints in the journal (journal_park) */
    uv_timer_t young_timer, sync_timer;
    uv_async_t ckpt_async; /* a built-in checkpointed: journal and commit it */
} lease_t;

/* A failure seam for tests: the journal commit lease_commit calls. */
extern int (*lease_commit_fn)(journal_t *jn);

/* Sets l up on loop (no I/O). rq may be NULL until lease_start (tests).
 * Returns 0 or a negative JOBD_E* code. */
int lease_init(lease_t *l, uv_loop_t *loop, const config_t *cfg, rq_t *rq, journal_t *jn,
               stats_t *stats, const lease_cbs_t *cbs);
/* Starts the checkpoint sync timer. */
void lease_start(lease_t *l);

/* Holds j (lease takes ownership; it frees it after lease_retire). */
void lease_add(lease_t *l, job_t *j);
/* The held job with this id and token, or NULL. O(1). */
job_t *lease_find(const lease_t *l, const char *id, const char *token);
/* Lets go of j: out of the list and hash now, its journal row forgotten;
 * freed by the next lease_free_retired. */
void lease_retire(lease_t *l, job_t *j);
/* Frees retired jobs whose handles are closed. The pump calls it. */
void lease_free_retired(lease_t *l);
/* Retires every held job whose handler is not running (the hard deadline:
 * unreported outcomes are left to lease expiry). */
void lease_retire_idle(lease_t *l);

/* Counts j's lost lease in jobd_lease_lost_total, once per job. */
void lease_count_lost(lease_t *l, job_t *j);

/* Makes sure j has a journal row (its lease survives a crash). */
void lease_journal(lease_t *l, job_t *j);
/* Records j's just-spawned handler process group pid (started at start,
 * child_start_time's clock ticks) with j's lease in the handler process
 * table (procs.h), written at once, no fsync. Returns
 * 0, or -1 (logged) when it could not: the caller then journals j and waits
 * for the group commit before it lets the handler run. */
int lease_record_proc(lease_t *l, job_t *j, int pid, int64_t start);
/* Journals j's newest checkpoint if it is newer than the journal's. */
void lease_journal_checkpoint(lease_t *l, job_t *j);
/* Journals j's outcome (Guarantee 6: kept until Redis takes it). */
void lease_journal_outcome(lease_t *l, job_t *j);
/* Parks j's checkpoint (a release Redis refused as stale, see
 * journal_park) and detaches j from its row. Returns 1 if parked. */
int lease_park(lease_t *l, job_t *j);
/* A parked checkpoint of job id (new, malloc'd), or NULL. */
char *lease_take_parked(lease_t *l, const char *id);
/* The group commit: commits what the journal holds and tells built-ins
 * waiting on those checkpoints (durable, or failed). */
void lease_commit(lease_t *l);
/* The handle built-ins wake the loop with; NULL without a journal. */
uv_async_t *lease_ckpt_async(lease_t *l);

/* Reads what an earlier run left (Guarantee 5; in lease_recover.c): the
 * process-per-job handler groups of the handler process table that still
 * run are killed first; every job the journal holds becomes a held job with
 * an outcome to report (a release with the newest checkpoint for a lease
 * without one), and so does every job of the table the journal lacks (a
 * release, journaled now). */
void lease_recover(lease_t *l);

/* Renews every held lease: one extend.lua call per queue. */
void lease_extend_all(lease_t *l);

/* Commits, then wakes every checkpoint waiter for good (ckpt_closing): the
 * loop will not commit again. */
void lease_stop_waiters(lease_t *l);
/* lease_stop_waiters, then closes the handles (the loop finishes the
 * closes before uv_run returns). */
void lease_close(lease_t *l);
/* Frees every job (after the loop has run dry). */
void lease_free(lease_t *l);

/* A batch request to Redis about some held jobs: the (id, token) pairs it
 * names, so that its reply finds them again (or finds them gone). One
 * allocation; cap pairs. */
typedef struct {
    void *owner;
    int qidx;
    proto_script_t script;
    int n, cap;
    char (*ids)[JOBD_ID_LEN + 1];
    char (*tokens)[JOB_TOKEN_MAX];
} lease_batch_t;

/* A new empty batch (NULL on out-of-memory). */
lease_batch_t *lease_batch_new(void *owner, int qidx, proto_script_t script, int cap);
/* Adds j's (id, token); the caller keeps n < cap. */
void lease_batch_add(lease_batch_t *b, const job_t *j);
/* The held job named by pair i, or NULL if it is gone (or re-leased). */
job_t *lease_batch_job(const lease_t *l, const lease_batch_t *b, int i);
void lease_batch_free(lease_batch_t *b);

#endif
