/* batch.c - named batches: submit (batch.lua per queue), status.
 *
 * The batch's record PREFIX:batch:NAME (global: queues, total, on_complete,
 * on_complete_queue, created_at) is written before the jobs, so a jobd
 * that sees a part complete always finds it. The parts live in their
 * queues' slots (schema/redis/README.md, "Batches"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "keys.h"

#define BATCH_CHUNK 500

static int64_t run_at_of(const jobd_job_spec_t *s, int64_t now)
{
    return s->run_at_ms ? s->run_at_ms : (s->delay_ms ? now + s->delay_ms : 0);
}

/* Sends specs[first..first+count) (one queue) through batch.lua. */
static int send_chunk(jobd_client_t *c, const char *name, const jobd_job_spec_t *specs,
                      size_t first, size_t count, char *ids_out)
{
    char err[512];
    int64_t now = jobd_now_ms();
    client_script_begin(c, PROTO_BATCH, specs[first].queue);
    proto_argv_adds(&c->argv, name);
    proto_argv_addll(&c->argv, (long long)count);
    for (size_t i = first; i < first + count; i++) {
        const jobd_job_spec_t *s = &specs[i];
        char *id = ids_out + i * (JOBD_ID_LEN + 1);
        if (s->id)
            snprintf(id, JOBD_ID_LEN + 1, "%s", s->id);
        else
            jobd_id_new(id);
        int rc = envelope_encode_buf(s, id, now, c->payload_max, 1, &c->env, err, sizeof err);
        if (rc < 0) return client_err(c, rc, "job %zu: %s", i + 1, err);
        proto_argv_adds(&c->argv, id);
        proto_argv_add(&c->argv, c->env.buf, c->env.len);
        proto_argv_addll(&c->argv, s->priority < 0 ? JOBD_DEFAULT_PRIORITY : s->priority);
        proto_argv_addll(&c->argv, s->max_attempts);
        proto_argv_addll(&c->argv, run_at_of(s, now));
    }
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == count;
    size_t dup = 0;
    for (size_t i = 0; ok && i < count; i++)
        dup += r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 0;
    freeReplyObject(r);
    if (!ok) return client_err(c, JOBD_EREDIS, "unexpected reply from batch");
    if (dup) return client_err(c, JOBD_ESTATE, "%zu jobs of the batch had ids that exist", dup);
    return 0;
}

int jobd_batch_submit(jobd_client_t *c, const char *name, const jobd_job_spec_t *specs, size_t n,
                      const char *on_complete_type, const char *on_complete_queue, char *ids_out)
{
    char err[512];
    if (envelope_check_name("batch name", name, err, sizeof err) < 0)
        return client_err(c, JOBD_EINVAL, "%s", err);
    if (n == 0) return client_err(c, JOBD_EINVAL, "a batch needs at least one job");
    if (on_complete_type && envelope_check_name("type", on_complete_type, err, sizeof err) < 0)
        return client_err(c, JOBD_EINVAL, "--on-complete: %s", err);
    const char *cq = on_complete_queue ? on_complete_queue : specs[0].queue;
    if (envelope_check_name("queue", cq, err, sizeof err) < 0)
        return client_err(c, JOBD_EINVAL, "--on-complete: %s", err);
    for (size_t i = 0; i < n; i++) {
        int rc = jobd_job_spec_check(&specs[i], c->payload_max, err, sizeof err);
        if (rc < 0) return client_err(c, rc, "job %zu: %s", i + 1, err);
        if (specs[i].idempotency_key)
            return client_err(c, JOBD_EINVAL,
                              "job %zu: a named batch takes no idempotency keys (the batch "
                              "name is the key)",
                              i + 1);
    }
    int rc;
    /* The record first, claimed with HSETNX: a name is used once. */
    char key[KEYS_MAX], suffix[200];
    snprintf(suffix, sizeof suffix, "batch:%s", name);
    keys_global(key, c->prefix, suffix);
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)jobd_now_ms());
    redisReply *r;
    if ((rc = client_command(c, key, &r, "HSETNX %s created_at %s", key, now)) < 0) return rc;
    long long fresh = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    if (!fresh) return client_err(c, JOBD_ESTATE, "batch \"%s\" exists already", name);
    json_t *queues = json_array();
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        size_t k;
        json_t *q;
        json_array_foreach(queues, k, q) seen |= strcmp(json_string_value(q), specs[i].queue) == 0;
        if (!seen) json_array_append_new(queues, json_string(specs[i].queue));
    }
    char *qtext = json_dumps(queues, JSON_COMPACT);
    json_decref(queues);
    if (!qtext) return client_err(c, JOBD_ENOMEM, "out of memory");
    char total[32];
    snprintf(total, sizeof total, "%zu", n);
    rc =
        client_command(c, key, &r, "HSET %s queues %s total %s on_complete %s on_complete_queue %s",
                       key, qtext, total, on_complete_type ? on_complete_type : "", cq);
    free(qtext);
    if (rc < 0) return rc;
    freeReplyObject(r);
    char qkey[KEYS_MAX];
    keys_global(qkey, c->prefix, "queues");
    if (on_complete_type) { /* the completion job's queue is listed like any other */
        if ((rc = client_command(c, qkey, &r, "SADD %s %s", qkey, cq)) < 0) return rc;
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n;) {
        size_t count = 1;
        while (i + count < n && count < BATCH_CHUNK &&
               strcmp(specs[i + count].queue, specs[i].queue) == 0)
            count++;
        if ((rc = client_command(c, qkey, &r, "SADD %s %s", qkey, specs[i].queue)) < 0) return rc;
        freeReplyObject(r);
        if ((rc = send_chunk(c, name, specs, i, count, ids_out)) < 0) return rc;
        i += count;
    }
    return 0;
}

