/* ops.c - see ops.h. */
#include <string.h>

#include "ops.h"

#define CLAIM_SCAN 1000 /* most queue entries claim.lua looks at per call */
#define CLAIM_FIELDS 5  /* values per claimed job */

void ops_claim_args(proto_argv_t *a, const char *worker_id, int64_t lease_ms, long long max,
                    long long envelope_max, int64_t ttl_dead_ms)
{
    proto_argv_adds(a, worker_id);
    proto_argv_addll(a, lease_ms);
    proto_argv_addll(a, max);
    proto_argv_addll(a, CLAIM_SCAN);
    proto_argv_addll(a, envelope_max);
    proto_argv_addll(a, ttl_dead_ms);
}

static int is(const redisReply *r, int type)
{
    return r && r->type == type;
}

int ops_claim_reply(const redisReply *r, ops_claim_t *out)
{
    /* next run_at, what was set aside, then 5 values per claimed job */
    if (!is(r, REDIS_REPLY_ARRAY) || r->elements < 2 || (r->elements - 2) % CLAIM_FIELDS != 0 ||
        !is(r->element[0], REDIS_REPLY_INTEGER) || !is(r->element[1], REDIS_REPLY_ARRAY))
        return -1;
    size_t n = (r->elements - 2) / CLAIM_FIELDS;
    for (size_t i = 0; i < n; i++) {
        redisReply **e = r->element + 2 + CLAIM_FIELDS * i;
        if (!is(e[0], REDIS_REPLY_STRING) || !is(e[1], REDIS_REPLY_STRING) ||
            !is(e[2], REDIS_REPLY_INTEGER) || !is(e[3], REDIS_REPLY_STRING) ||
            !is(e[4], REDIS_REPLY_STRING))
            return -1;
    }
    *out = (ops_claim_t){r->element[0]->integer, r->element[1], n, r};
    return 0;
}

void ops_claim_job(const ops_claim_t *c, size_t i, ops_claimed_t *out)
{
    redisReply **e = c->reply->element + 2 + CLAIM_FIELDS * i;
    *out = (ops_claimed_t){.id = e[0]->str,
                           .id_len = e[0]->len,
                           .token = e[1]->str,
                           .token_len = e[1]->len,
                           .attempt = e[2]->integer,
                           .envelope = e[3]->str,
                           .envelope_len = e[3]->len,
                           .checkpoint = e[4]->str,
                           .checkpoint_len = e[4]->len};
}

size_t ops_notes(const redisReply *set_aside)
{
    return is(set_aside, REDIS_REPLY_ARRAY) ? set_aside->elements / 3 : 0;
}

int ops_note(const redisReply *set_aside, size_t i, ops_note_t *out)
{
    if (i >= ops_notes(set_aside)) return -1;
    const redisReply *what = set_aside->element[3 * i], *id = set_aside->element[3 * i + 1],
                     *why = set_aside->element[3 * i + 2];
    if (!is(what, REDIS_REPLY_STRING) || !is(id, REDIS_REPLY_STRING) ||
        !is(why, REDIS_REPLY_STRING))
        return -1;
    *out = (ops_note_t){strcmp(what->str, "dead") == 0, id->str, why->str, id->len};
    return 0;
}

void ops_extend_begin(proto_argv_t *a, int64_t lease_ms)
{
    proto_argv_addll(a, lease_ms);
}

void ops_lease_add(proto_argv_t *a, const char *id, const char *token)
{
    proto_argv_adds(a, id);
    proto_argv_adds(a, token);
}

void ops_ack_add(proto_argv_t *a, const char *id, const char *token, const char *result)
{
    ops_lease_add(a, id, token);
    proto_argv_adds(a, result);
}

void ops_fail_begin(proto_argv_t *a, int64_t ttl_dead_ms, int no_progress)
{
    proto_argv_addll(a, ttl_dead_ms);
    proto_argv_addll(a, no_progress);
}

