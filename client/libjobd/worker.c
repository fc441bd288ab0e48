/* worker.c - the blocking forms of the worker-side operations.
 *
 * jobd runs the same scripts through its asynchronous transport; these serve
 * tests and tools, and document each script's arguments in C. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "envelope.h"

void jobd_claim_clear(jobd_claim_t *j)
{
    json_decref(j->envelope);
    json_decref(j->checkpoint);
    free(j->raw_envelope);
    memset(j, 0, sizeof *j);
}

int jobd_claim(jobd_client_t *c, const char *queue, const char *worker_id, int64_t lease_ms,
               jobd_claim_t *out, size_t max)
{
    client_script_begin(c, PROTO_CLAIM, queue);
    proto_argv_adds(&c->argv, worker_id);
    proto_argv_addll(&c->argv, lease_ms);
    proto_argv_addll(&c->argv, (long long)max);
    proto_argv_addll(&c->argv, 1000);
    proto_argv_addll(&c->argv, (long long)c->payload_max + (JOBD_ENVELOPE_MAX - JOBD_PAYLOAD_MAX));
    proto_argv_addll(&c->argv, JOBD_TTL_DEAD_MS);
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    /* next run_at, what was set aside (triples), then 5 values per job */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 5 != 0 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from claim");
    }
    size_t n = (r->elements - 2) / 5;
    for (size_t i = 0; i < n && i < max; i++) {
        redisReply **e = r->element + 2 + 5 * i;
        jobd_claim_t *j = &out[i];
        memset(j, 0, sizeof *j);
        snprintf(j->id, sizeof j->id, "%s", e[0]->str);
        snprintf(j->token, sizeof j->token, "%s", e[1]->str);
        j->attempt = (int)e[2]->integer;
        j->raw_envelope = strndup(e[3]->str, e[3]->len);
        j->envelope = json_loadb(e[3]->str, e[3]->len, 0, NULL);
        if (e[4]->len) j->checkpoint = json_loadb(e[4]->str, e[4]->len, JSON_DECODE_ANY, NULL);
    }
    freeReplyObject(r);
    return (int)n;
}

/* Runs a per-job script for one job; returns the job's integer result. */
static int one(jobd_client_t *c, long long *result)
{
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
             r->element[0]->type == REDIS_REPLY_INTEGER;
    if (ok) *result = r->element[0]->integer;
    freeReplyObject(r);
    return ok ? 0
              : client_err(c, JOBD_EREDIS, "unexpected reply from %s",
                           proto_script_name(c->argv_script));
}

static int stale(jobd_client_t *c, const char *id)
{
    return client_err(c, JOBD_ESTALE, "lease of job %s is no longer held (stale token)", id);
}

int jobd_extend(jobd_client_t *c, const char *queue, const char *id, const char *token,
                int64_t lease_ms)
{
    client_script_begin(c, PROTO_EXTEND, queue);
    proto_argv_addll(&c->argv, lease_ms);
    proto_argv_adds(&c->argv, id);
    proto_argv_adds(&c->argv, token);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    return res == 0 ? stale(c, id) : (res == 2 ? 1 : 0);
}

int jobd_ack(jobd_client_t *c, const char *queue, const char *id, const char *token,
             const char *result_json)
{
    client_script_begin(c, PROTO_ACK, queue);
    proto_argv_adds(&c->argv, id);
    proto_argv_adds(&c->argv, token);
    proto_argv_adds(&c->argv, result_json);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    /* -1: acked already with this token (a re-send after a lost reply). */
    return res == 1 || res == -1 ? 0 : stale(c, id);
}

int jobd_fail(jobd_client_t *c, const char *queue, const char *id, const char *token,
              const char *error, int64_t retry_delay_ms)
{
    client_script_begin(c, PROTO_FAIL, queue);
    proto_argv_addll(&c->argv, JOBD_TTL_DEAD_MS);
    proto_argv_adds(&c->argv, id);
    proto_argv_adds(&c->argv, token);
    proto_argv_adds(&c->argv, error);
    proto_argv_addll(&c->argv, retry_delay_ms);
    proto_argv_addll(&c->argv, 0); /* max_attempts: the job's, else the default */
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    if (res < 0) res = -res; /* applied already with this token: the same answer */
    return res > 0 ? (int)res : stale(c, id);
}

int jobd_release(jobd_client_t *c, const char *queue, const char *id, const char *token,
                 const char *checkpoint_json)
{
    client_script_begin(c, PROTO_RELEASE, queue);
    proto_argv_addll(&c->argv, JOBD_TTL_DEAD_MS);
    proto_argv_adds(&c->argv, id);
    proto_argv_adds(&c->argv, token);
    proto_argv_adds(&c->argv, checkpoint_json);
    proto_argv_adds(&c->argv, "");
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    if (res < 0) res = -res; /* applied already with this token: the same answer */
    return res == 1 ? 0 : (res == 3 ? JOBD_FAILED_CANCELED : stale(c, id));
}

int jobd_checkpoint(jobd_client_t *c, const char *queue, const char *id, const char *token,
                    const char *checkpoint_json, double progress)
{
    client_script_begin(c, PROTO_CHECKPOINT, queue);
    proto_argv_adds(&c->argv, id);
    proto_argv_adds(&c->argv, token);
    proto_argv_adds(&c->argv, checkpoint_json);
    if (progress >= 0)
        proto_argv_addd(&c->argv, progress);
    else
        proto_argv_adds(&c->argv, "");
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    return res == 1 ? 0 : stale(c, id);
}

int jobd_reap(jobd_client_t *c, const char *queue, jobd_reap_t *out)
{
    client_script_begin(c, PROTO_REAP, queue);
    proto_argv_addll(&c->argv, 1000);
    proto_argv_addll(&c->argv, JOBD_TTL_SUCCEEDED_MS);
    proto_argv_addll(&c->argv, JOBD_TTL_DEAD_MS);
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5 ||
        r->element[4]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from reap");
    }
    if (out) {
        out->requeued = (long)r->element[0]->integer;
        out->dead = (long)r->element[1]->integer;
        out->canceled = (long)r->element[2]->integer;
        out->dropped = 0;
        const redisReply *notes = r->element[4];
        for (size_t i = 0; i + 2 < notes->elements; i += 3)
            if (strcmp(notes->element[i]->str, "dropped") == 0) out->dropped++;
    }
    freeReplyObject(r);
    return 0;
}
