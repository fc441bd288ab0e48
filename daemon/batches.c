/* batches.c - see batches.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batches.h"
#include "envelope.h"
#include "keys.h"
#include "log.h"

#define NAMES_PER_ROUND 32
#define SUMMARY_IDS_MAX 20000 /* ids in a completion job's payload (about 760 KB) */

/* One batch being looked at. */
typedef struct {
    batches_t *b;
    char name[129];
    char from[129]; /* the queue whose done set named it */
    json_t *queues; /* the batch's queues (new ref) */
    char type[129], cq[129];
    int pending, not_done, failed;
    long long total, succeeded, dead, canceled;
    json_t *ids; /* new ref */
} check_t;

static void check_free(check_t *k)
{
    k->b->inflight--;
    json_decref(k->queues);
    json_decref(k->ids);
    free(k);
}

static void on_ignore(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

static void command(batches_t *b, int argc, const char **argv, rq_reply_cb cb, void *arg)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (rq_command(b->rq, argc, argv, lens, cb ? cb : on_ignore, arg) < 0 && cb)
        cb(b->rq, NULL, arg);
}

static void part_key(const check_t *k, const char *queue, const char *more, char *out)
{
    char suffix[200];
    snprintf(suffix, sizeof suffix, "batch:%s%s", k->name, more);
    keys_queue_key(out, k->b->cfg->prefix, queue, suffix);
}

static void record_key(const check_t *k, char *out)
{
    char suffix[200];
    snprintf(suffix, sizeof suffix, "batch:%s", k->name);
    keys_global(out, k->b->cfg->prefix, suffix);
}

/* The batch is complete and its completion (if any) enqueued: no part
 * needs looking at again. */
static void forget(check_t *k, const char *completion)
{
    size_t i;
    json_t *q;
    json_array_foreach(k->queues, i, q)
    {
        char key[KEYS_MAX];
        keys_queue_key(key, k->b->cfg->prefix, json_string_value(q), "batches:done");
        command(k->b, 3, (const char *[]){"SREM", key, k->name}, NULL, NULL);
    }
    char rk[KEYS_MAX], now[32];
    record_key(k, rk);
    snprintf(now, sizeof now, "%lld", (long long)jobd_now_ms());
    command(k->b, 6, (const char *[]){"HSET", rk, "completed_at", now, "completion", completion},
            NULL, NULL);
}

static void on_completed(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    check_t *k = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_STRING) {
        if (r->element[0]->integer == 1) {
            k->b->completed++;
            log_msg(LOG_INFO, &(log_job_t){.job_id = r->element[1]->str, .queue = k->cq},
                    "batch %s complete (%lld jobs: %lld succeeded, %lld dead, %lld canceled): "
                    "completion job enqueued",
                    k->name, k->total, k->succeeded, k->dead, k->canceled);
        }
        forget(k, r->element[1]->str);
    } else if (r) {
        log_error("batch %s: completion failed: %s", k->name,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    check_free(k);
}

/* Every part is done: enqueue the completion job (complete.lua), or just
 * mark the batch complete if it asked for none. */
static void complete(check_t *k)
{
    if (!*k->type) {
        log_info("batch %s complete (%lld jobs: %lld succeeded, %lld dead, %lld canceled)", k->name,
                 k->total, k->succeeded, k->dead, k->canceled);
        forget(k, "");
        check_free(k);
        return;
    }
    json_t *payload =
        json_pack("{s:s, s:I, s:{s:I, s:I, s:I}, s:O, s:b}", "batch", k->name, "total",
                  (json_int_t)k->total, "counts", "succeeded", (json_int_t)k->succeeded, "dead",
                  (json_int_t)k->dead, "canceled", (json_int_t)k->canceled, "ids", k->ids,
                  "ids_truncated", (json_int_t)json_array_size(k->ids) < k->total);
    jobd_job_spec_t spec;
    jobd_job_spec_init(&spec);
    spec.queue = k->cq;
    spec.type = k->type;
    spec.payload = payload;
    char id[JOBD_ID_LEN + 1], err[256], *env = NULL;
    size_t len = 0;
    jobd_id_new(id);
    int rc = payload ? envelope_encode(&spec, id, jobd_now_ms(), (size_t)JOBD_PAYLOAD_MAX, &env,
                                       &len, err, sizeof err)
                     : -1;
    json_decref(payload);
    if (rc < 0) {
        log_error("batch %s: cannot build its completion job: %s", k->name,
                  payload ? err : "out of memory");
        check_free(k);
        return;
    }
    proto_argv_t a;
    proto_argv_init(&a);
    proto_argv_adds(&a, k->name);
    proto_argv_adds(&a, id);
    proto_argv_add(&a, env, len);
    proto_argv_addll(&a, JOBD_DEFAULT_PRIORITY);
    proto_argv_addll(&a, 0);
    free(env);
    if (rq_script(k->b->rq, PROTO_COMPLETE, k->cq, &a, on_completed, k) < 0) check_free(k);
    proto_argv_free(&a);
}

static void part_done(check_t *k)
{
    if (--k->pending > 0) return;
    if (k->failed || k->not_done)
        check_free(k); /* not yet: another part's done set names it when it is */
    else
        complete(k);
}

/* HMGET part left succeeded dead canceled */
static void on_part(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    check_t *k = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        k->failed = 1;
    } else {
        long long v[4] = {0};
        for (int i = 0; i < 4; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                v[i] = strtoll(r->element[i]->str, NULL, 10);
        /* A part with no record at all (left absent) is not done. */
        if (r->element[0]->type != REDIS_REPLY_STRING || v[0] > 0) k->not_done = 1;
        k->succeeded += v[1];
        k->dead += v[2];
        k->canceled += v[3];
    }
    part_done(k);
}

/* LRANGE part ids */
static void on_ids(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    check_t *k = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        k->failed = 1;
    } else {
        for (size_t i = 0; i < r->elements; i++) {
            k->total++;
            if (json_array_size(k->ids) < SUMMARY_IDS_MAX &&
                r->element[i]->type == REDIS_REPLY_STRING)
                json_array_append_new(k->ids, json_stringn(r->element[i]->str, r->element[i]->len));
        }
    }
    part_done(k);
}

