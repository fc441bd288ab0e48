/* api.c - see api.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "envelope.h"
#include "history.h"
#include "jobd/version.h"
#include "keys.h"
#include "log.h"

#define MAX_QUEUES_LISTED 500
#define LIST_LIMIT_MAX 100
#define ACTION_SLICES 1000 /* purge and retry-dead: at most this many script calls */
#define ACTION_SLICE 500
#define CKPT_BRIEF_MAX 8192 /* a checkpoint or result shown live, bytes */

/* ---- small helpers ---- */

int api_queue_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int api_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > JOBD_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-' ||
              s[i] == ':'))
            return 0;
    return 1;
}

static const char *jstr(const json_t *a, size_t i)
{
    const char *s = json_string_value(json_array_get(a, i));
    return s ? s : "";
}

static long long jint(const json_t *v)
{
    if (json_is_integer(v)) return (long long)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static json_t *time_json(const char *ms)
{
    long long v = ms && *ms ? strtoll(ms, NULL, 10) : 0;
    if (v <= 0) return json_null();
    char b[40];
    jobd_format_rfc3339(v, b, sizeof b);
    return json_string(b);
}

/* A stored JSON text as a value (or as a string if it is not JSON; null if
 * empty); over max bytes: {"truncated": true, "bytes": n}. */
static json_t *json_text(const char *s, size_t len, size_t max)
{
    if (!s || !len) return json_null();
    if (max && len > max) return json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)len);
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    if (v) return v;
    v = json_stringn(s, len);
    return v ? v : json_null();
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int down(cmulti_t *m)
{
    if (!m->down) return 0;
    if (m->req) console_respond_error(m->req, 503, "Redis is not ready; try again");
    return 1;
}

/* ---- the overview ---- */

typedef struct {
    api_json_cb cb;
    void *arg;
    char queue[129]; /* "" for all */
    json_t *names;   /* sorted queue names */
} overview_t;

static json_t *queue_json(console_t *c, const char *name, const json_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_t *counts = json_object();
    for (int s = 0; s < JOBD_NSTATES; s++)
        json_object_set_new(counts, jobd_state_name((jobd_state_t)s),
                            json_integer(jint(json_array_get(r, (size_t)s))));
    json_object_set_new(o, "counts", counts);
    long long oldest = jint(json_array_get(r, 6));
    json_object_set_new(o, "oldest_age_s",
                        oldest < 0 ? json_null() : json_real((double)oldest / 1000.0));
    json_t *counters = json_object();
    const json_t *kv = json_array_get(r, 7);
    for (size_t i = 0; i + 1 < json_array_size(kv); i += 2)
        json_object_set_new(counters, jstr(kv, i), json_integer(jint(json_array_get(kv, i + 1))));
    long long succ = jint(json_object_get(counters, "succeeded"));
    long long failed = jint(json_object_get(counters, "failed"));
    json_object_set_new(o, "counters", counters);
    const json_t *p = json_array_get(r, 8);
    long long paused = p ? jint(p) : -1;
    json_object_set_new(o, "paused", json_boolean(paused >= 0));
    json_object_set_new(o, "paused_for_s",
                        paused < 0 ? json_null() : json_real((double)paused / 1000.0));
    console_sample(c, name, succ, failed);
    console_series_json(c, name, o);
    return o;
}

static void on_overview_stats(cmulti_t *m)
{
    overview_t *ov = m->ctx;
    json_t *arr = NULL;
    if (!m->down) {
        arr = json_array();
        for (size_t i = 0; i < json_array_size(ov->names); i++) {
            const json_t *r = json_array_get(m->replies, i);
            if (!json_is_array(r) || json_array_size(r) < 8) continue;
            json_array_append_new(arr, queue_json(m->con, jstr(ov->names, i), r));
        }
    }
    ov->cb(m->con, arr, ov->arg);
    json_decref(ov->names);
    free(ov);
    cmulti_free(m);
}