/* Adds one part's jobs to counts and *sum. */
static int add_part(jobd_client_t *c, const char *name, const char *queue, long long counts[],
                    double *sum, long long *total)
{
    char key[KEYS_MAX], suffix[200];
    snprintf(suffix, sizeof suffix, "batch:%s:ids", name);
    keys_queue_key(key, c->prefix, queue, suffix);
    redisReply *ids;
    int rc = client_command(c, key, &ids, "LRANGE %s 0 -1", key);
    if (rc < 0) return rc;
    /* The part's job records share its queue's hash tag: one node. */
    if ((rc = client_route(c, key)) < 0) {
        freeReplyObject(ids);
        return rc;
    }
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        char jk[KEYS_MAX], js[JOBD_ID_LEN + 8];
        snprintf(js, sizeof js, "job:%s", ids->element[i]->str);
        keys_queue_key(jk, c->prefix, queue, js);
        redisAppendCommand(c->rc, "HMGET %s state progress", jk);
    }
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        redisReply *r;
        if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) {
            rc = client_err(c, JOBD_ECONN, "Redis: %s", c->rc->errstr);
            break;
        }
        (*total)++;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING) {
            int st = jobd_state_parse(r->element[0]->str);
            if (st >= 0) counts[st]++;
            double p =
                r->element[1]->type == REDIS_REPLY_STRING ? strtod(r->element[1]->str, NULL) : 0;
            *sum += st == JOBD_SUCCEEDED ? 1.0 : (p >= 0 && p <= 1 ? p : 0);
        }
        freeReplyObject(r);
    }
    freeReplyObject(ids);
    return rc;
}

int jobd_batch_status(jobd_client_t *c, const char *name, json_t **out)
{
    char key[KEYS_MAX], suffix[200];
    snprintf(suffix, sizeof suffix, "batch:%s", name);
    keys_global(key, c->prefix, suffix);
    redisReply *r;
    int rc = client_command(c, key, &r, "HMGET %s queues on_complete_queue", key);
    if (rc < 0) return rc;
    json_t *queues = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                             r->element[0]->type == REDIS_REPLY_STRING
                         ? json_loads(r->element[0]->str, 0, NULL)
                         : NULL;
    char cq[200] = "";
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(cq, sizeof cq, "%s", r->element[1]->str);
    freeReplyObject(r);
    if (!json_is_array(queues)) {
        json_decref(queues);
        return client_err(c, JOBD_ENOTFOUND, "no batch named \"%s\"", name);
    }
    long long counts[JOBD_NSTATES] = {0}, total = 0;
    double sum = 0;
    size_t i;
    json_t *q;
    json_array_foreach(queues, i, q)
    {
        if (!json_is_string(q)) continue;
        if ((rc = add_part(c, name, json_string_value(q), counts, &sum, &total)) < 0) break;
    }
    json_t *completion = json_null();
    if (rc == 0 && *cq) {
        char part[KEYS_MAX], sfx[200];
        snprintf(sfx, sizeof sfx, "batch:%s", name);
        keys_queue_key(part, c->prefix, cq, sfx);
        if ((rc = client_command(c, part, &r, "HGET %s completion", part)) == 0) {
            if (r->type == REDIS_REPLY_STRING) {
                json_decref(completion);
                completion = json_stringn(r->str, r->len);
            }
            freeReplyObject(r);
        }
    }
    if (rc < 0) {
        json_decref(queues);
        json_decref(completion);
        return rc;
    }
    json_t *cnt = json_object();
    for (int s = 0; s < JOBD_NSTATES; s++)
        json_object_set_new(cnt, jobd_state_name((jobd_state_t)s), json_integer(counts[s]));
    long long terminal = counts[JOBD_SUCCEEDED] + counts[JOBD_DEAD] + counts[JOBD_CANCELED];
    *out =
        json_pack("{s:s, s:I, s:o, s:f, s:b, s:o, s:o}", "name", name, "total", (json_int_t)total,
                  "counts", cnt, "progress", total ? sum / (double)total : 0.0, "done",
                  total > 0 && terminal == total, "completion", completion, "queues", queues);
    return *out ? 0 : client_err(c, JOBD_ENOMEM, "out of memory");
}