/* HMGET record queues on_complete on_complete_queue */
static void on_record(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    check_t *k = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        check_free(k);
        return;
    }
    json_t *queues =
        r->element[0]->type == REDIS_REPLY_STRING ? json_loads(r->element[0]->str, 0, NULL) : NULL;
    if (!json_is_array(queues) || r->element[2]->type != REDIS_REPLY_STRING) {
        /* A part whose batch has no record (deleted by hand): nothing to
         * complete; forget it here. */
        log_warn("batch %s: its part in queue %s is done but the batch has no record; "
                 "no completion",
                 k->name, k->from);
        json_decref(queues);
        char key[KEYS_MAX];
        keys_queue_key(key, k->b->cfg->prefix, k->from, "batches:done");
        command(k->b, 3, (const char *[]){"SREM", key, k->name}, NULL, NULL);
        check_free(k);
        return;
    }
    k->queues = queues;
    snprintf(k->type, sizeof k->type, "%s",
             r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    snprintf(k->cq, sizeof k->cq, "%s", r->element[2]->str);
    size_t i;
    json_t *q;
    k->pending = 1; /* held until every read is out */
    json_array_foreach(queues, i, q)
    {
        if (!json_is_string(q)) continue;
        char pk[KEYS_MAX], ik[KEYS_MAX];
        part_key(k, json_string_value(q), "", pk);
        part_key(k, json_string_value(q), ":ids", ik);
        k->pending += 2;
        command(k->b, 6, (const char *[]){"HMGET", pk, "left", "succeeded", "dead", "canceled"},
                on_part, k);
        command(k->b, 4, (const char *[]){"LRANGE", ik, "0", "-1"}, on_ids, k);
    }
    part_done(k);
}

typedef struct {
    batches_t *b;
    int qidx;
} members_req_t;

static void on_members(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    members_req_t *m = arg;
    batches_t *b = m->b;
    const char *queue = b->cfg->queues[m->qidx].name;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && i < NAMES_PER_ROUND;
         i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING || r->element[i]->len > 128) continue;
        check_t *k = calloc(1, sizeof *k);
        if (!k || !(k->ids = json_array())) {
            free(k);
            break;
        }
        k->b = b;
        b->inflight++;
        snprintf(k->name, sizeof k->name, "%s", r->element[i]->str);
        snprintf(k->from, sizeof k->from, "%s", queue);
        char rk[KEYS_MAX];
        record_key(k, rk);
        command(b, 5, (const char *[]){"HMGET", rk, "queues", "on_complete", "on_complete_queue"},
                on_record, k);
    }
    b->inflight--;
    free(m);
}

void batches_init(batches_t *b, const config_t *cfg, rq_t *rq)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->rq = rq;
}

void batches_check(batches_t *b)
{
    if (b->inflight || !rq_ready(b->rq)) return;
    for (int qi = 0; qi < b->cfg->nqueues; qi++) {
        members_req_t *m = malloc(sizeof *m);
        if (!m) return;
        *m = (members_req_t){b, qi};
        char key[KEYS_MAX];
        keys_queue_key(key, b->cfg->prefix, b->cfg->queues[qi].name, "batches:done");
        b->inflight++;
        command(b, 2, (const char *[]){"SMEMBERS", key}, on_members, m);
    }
}
