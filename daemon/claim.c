/* claim.c - see claim.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "keys.h"
#include "log.h"
#include "ops.h"

#define SCHED_MIN_MS 10 /* clocks disagree: never look again sooner than this */

/* What a claim call must remember for its reply. */
typedef struct {
    claim_t *c;
    int qidx;
    int asked;
    unsigned wakes; /* the queue's wake count when the claim went out */
    unsigned epoch; /* claim_t's epoch when it went out */
} claim_req_t;

static const char *qname(const claim_t *c, int qidx)
{
    return c->cfg->queues[qidx].name;
}

int claim_pick(const config_queue_t *cq, claim_queue_t *q, int n)
{
    int best = -1, total = 0;
    for (int i = 0; i < n; i++) {
        if (q[i].empty || q[i].down ||
            (cq[i].limit && q[i].in_flight + q[i].reserved >= cq[i].limit))
            continue;
        q[i].current += cq[i].weight;
        total += cq[i].weight;
        if (best < 0 || q[i].current > q[best].current) best = i;
    }
    if (best >= 0) q[best].current -= total;
    return best;
}

static void on_sched(uv_timer_t *t);

void claim_init(claim_t *c, uv_loop_t *loop, const config_t *cfg, rq_t *rq, lease_t *lease,
                stats_t *stats, const claim_cbs_t *cbs)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    c->rq = rq;
    c->lease = lease;
    c->stats = stats;
    c->cbs = *cbs;
    uv_timer_init(loop, &c->sched_timer);
    c->sched_timer.data = c;
}

/* ---- scheduled jobs coming due ---- */

/* Arms the timer for the soonest scheduled job of a queue that came back
 * empty (compute the next deadline; no scan on a tick). */
static void arm_sched(claim_t *c)
{
    int64_t due = 0;
    for (int i = 0; i < c->cfg->nqueues; i++) {
        const claim_queue_t *q = &c->queues[i];
        if (q->empty && q->next_sched_ms && (!due || q->next_sched_ms < due))
            due = q->next_sched_ms;
    }
    if (!due) {
        uv_timer_stop(&c->sched_timer);
        return;
    }
    int64_t delay = due - jobd_now_ms();
    uv_timer_start(&c->sched_timer, on_sched,
                   (uint64_t)(delay > SCHED_MIN_MS ? delay : SCHED_MIN_MS), 0);
}

static void on_sched(uv_timer_t *t)
{
    claim_t *c = t->data;
    int64_t now = jobd_now_ms();
    int any = 0;
    for (int i = 0; i < c->cfg->nqueues; i++) {
        claim_queue_t *q = &c->queues[i];
        if (q->empty && q->next_sched_ms && now >= q->next_sched_ms) {
            q->empty = 0;
            any = 1;
        }
    }
    arm_sched(c);
    if (any) c->cbs.kick(c->cbs.arg);
}

/* ---- claiming ---- */

void claim_note_garbage(claim_t *c, int qidx, const redisReply *set_aside, const char *where)
{
    ops_note_t n;
    for (size_t i = 0; i < ops_notes(set_aside); i++) {
        if (ops_note(set_aside, i, &n) < 0) continue;
        /* The id may be garbage too: at most 200 bytes of it in the log. */
        char idbuf[201];
        snprintf(idbuf, sizeof idbuf, "%.*s", (int)(n.id_len < 200 ? n.id_len : 200), n.id);
        log_job_t lj = {.job_id = idbuf, .queue = qname(c, qidx)};
        if (n.dead) {
            c->garbage[qidx].garbage_dead++;
            log_msg(LOG_WARN, &lj, "job dead without running (%s): %s", where, n.why);
        } else {
            c->garbage[qidx].garbage_dropped++;
            log_msg(LOG_WARN, &lj, "dropped a queue entry with no usable job record (%s): %s",
                    where, n.why);
        }
    }
}

