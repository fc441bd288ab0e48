/* manage.c - status, cancel, list, stats, retry and workers (pause, purge,
 * delete and history: controls.c). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "envelope.h"
#include "keys.h"

#define RETRY_SLICE 1000 /* dead jobs moved per retry.lua call */

int jobd_queues(jobd_client_t *c, json_t **out)
{
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "queues");
    redisReply *r;
    int rc = client_command(c, key, &r, "SMEMBERS %s", key);
    if (rc < 0) return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++)
        json_array_append_new(arr, json_stringn(r->element[i]->str, r->element[i]->len));
    freeReplyObject(r);
    *out = arr;
    return 0;
}

/* Turns an HGETALL reply of job id in queue into a status object (new) or
 * NULL (no such job). A record with no envelope (garbage, which claim.lua
 * sends dead with that reason) is still shown: its id, queue and state. */
static json_t *status_from_reply(const redisReply *r, const char *id, const char *queue)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return NULL;
    size_t n = r->elements / 2;
    const char **f = malloc((n + 1) * sizeof *f), **v = malloc((n + 1) * sizeof *v);
    size_t *l = malloc((n + 1) * sizeof *l);
    json_t *st = NULL;
    if (f && v && l) {
        int has_env = 0;
        for (size_t i = 0; i < n; i++) {
            f[i] = r->element[2 * i]->str;
            v[i] = r->element[2 * i + 1]->str;
            l[i] = r->element[2 * i + 1]->len;
            has_env |= strcmp(f[i], "env") == 0;
        }
        if (!has_env) {
            f[n] = "env";
            v[n] = "{}";
            l[n] = 2;
        }
        st = envelope_status(f, v, l, has_env ? n : n + 1);
        if (st && !has_env) {
            json_object_set_new(st, "id", json_string(id));
            json_object_set_new(st, "queue", json_string(queue));
        }
    }
    free(f);
    free(v);
    free(l);
    return st;
}

/* How often a pipelined read starts over after a redirect (a failover or
 * a slot migration under way) before it gives up. */
#define PIPE_TRIES 4

/* Fetches the status of each id in queue in one pipeline; appends to arr.
 * CLIENT_EREDIRECT: start over (nothing appended). */
static int fetch_once(jobd_client_t *c, const char *queue, redisReply *ids, json_t *arr)
{
    char key[KEYS_MAX];
    int node = -1, rc = 0;
    for (size_t i = 0; i < ids->elements && rc >= 0; i++) {
        char suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "job:%s", ids->element[i]->str);
        keys_queue_key(key, c->prefix, queue, suffix);
        rc = node = client_pipe_appendf(c, key, "HGETALL %s", key);
    }
    if (rc < 0) return rc;
    rc = 0;
    json_t *got = json_array();
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *r;
        int k = client_pipe_read_ok(c, node, "HGETALL", &r);
        if (k == JOBD_ECONN) {
            rc = k;
            break;
        }
        if (k < 0) {
            if (rc == 0 || k == CLIENT_EREDIRECT) rc = k;
            continue;
        }
        json_t *st = status_from_reply(r, ids->element[i]->str, queue);
        if (st) json_array_append_new(got, st); /* expired meanwhile: skipped */
        freeReplyObject(r);
    }
    if (rc == 0) json_array_extend(arr, got);
    json_decref(got);
    return rc;
}

static int fetch_statuses(jobd_client_t *c, const char *queue, redisReply *ids, json_t *arr)
{
    int rc = 0;
    for (int t = 0; t < PIPE_TRIES; t++) {
        if ((rc = fetch_once(c, queue, ids, arr)) != CLIENT_EREDIRECT) return rc;
        if ((rc = client_pipe_recover(c)) < 0) return rc;
    }
    return client_err(c, JOBD_EREDIS, "Redis Cluster: redirected again and again");
}

/* One EXISTS per queue, each on its queue's node. */
static int find_once(jobd_client_t *c, json_t *queues, const char *id, char *queue, size_t len)
{
    size_t i;
    json_t *q;
    char key[KEYS_MAX], suffix[KEYS_MAX];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    size_t n = json_array_size(queues);
    int *nodes = calloc(n ? n : 1, sizeof *nodes);
    if (!nodes) return client_err(c, JOBD_ENOMEM, "out of memory");
    int rc = 0;
    json_array_foreach(queues, i, q)
    {
        keys_queue_key(key, c->prefix, json_string_value(q), suffix);
        if ((rc = nodes[i] = client_pipe_appendf(c, key, "EXISTS %s", key)) < 0) {
            n = i; /* read what went out */
            break;
        }
    }
    if (rc > 0) rc = 0;
    int found = 0;
    for (i = 0; i < n; i++) {
        redisReply *r = NULL;
        int k = client_pipe_read_ok(c, nodes[i], "EXISTS", &r);
        if (k == JOBD_ECONN) {
            rc = k;
            break;
        }
        if (k < 0) {
            if (rc == 0 || k == CLIENT_EREDIRECT) rc = k;
            continue;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1 && !found) {
            snprintf(queue, len, "%s", json_string_value(json_array_get(queues, i)));
            found = 1;
        }
        freeReplyObject(r);
    }
    free(nodes);
    if (rc < 0) return rc;
    return found ? 0 : client_err(c, JOBD_ENOTFOUND, "no such job: %s", id);
}

