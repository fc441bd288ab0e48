/* lease.c - see lease.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "log.h"
#include "ops.h"

int (*lease_commit_fn)(journal_t *jn) = journal_commit;

#define YOUNG_MS 1000   /* held this long, a job is worth resuming after a crash */
#define MIN_BUCKETS 64u /* a power of two */

static const char *qname(const lease_t *l, int qidx)
{
    return l->cfg->queues[qidx].name;
}

/* ---- the hash by id ---- */

static size_t hash_id(const char *id)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static job_t **bucket(const lease_t *l, const char *id)
{
    return &l->buckets[hash_id(id) & (l->nbuckets - 1)];
}

/* Doubles the table before it would hold more jobs than buckets. On
 * out-of-memory the chains just grow longer: slower, still right. */
static void maybe_grow(lease_t *l)
{
    if ((size_t)l->n + 1 <= l->nbuckets) return;
    job_t **nb = calloc(l->nbuckets * 2, sizeof(job_t *));
    if (!nb) return;
    free(l->buckets);
    l->buckets = nb;
    l->nbuckets *= 2;
    for (job_t *j = l->head; j; j = j->next) {
        job_t **b = bucket(l, j->id);
        j->hnext = *b;
        *b = j;
    }
}

job_t *lease_find(const lease_t *l, const char *id, const char *token)
{
    for (job_t *j = *bucket(l, id); j; j = j->hnext)
        if (strcmp(j->id, id) == 0 && strcmp(j->token, token) == 0) return j;
    return NULL;
}

/* ---- young jobs: journaled once held for YOUNG_MS ---- */

static void young_remove(lease_t *l, job_t *j)
{
    if (!j->young) return;
    if (j->young_prev)
        j->young_prev->young_next = j->young_next;
    else
        l->young_head = j->young_next;
    if (j->young_next)
        j->young_next->young_prev = j->young_prev;
    else
        l->young_tail = j->young_prev;
    j->young_prev = j->young_next = NULL;
    j->young = 0;
}

static void on_young(uv_timer_t *t);

/* Arms the timer for the oldest young job, unless it is armed already (it
 * may then fire early for a job that left; it re-arms). */
static void young_arm(lease_t *l, int force)
{
    if (!l->young_head || (!force && uv_is_active((uv_handle_t *)&l->young_timer))) return;
    uint64_t due = l->young_head->held_since + YOUNG_MS, now = uv_now(l->loop);
    uv_timer_start(&l->young_timer, on_young, due > now ? due - now : 0, 0);
}

static void young_add(lease_t *l, job_t *j)
{
    if (!l->jn || j->journaled || j->young) return;
    j->young = 1;
    j->young_next = NULL;
    j->young_prev = l->young_tail;
    if (l->young_tail)
        l->young_tail->young_next = j;
    else
        l->young_head = j;
    l->young_tail = j;
    young_arm(l, 0);
}

static void on_young(uv_timer_t *t)
{
    lease_t *l = t->data;
    uint64_t now = uv_now(l->loop);
    int wrote = 0;
    while (l->young_head && now - l->young_head->held_since >= YOUNG_MS) {
        job_t *j = l->young_head;
        young_remove(l, j);
        if (j->running) {
            lease_journal(l, j);
            wrote = 1;
        }
    }
    young_arm(l, 1);
    if (wrote) l->cbs.kick(l->cbs.arg); /* the pump commits it */
}

/* ---- holding and letting go ---- */

static void on_ckpt_async(uv_async_t *a);
static void on_sync(uv_timer_t *t);

int lease_init(lease_t *l, uv_loop_t *loop, const config_t *cfg, rq_t *rq, journal_t *jn,
               stats_t *stats, const lease_cbs_t *cbs)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->cfg = cfg;
    l->rq = rq;
    l->jn = jn;
    l->stats = stats;
    l->cbs = *cbs;
    l->buckets = calloc(MIN_BUCKETS, sizeof(job_t *));
    if (!l->buckets) return JOBD_ENOMEM;
    l->nbuckets = MIN_BUCKETS;
    uv_timer_init(loop, &l->young_timer);
    uv_timer_init(loop, &l->sync_timer);
    uv_async_init(loop, &l->ckpt_async, on_ckpt_async);
    l->young_timer.data = l->sync_timer.data = l->ckpt_async.data = l;
    return 0;
}

