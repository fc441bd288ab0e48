/* apijobs.c - see apijobs.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jobd/client.h"
#include "apijobs.h"
#include "envelope.h"
#include "history.h"
#include "keys.h"
#include "log.h"

#define LIST_LIMIT_MAX 100

/* ---- jobs of a queue ---- */

typedef struct {
    char queue[129];
    char state[32];
    long long offset, limit, total;
} list_t;

static json_t *peeked_job(const json_t *r, size_t i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(api_jstr(r, i)));
    const char *st = api_jstr(r, i + 1);
    json_object_set_new(o, "state", *st ? json_string(st) : json_null());
    json_object_set_new(o, "attempt", json_integer(api_jint(json_array_get(r, i + 2))));
    json_object_set_new(o, "progress", json_real(strtod(api_jstr(r, i + 3), NULL)));
    const char *e = api_jstr(r, i + 4);
    json_object_set_new(o, "error", *e ? json_string(e) : json_null());
    const char *w = api_jstr(r, i + 5);
    json_object_set_new(o, "worker", *w ? json_string(w) : json_null());
    json_object_set_new(o, "started_at", api_time_json(api_jstr(r, i + 6)));
    json_object_set_new(o, "finished_at", api_time_json(api_jstr(r, i + 7)));
    const char *ty = api_jstr(r, i + 8), *cr = api_jstr(r, i + 9);
    json_object_set_new(o, "type", *ty ? json_string(ty) : json_null());
    json_object_set_new(o, "created_at", *cr ? json_string(cr) : json_null());
    return o;
}

static void on_peeked(cmulti_t *m)
{
    list_t *l = m->ctx;
    if (!api_down(m)) {
        const json_t *r = json_array_get(m->replies, 0);
        json_t *jobs = json_array();
        for (size_t i = 0; i + 9 < json_array_size(r); i += 10)
            if (*api_jstr(r, i + 1)) json_array_append_new(jobs, peeked_job(r, i));
        console_respond_json(m->req, 200,
                             json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "queue", l->queue, "state",
                                       l->state, "total", (json_int_t)l->total, "offset",
                                       (json_int_t)l->offset, "limit", (json_int_t)l->limit, "jobs",
                                       jobs));
    }
    free(l);
    cmulti_free(m);
}

/* Peeks at the ids (a JSON array of strings) and answers the list. */
static void peek_ids(console_t *c, http_req_t *req, list_t *l, const json_t *ids)
{
    cmulti_t *m = cmulti_new(c, on_peeked, l);
    if (!m) {
        free(l);
        console_respond_error(req, 503, "out of memory");
        return;
    }
    m->req = req;
    proto_argv_t a;
    proto_argv_init(&a);
    for (size_t i = 0; i < json_array_size(ids); i++)
        proto_argv_adds(&a, api_jstr(ids, i));
    if (json_array_size(ids) > 0) cmulti_script(m, PROTO_PEEK, l->queue, &a);
    proto_argv_free(&a);
    cmulti_go(m);
}

static void on_list_ids(cmulti_t *m)
{
    list_t *l = m->ctx;
    http_req_t *req = m->req;
    if (api_down(m)) {
        free(l);
        cmulti_free(m);
        return;
    }
    json_t *ids;
    if (strcmp(l->state, "search") == 0) {
        /* Replies: EXISTS job:TEXT (if TEXT can be an id), GET idem:TEXT. */
        ids = json_array();
        const json_t *ex = json_array_get(m->replies, 0), *ik = json_array_get(m->replies, 1);
        if (json_integer_value(ex) == 1) json_array_append_new(ids, json_string(m->a));
        if (json_is_string(ik) && strcmp(json_string_value(ik), m->a) != 0)
            json_array_append_new(ids, json_string(json_string_value(ik)));
        l->total = (long long)json_array_size(ids);
    } else {
        l->total = api_jint(json_array_get(m->replies, 0));
        ids = json_incref(json_array_get(m->replies, 1));
        if (!json_is_array(ids)) {
            json_decref(ids);
            ids = json_array();
        }
    }
    console_t *c = m->con;
    cmulti_free(m);
    peek_ids(c, req, l, ids);
    json_decref(ids);
}