static void on_overview_names(cmulti_t *m)
{
    overview_t *ov = m->ctx;
    console_t *c = m->con;
    if (m->down) {
        ov->cb(c, NULL, ov->arg);
        free(ov);
        cmulti_free(m);
        return;
    }
    const json_t *set = json_array_get(m->replies, 0);
    size_t n = json_array_size(set);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    size_t k = 0;
    for (size_t i = 0; names && i < n; i++) {
        const char *q = jstr(set, i);
        if (api_queue_ok(q) && (!ov->queue[0] || strcmp(q, ov->queue) == 0)) names[k++] = q;
    }
    if (names) qsort(names, k, sizeof *names, cmp_str);
    ov->names = json_array();
    for (size_t i = 0; i < k && i < MAX_QUEUES_LISTED; i++)
        json_array_append_new(ov->names, json_string(names[i]));
    free(names);
    cmulti_t *m2 = cmulti_new(c, on_overview_stats, ov);
    for (size_t i = 0; i < json_array_size(ov->names); i++) {
        proto_argv_t a;
        proto_argv_init(&a);
        cmulti_script(m2, PROTO_STATS, jstr(ov->names, i), &a);
        proto_argv_free(&a);
    }
    cmulti_free(m);
    cmulti_go(m2);
}

void api_fetch_overview(console_t *c, const char *queue, api_json_cb cb, void *arg)
{
    overview_t *ov = calloc(1, sizeof *ov);
    cmulti_t *m = ov ? cmulti_new(c, on_overview_names, ov) : NULL;
    if (!m) {
        free(ov);
        cb(c, NULL, arg);
        return;
    }
    ov->cb = cb;
    ov->arg = arg;
    snprintf(ov->queue, sizeof ov->queue, "%s", queue ? queue : "");
    char key[KEYS_MAX];
    console_key(c, key, "queues");
    const char *argv[] = {"SMEMBERS", key};
    cmulti_cmd(m, 2, argv);
    cmulti_go(m);
}

static void on_overview_answer(console_t *c, json_t *v, void *arg)
{
    (void)c;
    http_req_t *req = arg;
    if (!v) {
        console_respond_error(req, 503, "Redis is not ready; try again");
        return;
    }
    /* /api/v1/queues/Q answers the queue's object, or 404. */
    if (req->path[strlen("/api/v1/queues")] == '/') {
        json_t *q = json_incref(json_array_get(v, 0));
        json_decref(v);
        if (!q) {
            console_respond_error(req, 404, "no such queue");
            return;
        }
        console_respond_json(req, 200, q);
        return;
    }
    console_respond_json(req, 200, json_pack("{s:o}", "queues", v));
}

/* ---- workers ---- */

typedef struct {
    api_json_cb cb;
    void *arg;
} fetch_t;

static void on_worker_records(cmulti_t *m)
{
    fetch_t *f = m->ctx;
    json_t *arr = NULL;
    if (!m->down) {
        arr = json_array();
        for (size_t i = 0; i < json_array_size(m->replies); i++) {
            const char *s = json_string_value(json_array_get(m->replies, i));
            json_t *w = s ? json_loads(s, 0, NULL) : NULL; /* expired: gone */
            if (json_is_object(w))
                json_array_append_new(arr, w);
            else
                json_decref(w);
        }
    }
    f->cb(m->con, arr, f->arg);
    free(f);
    cmulti_free(m);
}

static void on_worker_ids(cmulti_t *m)
{
    fetch_t *f = m->ctx;
    console_t *c = m->con;
    if (m->down) {
        f->cb(c, NULL, f->arg);
        free(f);
        cmulti_free(m);
        return;
    }
    const json_t *ids = json_array_get(m->replies, 0);
    cmulti_t *m2 = cmulti_new(c, on_worker_records, f);
    for (size_t i = 0; i < json_array_size(ids) && i < 1000; i++) {
        char name[KEYS_MAX], key[KEYS_MAX];
        snprintf(name, sizeof name, "worker:%s", jstr(ids, i));
        console_key(c, key, name);
        const char *argv[] = {"GET", key};
        cmulti_cmd(m2, 2, argv);
    }
    cmulti_free(m);
    cmulti_go(m2);
}