void lease_start(lease_t *l)
{
    uint64_t every = (uint64_t)l->cfg->sync_interval_ms;
    uv_timer_start(&l->sync_timer, on_sync, every, every);
}

void lease_add(lease_t *l, job_t *j)
{
    maybe_grow(l); /* before j is in the list: the rehash walks the list */
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
    job_t **b = bucket(l, j->id);
    j->hnext = *b;
    *b = j;
    j->held_since = uv_now(l->loop);
    young_add(l, j);
}

static void retire(lease_t *l, job_t *j, int forget)
{
    if (j->retired) return;
    young_remove(l, j);
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    job_t **p = bucket(l, j->id);
    while (*p && *p != j)
        p = &(*p)->hnext;
    if (*p) *p = j->hnext;
    l->n--;
    if (forget && j->journaled && l->jn) journal_delete(l->jn, j->id);
    if (forget) {
        j->journaled = ROW_NONE;
        procs_clear(journal_procs(l->jn), j->proc_slot);
        j->proc_slot = -1;
    }
    j->retired = 1;
    j->prev = NULL;
    j->next = l->retired;
    l->retired = j;
}

void lease_retire(lease_t *l, job_t *j)
{
    retire(l, j, 1);
}

void lease_retire_idle(lease_t *l)
{
    /* The journal keeps their rows: the next jobd on this state dir reports
     * their outcomes (Guarantee 6). */
    for (job_t *j = l->head, *next; j; j = next) {
        next = j->next;
        if (!j->running) retire(l, j, 0);
    }
}

void lease_free_retired(lease_t *l)
{
    job_t **p = &l->retired;
    while (*p) {
        job_t *j = *p;
        if (j->timer_open) { /* its timer's close callback has not run yet */
            p = &j->next;
            continue;
        }
        *p = j->next;
        job_free(j);
    }
}

void lease_count_lost(lease_t *l, job_t *j)
{
    /* Extend, checkpoint sync and outcome report may all find the same
     * lost lease; it counts once. */
    if (j->lease_lost) return;
    j->lease_lost = 1;
    l->stats->lease_lost++;
}

/* ---- the journal ---- */

void lease_journal(lease_t *l, job_t *j)
{
    if (j->journaled || !l->jn) return;
    if (journal_put_held(l->jn, j->id, qname(l, j->qidx), j->token, j->attempt, j->started_ms) < 0)
        return;
    j->journaled = ROW_WRITTEN;
    young_remove(l, j);
}

int lease_record_proc(lease_t *l, job_t *j, int pid, int64_t start)
{
    procs_rec_t r = {.pid = pid, .start = start, .attempt = j->attempt};
    r.claimed_at = j->started_ms;
    snprintf(r.id, sizeof r.id, "%s", j->id);
    snprintf(r.token, sizeof r.token, "%s", j->token);
    snprintf(r.queue, sizeof r.queue, "%s", qname(l, j->qidx));
    snprintf(r.type, sizeof r.type, "%s", j->env.type ? j->env.type : "");
    int slot = l->jn ? procs_put(journal_procs(l->jn), j->proc_slot, &r) : -1;
    if (slot < 0) return -1;
    j->proc_slot = slot;
    return 0;
}

void lease_journal_checkpoint(lease_t *l, job_t *j)
{
    if (!l->jn) return;
    pthread_mutex_lock(&j->mu);
    int64_t seq = j->ckpt_seq;
    char *text = NULL;
    int newer = seq > j->ckpt_journaled;
    int oom = newer && j->checkpoint && !(text = strdup(j->checkpoint));
    double progress = j->progress;
    pthread_mutex_unlock(&j->mu);
    if (!newer || oom) return; /* out of memory: the next checkpoint or outcome tries again */
    lease_journal(l, j);
    if (journal_put_checkpoint(l->jn, j->id, seq, text, progress) == 0) j->ckpt_journaled = seq;
    free(text);
}

void lease_journal_outcome(lease_t *l, job_t *j)
{
    if (!l->jn) return;
    lease_journal(l, j);
    pthread_mutex_lock(&j->mu);
    journal_put_outcome(l->jn, j->id, outcome_name(j->outcome), j->result, j->error, j->retry_ms,
                        j->checkpoint, j->progress);
    pthread_mutex_unlock(&j->mu);
}