void apijobs_list(console_t *c, http_req_t *req, const char *queue)
{
    char state[32] = "queued", num[32], text[128];
    list_t *l = calloc(1, sizeof *l);
    if (!l) {
        console_respond_error(req, 503, "out of memory");
        return;
    }
    snprintf(l->queue, sizeof l->queue, "%s", queue);
    l->limit = 25;
    if (http_query_get(req->query, "state", state, sizeof state) >= 0 &&
        jobd_state_parse(state) < 0) {
        free(l);
        console_respond_error(req, 400,
                              "state: one of queued, scheduled, active, succeeded, "
                              "dead, canceled");
        return;
    }
    char *end = NULL;
    if (http_query_get(req->query, "offset", num, sizeof num) > 0) {
        l->offset = strtoll(num, &end, 10);
        if (*end) l->offset = -1;
    }
    if (http_query_get(req->query, "limit", num, sizeof num) > 0) {
        l->limit = strtoll(num, &end, 10);
        if (*end) l->limit = -1;
    }
    if (l->offset < 0 || l->offset > 100000000 || l->limit < 1 || l->limit > LIST_LIMIT_MAX) {
        free(l);
        console_respond_error(req, 400, "offset >= 0, limit 1..100");
        return;
    }
    cmulti_t *m = cmulti_new(c, on_list_ids, l);
    if (!m) {
        free(l);
        console_respond_error(req, 503, "out of memory");
        return;
    }
    m->req = req;
    char key[KEYS_MAX], suffix[KEYS_MAX];
    int tl = http_query_get(req->query, "q", text, sizeof text);
    if (tl > 0) {
        /* Search by id or idempotency key, whatever the state. */
        snprintf(l->state, sizeof l->state, "search");
        snprintf(m->a, sizeof m->a, "%s", text);
        snprintf(suffix, sizeof suffix, "job:%s", api_id_ok(text) ? text : "-");
        console_qkey(c, key, queue, suffix);
        const char *ex[] = {"EXISTS", key};
        cmulti_cmd(m, 2, ex);
        char ikey[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "idem:%s", text);
        console_qkey(c, ikey, queue, suffix);
        const char *get[] = {"GET", ikey};
        cmulti_cmd(m, 2, get);
    } else {
        int st = jobd_state_parse(state);
        snprintf(l->state, sizeof l->state, "%s", state);
        console_qkey(c, key, queue, keys_state_set(st));
        const char *zc[] = {"ZCARD", key};
        cmulti_cmd(m, 2, zc);
        char from[32], to[32];
        snprintf(from, sizeof from, "%lld", l->offset);
        snprintf(to, sizeof to, "%lld", l->offset + l->limit - 1);
        /* Waiting jobs in the order they run; finished ones newest first. */
        int newest_first = st == JOBD_SUCCEEDED || st == JOBD_DEAD || st == JOBD_CANCELED;
        const char *zr[] = {newest_first ? "ZREVRANGE" : "ZRANGE", key, from, to};
        cmulti_cmd(m, 4, zr);
    }
    cmulti_go(m);
}

/* ---- one job ---- */

