/* controls.c - the operator's queue controls: pause, resume, purge, delete,
 * and a job's per-attempt history (schema/redis/pause.lua, purge.lua,
 * delete.lua; the history list is written by ack, fail, release and reap). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "history.h"
#include "keys.h"

#define PURGE_SLICE 500 /* jobs deleted per purge.lua call */

static int check_queue(jobd_client_t *c, const char *queue)
{
    char err[256];
    int rc = envelope_check_name("queue", queue, err, sizeof err);
    return rc < 0 ? client_err(c, rc, "%s", err) : 0;
}

static int pause_call(jobd_client_t *c, const char *queue, int pause, int *changed)
{
    int rc = check_queue(c, queue);
    if (rc < 0) return rc;
    client_script_begin(c, PROTO_PAUSE, queue);
    proto_argv_adds(&c->argv, pause ? "1" : "0");
    redisReply *r;
    if ((rc = client_script_call(c, &r)) < 0) return rc;
    if (changed) *changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    /* So that stats and the console list a queue paused before its first
     * job. */
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "queues");
    if ((rc = client_command(c, key, &r, "SADD %s %s", key, queue)) < 0) return rc;
    freeReplyObject(r);
    return 0;
}

int jobd_pause(jobd_client_t *c, const char *queue, int *changed)
{
    return pause_call(c, queue, 1, changed);
}

int jobd_resume(jobd_client_t *c, const char *queue, int *changed)
{
    return pause_call(c, queue, 0, changed);
}

int jobd_purge(jobd_client_t *c, const char *queue, int state)
{
    int rc = check_queue(c, queue);
    if (rc < 0) return rc;
    if (state < 0 || state >= JOBD_NSTATES || state == JOBD_ACTIVE)
        return client_err(c, JOBD_EINVAL,
                          "cannot purge that state: queued, scheduled, succeeded, dead or "
                          "canceled (cancel active jobs instead)");
    char key[KEYS_MAX];
    keys_queue_key(key, c->prefix, queue, keys_state_set(state));
    redisReply *r;
    if ((rc = client_command(c, key, &r, "ZCARD %s", key)) < 0) return rc;
    long long slices = (r->type == REDIS_REPLY_INTEGER ? r->integer : 0) / PURGE_SLICE + 1;
    freeReplyObject(r);
    /* As many slices as the set held when we started: jobs entering the
     * state meanwhile (a busy queue) do not keep this loop going. */
    long long total = 0;
    for (long long k = 0; k < slices; k++) {
        client_script_begin(c, PROTO_PURGE, queue);
        proto_argv_adds(&c->argv, jobd_state_name((jobd_state_t)state));
        proto_argv_addll(&c->argv, PURGE_SLICE);
        if ((rc = client_script_call(c, &r)) < 0) return rc;
        long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        total += n;
        if (n == 0) break;
    }
    return total > INT_MAX ? INT_MAX : (int)total;
}

int jobd_delete(jobd_client_t *c, const char *id)
{
    char queue[128];
    int rc = client_find_queue(c, id, queue, sizeof queue);
    if (rc < 0) return rc;
    client_script_begin(c, PROTO_DELETE, queue);
    proto_argv_adds(&c->argv, id);
    redisReply *r;
    if ((rc = client_script_call(c, &r)) < 0) return rc;
    long long code = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? r->element[0]->integer : 0;
    freeReplyObject(r);
    if (code == 0) return client_err(c, JOBD_ENOTFOUND, "no such job: %s", id);
    if (code < 0)
        return client_err(c, JOBD_ESTATE,
                          "job %s is active: cancel it first (its worker holds "
                          "a lease)",
                          id);
    return 0;
}

int jobd_history(jobd_client_t *c, const char *id, json_t **out)
{
    char queue[128], key[KEYS_MAX], suffix[KEYS_MAX];
    int rc = client_find_queue(c, id, queue, sizeof queue);
    if (rc < 0) return rc;
    snprintf(suffix, sizeof suffix, "hist:%s", id);
    keys_queue_key(key, c->prefix, queue, suffix);
    redisReply *r;
    if ((rc = client_command(c, key, &r, "LRANGE %s 0 -1", key)) < 0) return rc;
    json_t *arr = json_array();
    /* Stored newest first; shown oldest first. */
    for (size_t i = r->type == REDIS_REPLY_ARRAY ? r->elements : 0; i > 0; i--) {
        const redisReply *e = r->element[i - 1];
        if (e->type != REDIS_REPLY_STRING) continue;
        json_t *h = history_entry(e->str, e->len);
        if (h) json_array_append_new(arr, h);
    }
    freeReplyObject(r);
    *out = arr;
    return 0;
}