int lease_park(lease_t *l, job_t *j)
{
    if (!j->journaled || !l->jn || journal_park(l->jn, j->id) != 1) return 0;
    j->journaled = ROW_NONE; /* the row is the parked checkpoint's now */
    l->parked++;
    return 1;
}

char *lease_take_parked(lease_t *l, const char *id)
{
    if (!l->parked || !l->jn) return NULL;
    char *text = journal_take_parked(l->jn, id);
    if (text) l->parked--;
    return text;
}

/* Tells j's waiting built-in how its checkpoints' commit went. */
static void settle(lease_t *l, job_t *j, int ok)
{
    if (j->ckpt_journaled > j->ckpt_durable) {
        pthread_mutex_lock(&j->mu);
        if (ok)
            j->ckpt_durable = j->ckpt_journaled;
        else
            j->ckpt_failed = j->ckpt_journaled;
        pthread_mutex_unlock(&j->mu);
        /* After the unlock: the woken handler does not wake only to wait
         * for the mutex we hold (a context switch each, 64 per commit). */
        pthread_cond_broadcast(&j->cv);
        if (!ok) j->ckpt_journaled = j->ckpt_durable; /* written again with the next one */
    }
    if (j->journaled == ROW_WRITTEN) {
        j->journaled = ok ? ROW_COMMITTED : ROW_NONE;
        if (!ok && j->running) young_add(l, j); /* its row is written again */
    }
}

void lease_commit(lease_t *l)
{
    if (!journal_dirty(l->jn)) return;
    int ok = lease_commit_fn(l->jn) == 0;
    if (!ok)
        log_error("journal commit failed: checkpoints waiting on it are refused, held leases "
                  "are journaled again");
    for (job_t *j = l->head; j; j = j->next)
        settle(l, j, ok);
}

uv_async_t *lease_ckpt_async(lease_t *l)
{
    return l->jn ? &l->ckpt_async : NULL;
}

static void on_ckpt_async(uv_async_t *a)
{
    lease_t *l = a->data;
    /* Only the jobs with a newer checkpoint take their lock: 64 built-ins
     * checkpointing flat out keep their own locks busy. */
    for (job_t *j = l->head; j; j = j->next)
        if (j->running &&
            atomic_load_explicit(&j->ckpt_seq, memory_order_relaxed) > j->ckpt_journaled)
            lease_journal_checkpoint(l, j);
    lease_commit(l);
}

/* ---- batches ---- */

lease_batch_t *lease_batch_new(void *owner, int qidx, proto_script_t script, int cap)
{
    if (cap < 1) cap = 1;
    size_t ids = (size_t)cap * sizeof(char[JOBD_ID_LEN + 1]);
    size_t tokens = (size_t)cap * sizeof(char[JOB_TOKEN_MAX]);
    lease_batch_t *b = malloc(sizeof *b + ids + tokens);
    if (!b) return NULL;
    *b = (lease_batch_t){owner, qidx, script, 0, cap, NULL, NULL};
    b->ids = (void *)(b + 1);
    b->tokens = (void *)((char *)(b + 1) + ids);
    return b;
}

void lease_batch_add(lease_batch_t *b, const job_t *j)
{
    memcpy(b->ids[b->n], j->id, sizeof j->id);
    memcpy(b->tokens[b->n], j->token, sizeof j->token);
    b->n++;
}

job_t *lease_batch_job(const lease_t *l, const lease_batch_t *b, int i)
{
    return lease_find(l, b->ids[i], b->tokens[i]);
}

void lease_batch_free(lease_batch_t *b)
{
    free(b);
}

/* ---- extending leases ---- */

static void on_extended(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    lease_batch_t *b = arg;
    lease_t *l = b->owner;
    for (int i = 0; ops_results(r, (size_t)b->n) == 0 && i < b->n; i++) {
        job_t *j = lease_batch_job(l, b, i);
        long long res = r->element[i]->integer;
        if (!j || res == OPS_EXTEND_OK) continue;
        if (res == OPS_EXTEND_LOST) {
            /* Guarantee 2: fenced off. Stop the job here; report nothing. */
            if (j->sent) continue;       /* its outcome's reply will say so, and count it */
            if (j->lease_lost) continue; /* found out already, and stopped */
            lease_count_lost(l, j);
            log_msg(LOG_WARN, &j->log,
                    "lease lost: another worker may hold the job; stopping it here");
            l->cbs.on_lost(l->cbs.arg, j);
        } else if (res == OPS_EXTEND_CANCEL && j->running && j->stop_reason == STOP_NONE) {
            log_msg(LOG_INFO, &j->log, "cancel requested: stopping the handler");
            l->cbs.on_cancel(l->cbs.arg, j);
        }
    }
    lease_batch_free(b);
}