static void on_job_detail(cmulti_t *m)
{
    http_req_t *req = m->req;
    if (api_down(m)) {
        cmulti_free(m);
        return;
    }
    const json_t *h = json_array_get(m->replies, 0), *hist = json_array_get(m->replies, 1);
    size_t n = json_array_size(h) / 2;
    if (n == 0) {
        console_respond_error(req, 404, "no such job");
        cmulti_free(m);
        return;
    }
    const char **f = calloc(n + 1, sizeof *f), **v = calloc(n + 1, sizeof *v);
    size_t *l = calloc(n + 1, sizeof *l);
    int has_env = 0;
    for (size_t i = 0; f && v && l && i < n; i++) {
        const json_t *val = json_array_get(h, 2 * i + 1);
        f[i] = api_jstr(h, 2 * i);
        v[i] = json_string_value(val) ? json_string_value(val) : "";
        l[i] = json_string_length(val);
        has_env |= strcmp(f[i], "env") == 0;
    }
    if (f && v && l && !has_env) {
        f[n] = "env";
        v[n] = "{}";
        l[n] = 2;
    }
    json_t *st = f && v && l ? envelope_status(f, v, l, has_env ? n : n + 1) : NULL;
    free(f);
    free(v);
    free(l);
    if (!st) {
        console_respond_error(req, 500, "job record unreadable");
        cmulti_free(m);
        return;
    }
    json_object_set_new(st, "id", json_string(m->b));
    json_object_set_new(st, "queue", json_string(m->a));
    json_t *arr = json_array();
    for (size_t i = json_array_size(hist); i > 0; i--) {
        const json_t *e = json_array_get(hist, i - 1);
        json_t *x =
            json_is_string(e) ? history_entry(json_string_value(e), json_string_length(e)) : NULL;
        if (x) json_array_append_new(arr, x);
    }
    json_object_set_new(st, "history", arr);
    console_respond_json(req, 200, st);
    cmulti_free(m);
}

void apijobs_one(console_t *c, http_req_t *req, const char *queue, const char *id)
{
    cmulti_t *m = cmulti_new(c, on_job_detail, NULL);
    if (!m) {
        console_respond_error(req, 503, "out of memory");
        return;
    }
    m->req = req;
    snprintf(m->a, sizeof m->a, "%s", queue);
    snprintf(m->b, sizeof m->b, "%s", id);
    char key[KEYS_MAX], suffix[KEYS_MAX];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    console_qkey(c, key, queue, suffix);
    const char *hg[] = {"HGETALL", key};
    cmulti_cmd(m, 2, hg);
    snprintf(suffix, sizeof suffix, "hist:%s", id);
    console_qkey(c, key, queue, suffix);
    const char *lr[] = {"LRANGE", key, "0", "-1"};
    cmulti_cmd(m, 4, lr);
    cmulti_go(m);
}

/* /api/v1/jobs/ID: which queue holds it? */
static void on_found(cmulti_t *m)
{
    http_req_t *req = m->req;
    if (api_down(m)) {
        json_decref(m->ctx);
        cmulti_free(m);
        return;
    }
    json_t *names = m->ctx;
    const char *queue = NULL;
    for (size_t i = 0; i < json_array_size(m->replies) && !queue; i++)
        if (json_integer_value(json_array_get(m->replies, i)) == 1) queue = api_jstr(names, i);
    if (queue)
        apijobs_one(m->con, req, queue, m->b);
    else
        console_respond_error(req, 404, "no such job");
    json_decref(names);
    cmulti_free(m);
}

static void on_find_names(cmulti_t *m)
{
    http_req_t *req = m->req;
    if (api_down(m)) {
        cmulti_free(m);
        return;
    }
    const json_t *set = json_array_get(m->replies, 0);
    json_t *names = json_array();
    cmulti_t *m2 = cmulti_new(m->con, on_found, names);
    m2->req = req;
    snprintf(m2->b, sizeof m2->b, "%s", m->b);
    for (size_t i = 0; i < json_array_size(set) && i < API_QUEUES_LISTED; i++) {
        const char *q = api_jstr(set, i);
        if (!api_queue_ok(q)) continue;
        json_array_append_new(names, json_string(q));
        char key[KEYS_MAX], suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "job:%s", m->b);
        console_qkey(m->con, key, q, suffix);
        const char *ex[] = {"EXISTS", key};
        cmulti_cmd(m2, 2, ex);
    }
    cmulti_free(m);
    cmulti_go(m2);
}

void apijobs_find(console_t *c, http_req_t *req, const char *id)
{
    cmulti_t *m = cmulti_new(c, on_find_names, NULL);
    if (!m) {
        console_respond_error(req, 503, "out of memory");
        return;
    }
    m->req = req;
    snprintf(m->b, sizeof m->b, "%s", id);
    char key[KEYS_MAX];
    console_key(c, key, "queues");
    const char *sm[] = {"SMEMBERS", key};
    cmulti_cmd(m, 2, sm);
    cmulti_go(m);
}