void api_fetch_workers(console_t *c, api_json_cb cb, void *arg)
{
    fetch_t *f = calloc(1, sizeof *f);
    cmulti_t *m = f ? cmulti_new(c, on_worker_ids, f) : NULL;
    if (!m) {
        free(f);
        cb(c, NULL, arg);
        return;
    }
    f->cb = cb;
    f->arg = arg;
    char key[KEYS_MAX];
    console_key(c, key, "workers");
    const char *argv[] = {"ZRANGE", key, "0", "-1"};
    cmulti_cmd(m, 4, argv);
    cmulti_go(m);
}

static void on_json_answer(console_t *c, json_t *v, void *arg)
{
    (void)c;
    http_req_t *req = arg;
    if (!v)
        console_respond_error(req, 503, "Redis is not ready; try again");
    else
        console_respond_json(req, 200, json_pack("{s:o}", "workers", v));
}

/* ---- a job's live fields ---- */

static void on_job_brief(cmulti_t *m)
{
    fetch_t *f = m->ctx;
    json_t *o = NULL;
    if (!m->down) {
        const json_t *r = json_array_get(m->replies, 0);
        o = json_object();
        json_object_set_new(o, "queue", json_string(m->a));
        json_object_set_new(o, "id", json_string(m->b));
        const char *state = json_string_value(json_array_get(r, 0));
        json_object_set_new(o, "state", state ? json_string(state) : json_null());
        const char *p = json_string_value(json_array_get(r, 1));
        json_object_set_new(o, "progress", json_real(p ? strtod(p, NULL) : 0));
        json_object_set_new(o, "attempt", json_integer(jint(json_array_get(r, 2))));
        const char *w = json_string_value(json_array_get(r, 3));
        json_object_set_new(o, "worker", w ? json_string(w) : json_null());
        const char *e = json_string_value(json_array_get(r, 4));
        json_object_set_new(o, "error", e ? json_string(e) : json_null());
        const json_t *ck = json_array_get(r, 5), *res = json_array_get(r, 6);
        json_object_set_new(
            o, "checkpoint",
            json_text(json_string_value(ck), json_string_length(ck), CKPT_BRIEF_MAX));
        json_object_set_new(
            o, "result",
            json_text(json_string_value(res), json_string_length(res), CKPT_BRIEF_MAX));
        json_object_set_new(o, "history_len", json_integer(jint(json_array_get(m->replies, 1))));
    }
    f->cb(m->con, o, f->arg);
    free(f);
    cmulti_free(m);
}

void api_fetch_job_brief(console_t *c, const char *queue, const char *id, api_json_cb cb, void *arg)
{
    fetch_t *f = calloc(1, sizeof *f);
    cmulti_t *m = f ? cmulti_new(c, on_job_brief, f) : NULL;
    if (!m) {
        free(f);
        cb(c, NULL, arg);
        return;
    }
    f->cb = cb;
    f->arg = arg;
    snprintf(m->a, sizeof m->a, "%s", queue);
    snprintf(m->b, sizeof m->b, "%s", id);
    char key[KEYS_MAX], suffix[KEYS_MAX];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    console_qkey(c, key, queue, suffix);
    const char *hm[] = {"HMGET",  key,     "state",      "progress", "attempt",
                        "worker", "error", "checkpoint", "result"};
    cmulti_cmd(m, 9, hm);
    snprintf(suffix, sizeof suffix, "hist:%s", id);
    console_qkey(c, key, queue, suffix);
    const char *ll[] = {"LLEN", key};
    cmulti_cmd(m, 2, ll);
    cmulti_go(m);
}

/* ---- jobs of a queue ---- */

typedef struct {
    char queue[129];
    char state[32];
    long long offset, limit, total;
} list_t;