void lease_extend_all(lease_t *l)
{
    for (int qi = 0; qi < l->cfg->nqueues; qi++) {
        lease_batch_t *b = NULL;
        proto_argv_t a;
        proto_argv_init(&a);
        for (job_t *j = l->head; j; j = j->next) {
            if (j->qidx != qi) continue;
            if (!b) {
                if (!(b = lease_batch_new(l, qi, PROTO_EXTEND, l->n))) break;
                ops_extend_begin(&a, l->cfg->lease_ms);
            }
            ops_lease_add(&a, j->id, j->token);
            lease_batch_add(b, j);
        }
        if (b && rq_script(l->rq, PROTO_EXTEND, qname(l, qi), &a, on_extended, b) < 0)
            lease_batch_free(b);
        proto_argv_free(&a);
    }
}

/* ---- syncing checkpoints to Redis (Guarantee 3: within the interval) ---- */

static void on_synced(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    lease_batch_t *b = arg;
    lease_t *l = b->owner;
    if (ops_results(r, (size_t)b->n) == 0) {
        for (int i = 0; i < b->n; i++) {
            job_t *j = lease_batch_job(l, b, i);
            if (j && r->element[i]->integer == 0 && j->running && !j->lease_lost) {
                lease_count_lost(l, j);
                log_msg(LOG_WARN, &j->log, "checkpoint rejected: lease lost; stopping the job");
                l->cbs.on_lost(l->cbs.arg, j);
            }
        }
    } else if (!r) {
        /* Not stored: mark them dirty again for the next sync. */
        for (int i = 0; i < b->n; i++) {
            job_t *j = lease_batch_job(l, b, i);
            if (!j) continue;
            pthread_mutex_lock(&j->mu);
            j->ckpt_dirty = 1;
            pthread_mutex_unlock(&j->mu);
        }
    }
    lease_batch_free(b);
}

/* Adds j's checkpoint to the queue's sync batch if Redis lacks it. */
static void sync_add(lease_t *l, lease_batch_t **b, proto_argv_t *a, job_t *j)
{
    pthread_mutex_lock(&j->mu);
    if (j->ckpt_dirty && (*b || (*b = lease_batch_new(l, j->qidx, PROTO_CHECKPOINT, l->n)))) {
        ops_checkpoint_add(a, j->id, j->token, j->checkpoint, j->progress);
        j->ckpt_dirty = 0;
        lease_batch_add(*b, j);
    }
    pthread_mutex_unlock(&j->mu);
}

static void on_sync(uv_timer_t *t)
{
    lease_t *l = t->data;
    if (!rq_ready(l->rq)) return;
    for (int qi = 0; qi < l->cfg->nqueues; qi++) {
        lease_batch_t *b = NULL;
        proto_argv_t a;
        proto_argv_init(&a);
        for (job_t *j = l->head; j; j = j->next)
            if (j->qidx == qi && j->running) sync_add(l, &b, &a, j);
        if (b && rq_script(l->rq, PROTO_CHECKPOINT, qname(l, qi), &a, on_synced, b) < 0)
            lease_batch_free(b);
        proto_argv_free(&a);
    }
}

/* ---- closing ---- */

void lease_stop_waiters(lease_t *l)
{
    lease_commit(l);
    /* No loop will journal or commit from now on: nobody may wait for it. */
    for (job_t *j = l->head; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        j->ckpt_closing = 1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
}

void lease_close(lease_t *l)
{
    lease_stop_waiters(l);
    uv_close((uv_handle_t *)&l->young_timer, NULL);
    uv_close((uv_handle_t *)&l->sync_timer, NULL);
    uv_close((uv_handle_t *)&l->ckpt_async, NULL);
}

void lease_free(lease_t *l)
{
    for (job_t *j = l->head, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (job_t *j = l->retired, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    l->head = l->tail = l->retired = NULL;
    l->n = 0;
    free(l->buckets);
    l->buckets = NULL;
}
