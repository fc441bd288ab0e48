/* outbox.c - see outbox.h. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "num.h"
#include "outbox.h"

static const char *qname(const outbox_t *o, int qidx)
{
    return o->cfg->queues[qidx].name;
}

static int max_attempts(const job_t *j)
{
    return outcome_max_attempts(j->env.max_attempts, j->handler ? j->handler->max_attempts : 0);
}

void outbox_init(outbox_t *o, const config_t *cfg, rq_t *rq, lease_t *lease, stats_t *stats,
                 jobmetrics_t *jm, const outbox_cbs_t *cbs)
{
    memset(o, 0, sizeof *o);
    o->cfg = cfg;
    o->rq = rq;
    o->lease = lease;
    o->stats = stats;
    o->jm = jm;
    o->cbs = *cbs;
}

void outbox_put(outbox_t *o, job_t *j, job_outcome_t oc)
{
    oc = outcome_charge(oc, j->attempt, max_attempts(j));
    if (oc == OUT_RETRY) {
        /* The job's own setting, else the handler's, else jobd's. */
        const handler_t *h = j->handler;
        int64_t base =
            outcome_setting(j->env.retry_base_ms, h ? h->retry_base_ms : 0, o->cfg->retry_base_ms);
        int64_t cap =
            outcome_setting(j->env.retry_cap_ms, h ? h->retry_cap_ms : 0, o->cfg->retry_cap_ms);
        j->retry_ms = outcome_retry_delay(base, cap, j->attempt, random);
    }
    j->outcome = oc;
    if (oc == OUT_DROP)
        lease_retire(o->lease, j);
    else if (j->journaled || !rq_ready(o->rq))
        lease_journal_outcome(o->lease, j);
    o->cbs.kick(o->cbs.arg);
}

int outbox_busy(const outbox_t *o)
{
    return o->inflight > 0;
}

/* ---- answers ---- */

/* Counts j's confirmed outcome (Redis answered res): in the daemon's
 * totals and in its queue and type's series. */
static void count(outbox_t *o, const job_t *j, long long res)
{
    long long *c = jobmetrics_cell(o->jm, j->qidx, j->handler)->count;
    switch (j->outcome) {
    case OUT_ACK:
        o->stats->succeeded++;
        c[JM_SUCCEEDED]++;
        return;
    case OUT_RELEASE:
        o->stats->released++;
        c[JM_RELEASED]++;
        return;
    case OUT_DEFER:
        break;
    default:
        o->stats->failed++;
    }
    if (res == 1 && j->outcome == OUT_DEFER) {
        o->stats->deferred++;
        c[JM_DEFERRED]++;
    } else if (res == 1) {
        o->stats->retried++;
        c[JM_RETRIED]++;
    } else if (res == 2) {
        o->stats->dead++;
        c[JM_DEAD]++;
    } else if (res == 3) {
        o->stats->canceled++;
        c[JM_CANCELED]++;
    }
}

/* Redis answered res (made positive) for j. */
static void confirmed(outbox_t *o, job_t *j, long long res)
{
    if (res == 0 && j->outcome == OUT_RELEASE && lease_park(o->lease, j)) {
        /* Its lease expired while Redis was away, so Redis may hand the job
         * out again with an older checkpoint: keep ours (resume from the
         * local journal when it holds a newer one). */
        lease_count_lost(o->lease, j);
        log_msg(LOG_WARN, &j->log,
                "release rejected: lease token is stale; keeping the "
                "journal's checkpoint in case this worker claims the job again");
        return;
    }
    if (res == 0) {
        o->stats->stale_outcomes++;
        lease_count_lost(o->lease, j);
        log_msg(LOG_WARN, &j->log,
                "outcome rejected: lease token is stale (the lease was "
                "lost, or Redis applied this outcome before a reconnect)");
        return;
    }
    /* A job passed on for want of a handler (run.c) is for another worker:
     * this one looks again one delay after it is due, not when it is due,
     * or it would race the worker that knows the type to it, and often
     * win. */
    int passed_on = j->outcome == OUT_DEFER && !j->handler;
    if (outcome_requeued(j->outcome, res))
        o->cbs.on_requeued(o->cbs.arg, j->qidx, j->outcome,
                           passed_on ? num_mul_sat(j->retry_ms, 2) : j->retry_ms);
    count(o, j, res);
    log_level_t lvl = j->outcome == OUT_ACK || j->outcome == OUT_RELEASE ? LOG_INFO : LOG_WARN;
    if (j->outcome == OUT_DEFER && res == 1) lvl = LOG_DEBUG; /* routine: a rate limit's wait */
    char ebuf[OUTCOME_ERROR_LOG_BUF];
    if (j->error && j->outcome != OUT_ACK)
        log_msg(lvl, &j->log, "job %s: %s", outcome_word(j->outcome, res),
                outcome_error_for_log(j->error, ebuf));
    else
        log_msg(lvl, &j->log, "job %s", outcome_word(j->outcome, res));
}