static json_t *peeked_job(const json_t *r, size_t i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(jstr(r, i)));
    const char *st = jstr(r, i + 1);
    json_object_set_new(o, "state", *st ? json_string(st) : json_null());
    json_object_set_new(o, "attempt", json_integer(jint(json_array_get(r, i + 2))));
    json_object_set_new(o, "progress", json_real(strtod(jstr(r, i + 3), NULL)));
    const char *e = jstr(r, i + 4);
    json_object_set_new(o, "error", *e ? json_string(e) : json_null());
    const char *w = jstr(r, i + 5);
    json_object_set_new(o, "worker", *w ? json_string(w) : json_null());
    json_object_set_new(o, "started_at", time_json(jstr(r, i + 6)));
    json_object_set_new(o, "finished_at", time_json(jstr(r, i + 7)));
    const char *ty = jstr(r, i + 8), *cr = jstr(r, i + 9);
    json_object_set_new(o, "type", *ty ? json_string(ty) : json_null());
    json_object_set_new(o, "created_at", *cr ? json_string(cr) : json_null());
    return o;
}

static void on_peeked(cmulti_t *m)
{
    list_t *l = m->ctx;
    if (!down(m)) {
        const json_t *r = json_array_get(m->replies, 0);
        json_t *jobs = json_array();
        for (size_t i = 0; i + 9 < json_array_size(r); i += 10)
            if (*jstr(r, i + 1)) json_array_append_new(jobs, peeked_job(r, i));
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
        proto_argv_adds(&a, jstr(ids, i));
    if (json_array_size(ids) > 0) cmulti_script(m, PROTO_PEEK, l->queue, &a);
    proto_argv_free(&a);
    cmulti_go(m);
}

static void on_list_ids(cmulti_t *m)
{
    list_t *l = m->ctx;
    http_req_t *req = m->req;
    if (down(m)) {
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
        l->total = jint(json_array_get(m->replies, 0));
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

static void api_jobs(console_t *c, http_req_t *req, const char *queue)
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
    if (down(m)) {
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
        f[i] = jstr(h, 2 * i);
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

static void api_job(console_t *c, http_req_t *req, const char *queue, const char *id)
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
    if (down(m)) {
        json_decref(m->ctx);
        cmulti_free(m);
        return;
    }
    json_t *names = m->ctx;
    const char *queue = NULL;
    for (size_t i = 0; i < json_array_size(m->replies) && !queue; i++)
        if (json_integer_value(json_array_get(m->replies, i)) == 1) queue = jstr(names, i);
    if (queue)
        api_job(m->con, req, queue, m->b);
    else
        console_respond_error(req, 404, "no such job");
    json_decref(names);
    cmulti_free(m);
}

static void on_find_names(cmulti_t *m)
{
    http_req_t *req = m->req;
    if (down(m)) {
        cmulti_free(m);
        return;
    }
    const json_t *set = json_array_get(m->replies, 0);
    json_t *names = json_array();
    cmulti_t *m2 = cmulti_new(m->con, on_found, names);
    m2->req = req;
    snprintf(m2->b, sizeof m2->b, "%s", m->b);
    for (size_t i = 0; i < json_array_size(set) && i < MAX_QUEUES_LISTED; i++) {
        const char *q = jstr(set, i);
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

static void api_find_job(console_t *c, http_req_t *req, const char *id)
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

/* ---- write actions ---- */

typedef struct {
    char what[32]; /* "pause", "purge", "cancel", ... */
    char queue[129];
    char id[JOBD_ID_LEN + 1];
    char state[32]; /* purge */
    char tokid[9];
    long long total;
    int steps;
} action_t;

/* Checks the bearer token. Returns 0, or -1 after answering 401/403. */
static int authorise(console_t *c, http_req_t *req, const char *what, const char *target,
                     char *tokid)
{
    admin_verdict_t v = admin_check(&c->admin, req->auth, tokid);
    if (v == ADMIN_OK) return 0;
    c->stats.admin_refused++;
    static uint64_t last_log;
    uint64_t now = uv_now(c->loop);
    const char *why = v == ADMIN_READ_ONLY  ? admin_why(&c->admin)
                      : v == ADMIN_NO_TOKEN ? "no bearer token"
                                            : "the bearer token does not match";
    if (!last_log || now - last_log >= 1000) {
        last_log = now;
        log_warn("console: refused %s %s from %s: %s%s%s (%lld refused so far; logged at most "
                 "every second)",
                 what, target, req->peer, why, v == ADMIN_BAD_TOKEN ? ", token id " : "",
                 v == ADMIN_BAD_TOKEN ? tokid : "", c->stats.admin_refused);
    }
    if (v == ADMIN_READ_ONLY) {
        console_respond_error(req, 403, why);
        return -1;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "%s: send Authorization: Bearer TOKEN", why);
    char *text = NULL;
    json_t *o = json_pack("{s:s}", "error", msg);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    http_respond(req, 401, "application/json", text ? text : "{}", text ? strlen(text) : 2,
                 "WWW-Authenticate: Bearer realm=\"jobd\"\r\n");
    free(text);
    return -1;
}

static void log_action(console_t *c, http_req_t *req, const action_t *a, const char *result)
{
    c->stats.admin_actions++;
    const char *target = a->id[0] ? a->id : a->queue;
    log_info("console: %s %s%s by token %s from %s: %s", a->what, a->id[0] ? "job " : "queue ",
             target, a->tokid, req->peer, result);
}

static void on_action(cmulti_t *m);

/* Sends the next script call of action a. */
static void action_step(console_t *c, http_req_t *req, action_t *a)
{
    cmulti_t *m = cmulti_new(c, on_action, a);
    if (!m) {
        free(a);
        console_respond_error(req, 503, "out of memory");
        return;
    }
    m->req = req;
    proto_argv_t args;
    proto_argv_init(&args);
    if (strcmp(a->what, "pause") == 0 || strcmp(a->what, "resume") == 0) {
        proto_argv_adds(&args, a->what[0] == 'p' ? "1" : "0");
        cmulti_script(m, PROTO_PAUSE, a->queue, &args);
        char key[KEYS_MAX];
        console_key(c, key, "queues");
        const char *sa[] = {"SADD", key, a->queue};
        cmulti_cmd(m, 3, sa);
    } else if (strcmp(a->what, "purge") == 0) {
        proto_argv_adds(&args, a->state);
        proto_argv_addll(&args, ACTION_SLICE);
        cmulti_script(m, PROTO_PURGE, a->queue, &args);
    } else if (strcmp(a->what, "retry-dead") == 0) {
        proto_argv_adds(&args, "");
        proto_argv_addll(&args, ACTION_SLICE);
        cmulti_script(m, PROTO_RETRY, a->queue, &args);
    } else if (strcmp(a->what, "retry") == 0) {
        proto_argv_adds(&args, a->id);
        proto_argv_addll(&args, 1);
        cmulti_script(m, PROTO_RETRY, a->queue, &args);
    } else if (strcmp(a->what, "cancel") == 0) {
        proto_argv_adds(&args, a->id);
        proto_argv_addll(&args, c->cfg->ttl_dead_ms);
        cmulti_script(m, PROTO_CANCEL, a->queue, &args);
    } else { /* delete */
        proto_argv_adds(&args, a->id);
        cmulti_script(m, PROTO_DELETE, a->queue, &args);
    }
    proto_argv_free(&args);
    a->steps++;
    cmulti_go(m);
}

static void on_action(cmulti_t *m)
{
    action_t *a = m->ctx;
    http_req_t *req = m->req;
    console_t *c = m->con;
    const json_t *r = json_array_get(m->replies, 0);
    if (m->down || json_object_get(r, "error")) {
        const char *e = json_string_value(json_object_get(r, "error"));
        char msg[512];
        snprintf(msg, sizeof msg, "%s failed: %s", a->what, e ? e : "Redis is not ready");
        log_action(c, req, a, msg);
        console_respond_error(req, m->down ? 503 : 500, msg);
        goto done;
    }
    long long n = json_is_array(r) ? jint(json_array_get(r, 0)) : jint(r);
    char res[256];
    int code = 200;
    json_t *out = NULL;
    if (strcmp(a->what, "pause") == 0 || strcmp(a->what, "resume") == 0) {
        int paused = a->what[0] == 'p';
        snprintf(res, sizeof res, "%s",
                 n ? (paused ? "paused" : "resumed")
                   : (paused ? "was paused already" : "was not paused"));
        out = json_pack("{s:s, s:b, s:b}", "queue", a->queue, "paused", paused, "changed", n == 1);
    } else if (strcmp(a->what, "purge") == 0 || strcmp(a->what, "retry-dead") == 0) {
        a->total += n;
        if (n > 0 && a->steps < ACTION_SLICES) {
            cmulti_free(m);
            action_step(c, req, a); /* the next slice */
            return;
        }
        snprintf(res, sizeof res, "%lld jobs", a->total);
        out = strcmp(a->what, "purge") == 0
                  ? json_pack("{s:s, s:s, s:I}", "queue", a->queue, "state", a->state, "deleted",
                              (json_int_t)a->total)
                  : json_pack("{s:s, s:I}", "queue", a->queue, "retried", (json_int_t)a->total);
    } else if (strcmp(a->what, "retry") == 0) {
        code = n == -2 ? 404 : n == -1 ? 409 : 200;
        snprintf(res, sizeof res, "%s", n == -2 ? "no such job" : n == -1 ? "not dead" : "queued");
        out = code == 200
                  ? json_pack("{s:s, s:s}", "id", a->id, "state", "queued")
                  : json_pack("{s:s}", "error", n == -2 ? "no such job" : "the job is not dead");
    } else if (strcmp(a->what, "cancel") == 0) {
        const char *st = jstr(r, 1);
        code = n == 0 ? 404 : n == 3 ? 409 : 200;
        snprintf(res, sizeof res, "%s",
                 n == 0   ? "no such job"
                 : n == 3 ? "already finished"
                 : n == 2 ? "cancel requested (active)"
                          : "canceled");
        if (code == 200)
            out = json_pack("{s:s, s:s, s:b}", "id", a->id, "state", n == 1 ? "canceled" : st,
                            "cancel_requested", n == 2);
        else
            out = json_pack("{s:s}", "error", n == 0 ? "no such job" : "already finished");
    } else { /* delete */
        code = n == 0 ? 404 : n < 0 ? 409 : 200;
        snprintf(res, sizeof res, "%s",
                 n == 0  ? "no such job"
                 : n < 0 ? "refused: active"
                         : "deleted");
        out = code == 200 ? json_pack("{s:s, s:b}", "id", a->id, "deleted", 1)
                          : json_pack("{s:s}", "error",
                                      n == 0 ? "no such job"
                                             : "the job is active: cancel it "
                                               "first");
    }
    log_action(c, req, a, res);
    console_respond_json(req, code, out);
done:
    free(a);
    cmulti_free(m);
}

static void api_action(console_t *c, http_req_t *req, const char *what, const char *queue,
                       const char *id)
{
    action_t *a = calloc(1, sizeof *a);
    if (!a) {
        console_respond_error(req, 503, "out of memory");
        return;
    }
    snprintf(a->what, sizeof a->what, "%s", what);
    snprintf(a->queue, sizeof a->queue, "%s", queue);
    if (id) snprintf(a->id, sizeof a->id, "%s", id);
    if (strcmp(what, "purge") == 0) {
        char st[32] = "";
        if (http_query_get(req->query, "state", st, sizeof st) < 0 && req->body) {
            json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
            const char *s = json_string_value(json_object_get(b, "state"));
            snprintf(st, sizeof st, "%s", s ? s : "");
            json_decref(b);
        }
        int s = jobd_state_parse(st);
        if (s < 0 || s == JOBD_ACTIVE) {
            free(a);
            console_respond_error(req, 400,
                                  "purge needs a state: dead, succeeded, queued, "
                                  "scheduled or canceled");
            return;
        }
        snprintf(a->state, sizeof a->state, "%s", st);
    }
    if (authorise(c, req, what, id ? id : queue, a->tokid) < 0) {
        free(a);
        return;
    }
    if (!rq_ready(c->rq)) {
        free(a);
        console_respond_error(req, 503, "Redis is not ready; try again");
        return;
    }
    action_step(c, req, a);
}

/* ---- routing ---- */

static void info(console_t *c, http_req_t *req)
{
    char tok[9];
    int writable = admin_check(&c->admin, "", tok) != ADMIN_READ_ONLY;
    console_respond_json(req, 200,
                         json_pack("{s:s, s:s, s:s, s:b, s:s?}", "version", JOBD_VERSION, "worker",
                                   c->cfg->worker_id, "prefix", c->cfg->prefix, "writable",
                                   writable, "read_only_why",
                                   writable ? NULL : admin_why(&c->admin)));
}

void api_route(console_t *c, http_req_t *req)
{
    /* Segments after /api/v1/. */
    char path[HTTP_URL_MAX];
    snprintf(path, sizeof path, "%s", req->path);
    if (strncmp(path, "/api/v1/", 8) != 0) {
        console_respond_error(req, 404, "no such endpoint");
        return;
    }
    char *seg[8] = {0};
    int n = 0;
    for (char *p = path + 8, *save = NULL, *t; n < 8 && (t = strtok_r(p, "/", &save)); p = NULL)
        seg[n++] = t;
    int get = req->method == HTTP_M_GET || req->method == HTTP_M_HEAD;
    int post = req->method == HTTP_M_POST;
    const char *q = n >= 2 ? seg[1] : NULL;
    if (q && strcmp(seg[0], "queues") == 0 && !api_queue_ok(q)) {
        console_respond_error(req, 400, "not a queue name: [A-Za-z0-9._-]{1,128}");
        return;
    }
    const char *id = n >= 4 && strcmp(seg[0], "queues") == 0 ? seg[3]
                     : n >= 2 && strcmp(seg[0], "jobs") == 0 ? seg[1]
                                                             : NULL;
    if (id && !api_id_ok(id)) {
        console_respond_error(req, 400, "not a job id: [A-Za-z0-9._:-]{1,36}");
        return;
    }
    if (n == 1 && strcmp(seg[0], "info") == 0 && get) {
        info(c, req);
    } else if (n == 1 && strcmp(seg[0], "queues") == 0 && get) {
        api_fetch_overview(c, NULL, on_overview_answer, req);
    } else if (n == 1 && strcmp(seg[0], "workers") == 0 && get) {
        api_fetch_workers(c, on_json_answer, req);
    } else if (n == 2 && strcmp(seg[0], "jobs") == 0 && get) {
        api_find_job(c, req, id);
    } else if (n == 2 && strcmp(seg[0], "queues") == 0 && get) {
        api_fetch_overview(c, q, on_overview_answer, req);
    } else if (n == 3 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && get) {
        api_jobs(c, req, q);
    } else if (n == 3 && strcmp(seg[0], "queues") == 0 && post &&
               (strcmp(seg[2], "pause") == 0 || strcmp(seg[2], "resume") == 0 ||
                strcmp(seg[2], "purge") == 0 || strcmp(seg[2], "retry-dead") == 0)) {
        api_action(c, req, seg[2], q, NULL);
    } else if (n == 4 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && get) {
        api_job(c, req, q, id);
    } else if (n == 4 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 &&
               req->method == HTTP_M_DELETE) {
        api_action(c, req, "delete", q, id);
    } else if (n == 5 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && post &&
               (strcmp(seg[4], "retry") == 0 || strcmp(seg[4], "cancel") == 0 ||
                strcmp(seg[4], "delete") == 0)) {
        api_action(c, req, seg[4], q, id);
    } else {
        /* A known path with the wrong method gets 405, anything else 404. */
        int known =
            (n == 1 && (strcmp(seg[0], "queues") == 0 || strcmp(seg[0], "workers") == 0 ||
                        strcmp(seg[0], "info") == 0)) ||
            (n >= 2 && n <= 5 && (strcmp(seg[0], "queues") == 0 || strcmp(seg[0], "jobs") == 0));
        if (known) {
            char *text = NULL;
            json_t *o = json_pack("{s:s}", "error", "method not allowed");
            text = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            http_respond(req, 405, "application/json", text, strlen(text),
                         (n == 3 && strcmp(seg[2], "jobs") != 0) || n == 5 ? "Allow: POST\r\n"
                         : n == 4 ? "Allow: GET, HEAD, DELETE\r\n"
                                  : "Allow: GET, HEAD\r\n");
            free(text);
        } else {
            console_respond_error(req, 404, "no such endpoint");
        }
    }
}