int client_find_queue(jobd_client_t *c, const char *id, char *queue, size_t len)
{
    json_t *queues;
    int rc = jobd_queues(c, &queues);
    if (rc < 0) return rc;
    for (int t = 0; t < PIPE_TRIES; t++) {
        if ((rc = find_once(c, queues, id, queue, len)) != CLIENT_EREDIRECT) break;
        if ((rc = client_pipe_recover(c)) < 0) break;
        rc = client_err(c, JOBD_EREDIS, "Redis Cluster: redirected again and again");
    }
    json_decref(queues);
    return rc;
}

int jobd_status(jobd_client_t *c, const char *id, json_t **out)
{
    char queue[128], key[KEYS_MAX], suffix[KEYS_MAX];
    int rc = client_find_queue(c, id, queue, sizeof queue);
    if (rc < 0) return rc;
    snprintf(suffix, sizeof suffix, "job:%s", id);
    keys_queue_key(key, c->prefix, queue, suffix);
    redisReply *r;
    if ((rc = client_command(c, key, &r, "HGETALL %s", key)) < 0) return rc;
    *out = status_from_reply(r, id, queue);
    freeReplyObject(r);
    return *out ? 0 : client_err(c, JOBD_ENOTFOUND, "no such job: %s", id);
}

int jobd_cancel(jobd_client_t *c, const char *id, int *was_active)
{
    char queue[128];
    int rc = client_find_queue(c, id, queue, sizeof queue);
    if (rc < 0) return rc;
    client_script_begin(c, PROTO_CANCEL, queue);
    proto_argv_adds(&c->argv, id);
    proto_argv_addll(&c->argv, JOBD_TTL_DEAD_MS);
    redisReply *r;
    if ((rc = client_script_call(c, &r)) < 0) return rc;
    long long code = r->element[0]->integer;
    char state[32];
    snprintf(state, sizeof state, "%s", r->element[1]->str);
    freeReplyObject(r);
    if (was_active) *was_active = code == 2;
    if (code == 0) return client_err(c, JOBD_ENOTFOUND, "no such job: %s", id);
    if (code == 3) return client_err(c, JOBD_ESTATE, "job %s has already finished (%s)", id, state);
    return 0;
}

static int list_state(jobd_client_t *c, const char *queue, int state, size_t limit, json_t *arr)
{
    char key[KEYS_MAX];
    keys_queue_key(key, c->prefix, queue, keys_state_set(state));
    redisReply *ids;
    /* ZRANGE's stop is inclusive; -1 (everything) for a huge limit. */
    long long stop = limit > (size_t)LLONG_MAX ? -1 : (long long)limit - 1;
    int rc = client_command(c, key, &ids, "ZRANGE %s 0 %lld", key, stop);
    if (rc < 0) return rc;
    rc = fetch_statuses(c, queue, ids, arr);
    freeReplyObject(ids);
    return rc;
}