/* A job_t for claimed job e of queue qidx (new), or NULL on out-of-memory. */
static job_t *new_job(claim_t *c, int qidx, const ops_claimed_t *e)
{
    job_t *j = job_new();
    if (!j) return NULL;
    j->qidx = qidx;
    snprintf(j->id, sizeof j->id, "%.*s", (int)e->id_len, e->id);
    snprintf(j->token, sizeof j->token, "%.*s", (int)e->token_len, e->token);
    j->attempt = (int)e->attempt;
    j->raw_env = strndup(e->envelope, e->envelope_len);
    char *parked = lease_take_parked(c->lease, j->id);
    if (parked) {
        /* Newer than what Redis gave: it never reached Redis. */
        j->resume = json_loads(parked, JSON_DECODE_ANY, NULL);
        j->checkpoint = parked;
        log_msg(LOG_INFO, &(log_job_t){.job_id = j->id, .queue = qname(c, qidx)},
                "resuming from the local journal's checkpoint, newer than Redis's");
    } else if (e->checkpoint_len) {
        j->resume = json_loadb(e->checkpoint, e->checkpoint_len, JSON_DECODE_ANY, NULL);
        j->checkpoint = strndup(e->checkpoint, e->checkpoint_len);
    }
    if (!j->raw_env || (e->checkpoint_len && !j->checkpoint)) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void on_claimed(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    claim_req_t *cr = arg;
    claim_t *c = cr->c;
    claim_queue_t *q = &c->queues[cr->qidx];
    if (cr->epoch == c->epoch) {
        c->inflight--;
        c->reserved -= cr->asked;
        q->reserved -= cr->asked;
    }
    ops_claim_t cl;
    if (ops_claim_reply(r, &cl) < 0) {
        if (r)
            log_error("claim on queue %s failed: %s", qname(c, cr->qidx),
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        free(cr);
        return; /* reconnect or the next pump retries */
    }
    q->next_sched_ms = cl.next_ms > 0 ? cl.next_ms : 0;
    claim_note_garbage(c, cr->qidx, cl.set_aside, "claim");
    /* A short claim means empty, unless a wake-up arrived (on the other
     * connection) while the claim was in flight: then a job may have come
     * after the claim looked, and the queue must be tried again. */
    int woken = q->wakes != cr->wakes;
    q->empty = (int)cl.n < cr->asked && !woken;
    q->exhausted = q->empty && cl.next_ms < 0;
    c->stats->claimed += (long long)cl.n;
    for (size_t i = 0; i < cl.n; i++) {
        ops_claimed_t e;
        ops_claim_job(&cl, i, &e);
        job_t *j = new_job(c, cr->qidx, &e);
        if (!j) {
            log_error("out of memory for claimed job %.*s of queue %s: left to lease expiry",
                      (int)e.id_len, e.id, qname(c, cr->qidx));
            continue;
        }
        lease_add(c->lease, j);
        c->running++;
        q->in_flight++;
        c->cbs.on_job(c->cbs.arg, j);
    }
    free(cr);
    arm_sched(c);
    c->cbs.kick(c->cbs.arg);
}

void claim_more(claim_t *c)
{
    if (c->inflight >= CLAIM_INFLIGHT_MAX || !rq_ready(c->rq)) return;
    int free_slots = c->cfg->concurrency - c->running - c->reserved;
    if (free_slots <= 0) return;
    for (int i = 0; i < c->cfg->nqueues; i++)
        c->queues[i].down = !rq_ready_for(c->rq, qname(c, i));
    int qi = claim_pick(c->cfg->queues, c->queues, c->cfg->nqueues);
    if (qi < 0) return;
    int n = free_slots < CLAIM_MAX ? free_slots : CLAIM_MAX;
    const config_queue_t *cq = &c->cfg->queues[qi];
    claim_queue_t *q = &c->queues[qi];
    if (cq->limit && cq->limit - q->in_flight - q->reserved < n)
        n = cq->limit - q->in_flight - q->reserved;
    claim_req_t *cr = malloc(sizeof *cr);
    if (!cr) return; /* the next pump tries again */
    *cr = (claim_req_t){c, qi, n, q->wakes, c->epoch};
    proto_argv_t a;
    proto_argv_init(&a);
    /* Bigger envelopes go dead unread. */
    ops_claim_args(&a, c->cfg->worker_id, c->cfg->lease_ms, n, JOBD_ENVELOPE_MAX,
                   c->cfg->ttl_dead_ms);
    c->inflight++;
    c->reserved += n;
    q->reserved += n;
    c->stats->claim_calls++;
    if (rq_script(c->rq, PROTO_CLAIM, cq->name, &a, on_claimed, cr) < 0) {
        c->inflight--;
        c->reserved -= n;
        q->reserved -= n;
        free(cr);
    }
    proto_argv_free(&a);
}

void claim_slot_free(claim_t *c, int qidx)
{
    c->running--;
    c->queues[qidx].in_flight--;
}

void claim_requeued(claim_t *c, int qidx, job_outcome_t o, int64_t retry_ms)
{
    claim_queue_t *q = &c->queues[qidx];
    q->exhausted = 0;
    if (o == OUT_RELEASE) {
        q->empty = 0;
    } else {
        int64_t at = jobd_now_ms() + retry_ms;
        if (!q->next_sched_ms || q->next_sched_ms > at) q->next_sched_ms = at;
        arm_sched(c);
    }
}

void claim_look_again(claim_t *c)
{
    for (int i = 0; i < c->cfg->nqueues; i++)
        c->queues[i].empty = 0;
}

void claim_wake(claim_t *c, const char *channel)
{
    for (int i = 0; i < c->cfg->nqueues; i++) {
        char ch[KEYS_MAX];
        keys_queue_key(ch, c->cfg->prefix, qname(c, i), "wake");
        if (strcmp(ch, channel) == 0) {
            c->queues[i].empty = 0;
            c->queues[i].exhausted = 0;
            c->queues[i].wakes++;
        }
    }
}

void claim_redis_down(claim_t *c)
{
    /* The calls out get no jobs now; their replies, if any, count no more. */
    c->epoch++;
    c->inflight = c->reserved = 0;
    for (int i = 0; i < c->cfg->nqueues; i++)
        c->queues[i].reserved = 0;
}

int claim_exhausted(const claim_t *c)
{
    for (int i = 0; i < c->cfg->nqueues; i++)
        if (!c->queues[i].exhausted) return 0;
    return 1;
}

/* ---- --once: is anything still queued, scheduled or active? ---- */

/* A crashed worker's leases count as active: the reaper will hand them
 * back. One check in flight at a time. */
typedef struct {
    claim_t *c;
    int pending, busy;
} check_req_t;

static void on_checked(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    check_req_t *o = arg;
    long long depth[6];
    if (ops_stats_reply(r, depth) < 0 || depth[0] || depth[1] || depth[2]) o->busy = 1;
    if (--o->pending > 0) return;
    claim_t *c = o->c;
    int busy = o->busy;
    free(o);
    c->checking = 0;
    c->cbs.on_checked(c->cbs.arg, !busy);
}

void claim_check_empty(claim_t *c)
{
    if (c->checking) return;
    check_req_t *o = calloc(1, sizeof *o);
    if (!o) return; /* the next pump asks again */
    o->c = c;
    c->checking = 1;
    for (int qi = 0; qi < c->cfg->nqueues; qi++) {
        proto_argv_t a;
        proto_argv_init(&a);
        o->pending++;
        if (rq_script(c->rq, PROTO_STATS, qname(c, qi), &a, on_checked, o) < 0) {
            o->pending--;
            o->busy = 1;
        }
        proto_argv_free(&a);
    }
    if (o->pending == 0) {
        c->checking = 0;
        free(o);
    }
}

void claim_close(claim_t *c)
{
    uv_close((uv_handle_t *)&c->sched_timer, NULL);
}