static void on_reported(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    lease_batch_t *b = arg;
    outbox_t *o = b->owner;
    o->inflight--;
    int ok = r && ops_results(r, (size_t)b->n) == 0;
    if (r && !ok)
        log_error("reporting outcomes failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    for (int i = 0; i < b->n; i++) {
        job_t *j = lease_batch_job(o->lease, b, i);
        if (!j) continue;
        j->sent = 0;
        if (!ok) {
            /* Kept, in the journal too, and sent again once Redis is back. */
            if (!j->journaled) lease_journal_outcome(o->lease, j);
            continue;
        }
        int again = 0;
        long long res = ops_outcome_answer(r->element[i]->integer, &again);
        /* Applied before (the reply was lost when the connection dropped,
         * and the journal sent it again): it stands, with its reply. */
        if (again) log_msg(LOG_INFO, &j->log, "outcome already applied before a reconnect");
        confirmed(o, j, res);
        lease_retire(o->lease, j);
    }
    lease_batch_free(b);
    o->cbs.kick(o->cbs.arg);
}

/* ---- sending ---- */

static void add_args(const outbox_t *o, proto_argv_t *a, job_t *j)
{
    (void)o;
    pthread_mutex_lock(&j->mu);
    switch (j->outcome) {
    case OUT_ACK:
        ops_ack_add(a, j->id, j->token, j->result);
        break;
    case OUT_RELEASE:
        ops_release_add(a, j->id, j->token, j->checkpoint, j->progress);
        break;
    case OUT_DEFER:
        ops_defer_add(a, j->id, j->token, j->retry_ms, j->error ? j->error : "deferred",
                      j->defer_bound);
        break;
    default:
        ops_fail_add(a, j->id, j->token, j->error ? j->error : "failed",
                     j->outcome == OUT_RETRY      ? j->retry_ms
                     : j->outcome == OUT_CANCELED ? OPS_FAIL_CANCELED
                                                  : OPS_FAIL_DEAD,
                     max_attempts(j)); /* the handler's, for a job that sets none */
    }
    pthread_mutex_unlock(&j->mu);
}

static void on_ckpt_sent(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

/* A failed attempt's newest checkpoint goes to Redis just before its
 * failure (same connection, so in that order): the retry resumes from it,
 * and fail.lua's poison check sees whether the attempt made progress. Best
 * effort: the checkpoint is journaled already. */
static void send_fail_checkpoints(outbox_t *o, int qi)
{
    proto_argv_t a;
    proto_argv_init(&a);
    int n = 0;
    for (job_t *j = o->lease->head; j; j = j->next) {
        if (j->qidx != qi || j->sent || j->outcome == OUT_NONE || j->outcome == OUT_DROP ||
            outcome_script(j->outcome) != PROTO_FAIL)
            continue;
        pthread_mutex_lock(&j->mu);
        if (j->ckpt_dirty && j->checkpoint) {
            ops_checkpoint_add(&a, j->id, j->token, j->checkpoint, j->progress);
            j->ckpt_dirty = 0;
            n++;
        }
        pthread_mutex_unlock(&j->mu);
    }
    if (n) rq_script(o->rq, PROTO_CHECKPOINT, qname(o, qi), &a, on_ckpt_sent, NULL);
    proto_argv_free(&a);
}

/* One call with queue qi's unsent outcomes of script s. */
static void flush_one(outbox_t *o, int qi, proto_script_t s)
{
    lease_batch_t *b = NULL;
    proto_argv_t a;
    proto_argv_init(&a);
    if (s == PROTO_FAIL) send_fail_checkpoints(o, qi);
    for (job_t *j = o->lease->head; j; j = j->next) {
        if (j->qidx != qi || j->sent || j->outcome == OUT_NONE || outcome_script(j->outcome) != s)
            continue;
        if (!b) {
            if (!(b = lease_batch_new(o, qi, s, OUTBOX_BATCH_MAX))) break; /* next flush */
            if (s == PROTO_FAIL)
                ops_fail_begin(&a, o->cfg->ttl_dead_ms, o->cfg->no_progress_attempts);
            if (s == PROTO_DEFER) ops_defer_begin(&a, o->cfg->ttl_dead_ms);
            if (s == PROTO_RELEASE) ops_release_begin(&a, o->cfg->ttl_dead_ms);
        }
        add_args(o, &a, j);
        lease_batch_add(b, j);
        j->sent = 1;
        if (b->n == OUTBOX_BATCH_MAX) break;
    }
    if (b) {
        o->inflight++;
        if (s == PROTO_ACK) o->stats->ack_calls++;
        if (rq_script(o->rq, s, qname(o, qi), &a, on_reported, b) < 0) {
            o->inflight--;
            for (int i = 0; i < b->n; i++) {
                job_t *j = lease_batch_job(o->lease, b, i);
                if (j) j->sent = 0;
            }
            lease_batch_free(b);
        }
    }
    proto_argv_free(&a);
}

void outbox_flush(outbox_t *o)
{
    if (o->inflight || !rq_ready(o->rq)) return;
    static const proto_script_t scripts[] = {PROTO_ACK, PROTO_FAIL, PROTO_RELEASE, PROTO_DEFER};
    for (int qi = 0; qi < o->cfg->nqueues; qi++)
        for (int s = 0; s < 4; s++)
            flush_one(o, qi, scripts[s]);
}