int jobd_list(jobd_client_t *c, const char *queue, int state, size_t limit, json_t **out)
{
    char err[256];
    int rc = envelope_check_name("queue", queue, err, sizeof err);
    if (rc < 0) return client_err(c, rc, "%s", err);
    if (state >= JOBD_NSTATES) return client_err(c, JOBD_EINVAL, "unknown state");
    json_t *arr = json_array();
    /* Every state: the ones that need attention first. */
    static const int order[] = {JOBD_ACTIVE, JOBD_QUEUED,   JOBD_SCHEDULED,
                                JOBD_DEAD,   JOBD_CANCELED, JOBD_SUCCEEDED};
    for (size_t k = 0; k < 6 && rc == 0; k++) {
        int s = state >= 0 ? state : order[k];
        size_t have = json_array_size(arr);
        if (have >= limit) break;
        rc = list_state(c, queue, s, limit - have, arr);
        if (state >= 0) break;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static json_t *queue_stats(const redisReply *r)
{
    json_t *o = json_object();
    for (int s = 0; s < JOBD_NSTATES; s++)
        json_object_set_new(o, jobd_state_name((jobd_state_t)s),
                            json_integer(r->element[s]->integer));
    long long oldest = r->element[6]->integer;
    json_object_set_new(o, "oldest_age_s",
                        oldest < 0 ? json_null() : json_real((double)oldest / 1000.0));
    json_t *counters = json_object();
    const redisReply *kv = r->element[7];
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        json_object_set_new(counters, kv->element[i]->str,
                            json_integer(strtoll(kv->element[i + 1]->str, NULL, 10)));
    json_object_set_new(o, "counters", counters);
    long long paused = r->elements > 8 ? r->element[8]->integer : -1;
    json_object_set_new(o, "paused", json_boolean(paused >= 0));
    json_object_set_new(o, "paused_for_s",
                        paused < 0 ? json_null() : json_real((double)paused / 1000.0));
    return o;
}

int jobd_stats(jobd_client_t *c, json_t **out)
{
    json_t *queues;
    int rc = jobd_queues(c, &queues);
    if (rc < 0) return rc;
    json_t *res = json_object();
    size_t i;
    json_t *q;
    json_array_foreach(queues, i, q)
    {
        client_script_begin(c, PROTO_STATS, json_string_value(q));
        redisReply *r;
        if ((rc = client_script_call(c, &r)) < 0) break;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 8)
            json_object_set_new(res, json_string_value(q), queue_stats(r));
        freeReplyObject(r);
    }
    json_decref(queues);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

static int retry_call(jobd_client_t *c, const char *queue, const char *id, long long *moved)
{
    client_script_begin(c, PROTO_RETRY, queue);
    proto_argv_adds(&c->argv, id);
    proto_argv_addll(&c->argv, RETRY_SLICE);
    redisReply *r;
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    *moved = r->integer;
    freeReplyObject(r);
    return 0;
}

int jobd_retry(jobd_client_t *c, const char *id)
{
    char queue[128];
    int rc = client_find_queue(c, id, queue, sizeof queue);
    if (rc < 0) return rc;
    long long moved;
    if ((rc = retry_call(c, queue, id, &moved)) < 0) return rc;
    if (moved == -2) return client_err(c, JOBD_ENOTFOUND, "no such job: %s", id);
    if (moved == -1) return client_err(c, JOBD_ESTATE, "job %s is not dead", id);
    return 0;
}

int jobd_retry_dead(jobd_client_t *c, const char *queue)
{
    char err[256];
    int rc = envelope_check_name("queue", queue, err, sizeof err);
    if (rc < 0) return client_err(c, rc, "%s", err);
    char key[KEYS_MAX];
    keys_queue_key(key, c->prefix, queue, keys_state_set(JOBD_DEAD));
    redisReply *r;
    if ((rc = client_command(c, key, &r, "ZCARD %s", key)) < 0) return rc;
    long long slices = r->integer / RETRY_SLICE + 1;
    freeReplyObject(r);
    /* In slices, so one call never blocks Redis for long, and as many as
     * the dead set held when we started: jobs that die meanwhile (perhaps
     * the very ones retried, if workers fail them at once) wait for the next
     * retry instead of keeping this loop going. */
    long long total = 0, moved;
    for (long long k = 0; k < slices; k++) {
        if ((rc = retry_call(c, queue, "", &moved)) < 0) return rc;
        total += moved;
        if (moved == 0) break; /* retry.lua: the set is empty */
    }
    return total > INT_MAX ? INT_MAX : (int)total;
}

/* The records of the worker ids in ids, one pipeline (all {:global}). */
static int workers_once(jobd_client_t *c, redisReply *ids, json_t *arr)
{
    int node = -1, rc = 0;
    for (size_t i = 0; i < ids->elements && rc >= 0; i++) {
        char wk[KEYS_MAX], name[KEYS_MAX];
        snprintf(name, sizeof name, "worker:%s", ids->element[i]->str);
        keys_global(wk, c->prefix, name);
        rc = node = client_pipe_appendf(c, wk, "GET %s", wk);
    }
    if (rc < 0) return rc;
    rc = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *r;
        int k = client_pipe_read_ok(c, node, "GET", &r);
        if (k == JOBD_ECONN) return k;
        if (k < 0) {
            if (rc == 0 || k == CLIENT_EREDIRECT) rc = k;
            continue;
        }
        /* A worker whose record expired is gone (missed its heartbeats). */
        json_t *w = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
        if (w && rc == 0)
            json_array_append_new(arr, w);
        else
            json_decref(w);
        freeReplyObject(r);
    }
    return rc;
}

int jobd_workers(jobd_client_t *c, json_t **out)
{
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "workers");
    redisReply *ids;
    int rc = client_command(c, key, &ids, "ZRANGE %s 0 -1", key);
    if (rc < 0) return rc;
    json_t *arr = json_array();
    for (int t = 0; t < PIPE_TRIES; t++) {
        json_array_clear(arr);
        if ((rc = workers_once(c, ids, arr)) != CLIENT_EREDIRECT) break;
        if ((rc = client_pipe_recover(c)) < 0) break;
        rc = client_err(c, JOBD_EREDIS, "Redis Cluster: redirected again and again");
    }
    freeReplyObject(ids);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
