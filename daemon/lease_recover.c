/* lease_recover.c - lease's crash recovery (lease_recover, see lease.h):
 * what an earlier jobd on this state dir left in the journal and in the
 * handler process table (procs.h). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "lease.h"
#include "log.h"

/* The index of the queue named name in the config, or -1. */
static int queue_index(const lease_t *l, const char *name)
{
    for (int i = 0; i < l->cfg->nqueues; i++)
        if (strcmp(name, l->cfg->queues[i].name) == 0) return i;
    return -1;
}

/* Holds a job made from r (of queue qidx, its journal row in state row),
 * with an outcome to report; logs an out-of-memory. */
static void recovered(lease_t *l, const journal_row_t *r, int qidx, int row)
{
    job_t *j = job_new();
    if (!j) {
        log_error("journal: out of memory for job %s; its lease will expire instead", r->id);
        return;
    }
    j->qidx = qidx;
    snprintf(j->id, sizeof j->id, "%s", r->id);
    snprintf(j->token, sizeof j->token, "%s", r->token);
    j->attempt = r->attempt;
    j->started_ms = r->claimed_at;
    j->checkpoint = r->checkpoint ? strdup(r->checkpoint) : NULL;
    j->progress = r->progress;
    j->result = r->result ? strdup(r->result) : NULL;
    j->error = r->error ? strdup(r->error) : NULL;
    if ((r->checkpoint && !j->checkpoint) || (r->result && !j->result) || (r->error && !j->error)) {
        log_error("journal: out of memory for job %s; its lease will expire instead", r->id);
        job_free(j);
        return;
    }
    j->retry_ms = r->retry_ms;
    /* A lease with no outcome was cut short by a crash: release it now with
     * the journal's newest checkpoint instead of waiting for it to expire. */
    j->outcome = outcome_parse(r->outcome);
    j->log =
        (log_job_t){.job_id = j->id, .queue = l->cfg->queues[qidx].name, .attempt = j->attempt};
    j->journaled = row;
    lease_add(l, j);
}

static void on_journal_row(void *arg, const journal_row_t *r)
{
    lease_t *l = arg;
    if (r->outcome && strcmp(r->outcome, "parked") == 0) {
        /* A checkpoint kept for a possible re-claim, not a lease; after a
         * week (dead-job retention) nobody will resume from it. */
        if (jobd_now_ms() - r->ended_at > JOBD_TTL_DEAD_MS)
            journal_delete(l->jn, r->id);
        else
            l->parked++;
        return;
    }
    int qidx = queue_index(l, r->queue);
    if (qidx < 0 || strlen(r->id) > JOBD_ID_LEN) {
        log_warn("journal holds job %s of queue %s, which this jobd does not serve; its lease "
                 "will expire instead",
                 r->id, r->queue);
        journal_delete(l->jn, r->id);
        return;
    }
    /* A process group a jobd before procs.h journaled: stopped before the
     * job is handed on. The start time tells a reused pid apart. */
    if (r->pgid > 0 && r->pgid_start > 0 && child_start_time(r->pgid) == r->pgid_start) {
        log_warn("journal: stopping handler process group %d left from an earlier run of job %s",
                 r->pgid, r->id);
        kill(-r->pgid, SIGKILL);
    }
    recovered(l, r, qidx, ROW_COMMITTED);
}

/* Stops what our predecessor left running of a job before the job is
 * handed on, so that two copies never run at once. */
static void on_old_proc(void *arg, const procs_rec_t *r)
{
    (void)arg;
    if (r->id[0] && procs_kill_if_same(r)) /* pool processes are pools_start's */
        log_warn("stopping handler process group %d left from an earlier run of job %s", r->pid,
                 r->id);
}

/* A process-per-job handler's lease the journal did not hold (a young
 * job): released at once too, and journaled now, until Redis confirms. */
static void on_old_lease(void *arg, const procs_rec_t *r)
{
    lease_t *l = arg;
    if (!r->id[0] || lease_find(l, r->id, r->token)) return; /* the journal's row has it */
    int qidx = queue_index(l, r->queue);
    if (qidx < 0) {
        log_warn("handler process table holds job %s of queue %s, which this jobd does not "
                 "serve; its lease will expire instead",
                 r->id, r->queue);
        return;
    }
    journal_row_t row = {.id = r->id,
                         .queue = r->queue,
                         .token = r->token,
                         .attempt = r->attempt,
                         .claimed_at = r->claimed_at};
    int written = journal_put_held(l->jn, r->id, r->queue, r->token, r->attempt, r->claimed_at);
    recovered(l, &row, qidx, written == 0 ? ROW_WRITTEN : ROW_NONE);
}

void lease_recover(lease_t *l)
{
    if (!l->jn) return;
    procs_t *p = journal_procs(l->jn);
    procs_each_old(p, on_old_proc, l);
    if (journal_load(l->jn, on_journal_row, l) < 0) log_error("reading the journal failed");
    procs_each_old(p, on_old_lease, l);
    lease_commit(l);
    if (l->n) log_info("journal: %d jobs from an earlier run to release or report", l->n);
}
