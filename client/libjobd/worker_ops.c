/* worker_ops.c - the blocking forms of the worker-side operations.
 *
 * jobd runs the same scripts through its asynchronous transport; these serve
 * tests and tools. Arguments and replies are ops.c's, shared with jobd. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "envelope.h"
#include "ops.h"

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
    ops_claim_args(&c->argv, worker_id, lease_ms, (long long)max,
                   (long long)c->payload_max + (JOBD_ENVELOPE_MAX - JOBD_PAYLOAD_MAX),
                   JOBD_TTL_DEAD_MS);
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    ops_claim_t cl;
    if (ops_claim_reply(r, &cl) < 0) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from claim");
    }
    for (size_t i = 0; i < cl.n && i < max; i++) {
        ops_claimed_t e;
        ops_claim_job(&cl, i, &e);
        jobd_claim_t *j = &out[i];
        memset(j, 0, sizeof *j);
        snprintf(j->id, sizeof j->id, "%.*s", (int)e.id_len, e.id);
        snprintf(j->token, sizeof j->token, "%.*s", (int)e.token_len, e.token);
        j->attempt = (int)e.attempt;
        j->raw_envelope = strndup(e.envelope, e.envelope_len);
        j->envelope = json_loadb(e.envelope, e.envelope_len, 0, NULL);
        if (e.checkpoint_len)
            j->checkpoint = json_loadb(e.checkpoint, e.checkpoint_len, JSON_DECODE_ANY, NULL);
    }
    size_t n = cl.n;
    freeReplyObject(r);
    return (int)n;
}

/* Runs a per-job script for one job; returns the job's integer result. */
static int one(jobd_client_t *c, long long *result)
{
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    int ok = ops_results(r, 1) == 0;
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
    ops_extend_begin(&c->argv, lease_ms);
    ops_lease_add(&c->argv, id, token);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    return res == OPS_EXTEND_LOST ? stale(c, id) : (res == OPS_EXTEND_CANCEL ? 1 : 0);
}

int jobd_ack(jobd_client_t *c, const char *queue, const char *id, const char *token,
             const char *result_json)
{
    client_script_begin(c, PROTO_ACK, queue);
    ops_ack_add(&c->argv, id, token, result_json);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    /* -1: acked already with this token (a re-send after a lost reply). */
    return ops_outcome_answer(res, NULL) == 1 ? 0 : stale(c, id);
}

int jobd_fail(jobd_client_t *c, const char *queue, const char *id, const char *token,
              const char *error, int64_t retry_delay_ms)
{
    client_script_begin(c, PROTO_FAIL, queue);
    ops_fail_begin(&c->argv, JOBD_TTL_DEAD_MS, OPS_NO_PROGRESS_DEFAULT);
    /* max_attempts 0: the job's, else the default */
    ops_fail_add(&c->argv, id, token, error, retry_delay_ms, 0);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    res = ops_outcome_answer(res, NULL); /* applied already with this token: the same answer */
    return res > 0 ? (int)res : stale(c, id);
}

int jobd_release(jobd_client_t *c, const char *queue, const char *id, const char *token,
                 const char *checkpoint_json)
{
    client_script_begin(c, PROTO_RELEASE, queue);
    ops_release_begin(&c->argv, JOBD_TTL_DEAD_MS);
    ops_release_add(&c->argv, id, token, checkpoint_json, -1);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    res = ops_outcome_answer(res, NULL); /* applied already with this token: the same answer */
    return res == 1 ? 0 : (res == 3 ? JOBD_FAILED_CANCELED : stale(c, id));
}

int jobd_checkpoint(jobd_client_t *c, const char *queue, const char *id, const char *token,
                    const char *checkpoint_json, double progress)
{
    client_script_begin(c, PROTO_CHECKPOINT, queue);
    ops_checkpoint_add(&c->argv, id, token, checkpoint_json, progress);
    long long res = 0;
    int rc = one(c, &res);
    if (rc < 0) return rc;
    return res == 1 ? 0 : stale(c, id);
}

int jobd_reap(jobd_client_t *c, const char *queue, jobd_reap_t *out)
{
    client_script_begin(c, PROTO_REAP, queue);
    /* No reaper clock: a tool's reap must not hold lease expiry. */
    ops_reap_args(&c->argv, 1000, JOBD_TTL_SUCCEEDED_MS, JOBD_TTL_DEAD_MS, 0, 0,
                  OPS_NO_PROGRESS_DEFAULT);
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    ops_reap_t rp;
    if (ops_reap_reply(r, &rp) < 0) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from reap");
    }
    if (out) {
        out->requeued = (long)rp.requeued;
        out->dead = (long)rp.dead;
        out->canceled = (long)rp.canceled;
        out->dropped = 0;
        ops_note_t note;
        for (size_t i = 0; i < ops_notes(rp.set_aside); i++)
            if (ops_note(rp.set_aside, i, &note) == 0 && !note.dead) out->dropped++;
    }
    freeReplyObject(r);
    return 0;
}