void ops_fail_add(proto_argv_t *a, const char *id, const char *token, const char *error,
                  int64_t disposition, int max_attempts)
{
    ops_lease_add(a, id, token);
    proto_argv_adds(a, error);
    proto_argv_addll(a, disposition);
    proto_argv_addll(a, max_attempts);
}

void ops_release_begin(proto_argv_t *a, int64_t ttl_dead_ms)
{
    proto_argv_addll(a, ttl_dead_ms);
}

void ops_defer_begin(proto_argv_t *a, int64_t ttl_dead_ms)
{
    proto_argv_addll(a, ttl_dead_ms);
}

void ops_defer_add(proto_argv_t *a, const char *id, const char *token, int64_t delay_ms,
                   const char *why, int bound)
{
    ops_lease_add(a, id, token);
    proto_argv_addll(a, delay_ms);
    proto_argv_adds(a, why);
    proto_argv_addll(a, bound);
}

void ops_checkpoint_add(proto_argv_t *a, const char *id, const char *token, const char *checkpoint,
                        double progress)
{
    ops_lease_add(a, id, token);
    proto_argv_adds(a, checkpoint);
    if (progress >= 0)
        proto_argv_addd(a, progress);
    else
        proto_argv_adds(a, "");
}

void ops_release_add(proto_argv_t *a, const char *id, const char *token, const char *checkpoint,
                     double progress)
{
    /* release.lua takes a job as checkpoint.lua does. */
    ops_checkpoint_add(a, id, token, checkpoint, progress);
}

int ops_results(const redisReply *r, size_t n)
{
    if (!is(r, REDIS_REPLY_ARRAY) || r->elements != n) return -1;
    for (size_t i = 0; i < n; i++)
        if (!is(r->element[i], REDIS_REPLY_INTEGER)) return -1;
    return 0;
}

long long ops_outcome_answer(long long res, int *again)
{
    if (again) *again = res < 0;
    return res < 0 ? -res : res;
}

void ops_reap_args(proto_argv_t *a, long long max, int64_t ttl_succeeded_ms, int64_t ttl_dead_ms,
                   int64_t gap_ms, int64_t grace_ms, int no_progress)
{
    proto_argv_addll(a, max);
    proto_argv_addll(a, ttl_succeeded_ms);
    proto_argv_addll(a, ttl_dead_ms);
    proto_argv_addll(a, gap_ms);
    proto_argv_addll(a, grace_ms);
    proto_argv_addll(a, no_progress);
}

int ops_reap_reply(const redisReply *r, ops_reap_t *out)
{
    /* {requeued, dead, canceled, more, set_aside, held, gap} */
    if (!is(r, REDIS_REPLY_ARRAY) || r->elements != 7 || !is(r->element[4], REDIS_REPLY_ARRAY))
        return -1;
    for (size_t i = 0; i < 7; i++)
        if (i != 4 && !is(r->element[i], REDIS_REPLY_INTEGER)) return -1;
    *out = (ops_reap_t){.requeued = r->element[0]->integer,
                        .dead = r->element[1]->integer,
                        .canceled = r->element[2]->integer,
                        .more = r->element[3]->integer != 0,
                        .set_aside = r->element[4],
                        .held_ms = r->element[5]->integer,
                        .gap_ms = r->element[6]->integer};
    return 0;
}

int ops_stats_reply(const redisReply *r, long long depth[6])
{
    if (!is(r, REDIS_REPLY_ARRAY) || r->elements < 6) return -1;
    for (size_t i = 0; i < 6; i++)
        if (!is(r->element[i], REDIS_REPLY_INTEGER)) return -1;
    for (size_t i = 0; i < 6; i++)
        depth[i] = r->element[i]->integer;
    return 0;
}

long long ops_stats_oldest_ms(const redisReply *r)
{
    if (!is(r, REDIS_REPLY_ARRAY) || r->elements < 7 || !is(r->element[6], REDIS_REPLY_INTEGER))
        return -1;
    return r->element[6]->integer;
}
