/* api.c - see api.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jobd/client.h"
#include "jobd/version.h"
#include "keys.h"
#include "log.h"

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

const char *api_jstr(const json_t *a, size_t i)
{
    const char *s = json_string_value(json_array_get(a, i));
    return s ? s : "";
}

long long api_jint(const json_t *v)
{
    if (json_is_integer(v)) return (long long)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

json_t *api_time_json(const char *ms)
{
    long long v = ms && *ms ? strtoll(ms, NULL, 10) : 0;
    if (v <= 0) return json_null();
    char b[40];
    jobd_format_rfc3339(v, b, sizeof b);
    return json_string(b);
}

/* A stored JSON text as a value (or as a string if it is not JSON; null if
 * empty); over max bytes: {"truncated": true, "bytes": n}. */
json_t *api_json_text(const char *s, size_t len, size_t max)
{
    if (!s || !len) return json_null();
    if (max && len > max) return json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)len);
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    if (v) return v;
    v = json_stringn(s, len);
    return v ? v : json_null();
}

int api_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int api_down(cmulti_t *m)
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
                            json_integer(api_jint(json_array_get(r, (size_t)s))));
    json_object_set_new(o, "counts", counts);
    long long oldest = api_jint(json_array_get(r, 6));
    json_object_set_new(o, "oldest_age_s",
                        oldest < 0 ? json_null() : json_real((double)oldest / 1000.0));
    json_t *counters = json_object();
    const json_t *kv = json_array_get(r, 7);
    for (size_t i = 0; i + 1 < json_array_size(kv); i += 2)
        json_object_set_new(counters, api_jstr(kv, i),
                            json_integer(api_jint(json_array_get(kv, i + 1))));
    long long succ = api_jint(json_object_get(counters, "succeeded"));
    long long failed = api_jint(json_object_get(counters, "failed"));
    json_object_set_new(o, "counters", counters);
    const json_t *p = json_array_get(r, 8);
    long long paused = p ? api_jint(p) : -1;
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
            json_array_append_new(arr, queue_json(m->con, api_jstr(ov->names, i), r));
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
        const char *q = api_jstr(set, i);
        if (api_queue_ok(q) && (!ov->queue[0] || strcmp(q, ov->queue) == 0)) names[k++] = q;
    }
    if (names) qsort(names, k, sizeof *names, api_cmp_str);
    ov->names = json_array();
    for (size_t i = 0; i < k && i < API_QUEUES_LISTED; i++)
        json_array_append_new(ov->names, json_string(names[i]));
    free(names);
    cmulti_t *m2 = cmulti_new(c, on_overview_stats, ov);
    for (size_t i = 0; i < json_array_size(ov->names); i++) {
        proto_argv_t a;
        proto_argv_init(&a);
        cmulti_script(m2, PROTO_STATS, api_jstr(ov->names, i), &a);
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

void api_on_overview(console_t *c, json_t *v, void *arg)
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
        snprintf(name, sizeof name, "worker:%s", api_jstr(ids, i));
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

void api_on_workers(console_t *c, json_t *v, void *arg)
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
        json_object_set_new(o, "attempt", json_integer(api_jint(json_array_get(r, 2))));
        const char *w = json_string_value(json_array_get(r, 3));
        json_object_set_new(o, "worker", w ? json_string(w) : json_null());
        const char *e = json_string_value(json_array_get(r, 4));
        json_object_set_new(o, "error", e ? json_string(e) : json_null());
        const json_t *ck = json_array_get(r, 5), *res = json_array_get(r, 6);
        json_object_set_new(
            o, "checkpoint",
            api_json_text(json_string_value(ck), json_string_length(ck), CKPT_BRIEF_MAX));
        json_object_set_new(
            o, "result",
            api_json_text(json_string_value(res), json_string_length(res), CKPT_BRIEF_MAX));
        json_object_set_new(o, "history_len",
                            json_integer(api_jint(json_array_get(m->replies, 1))));
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

/* ---- routing ---- */

void api_info(console_t *c, http_req_t *req)
{
    char tok[9];
    int writable = admin_check(&c->admin, "", tok) != ADMIN_READ_ONLY;
    console_respond_json(req, 200,
                         json_pack("{s:s, s:s, s:s, s:b, s:s?}", "version", JOBD_VERSION, "worker",
                                   c->cfg->worker_id, "prefix", c->cfg->prefix, "writable",
                                   writable, "read_only_why",
                                   writable ? NULL : admin_why(&c->admin)));
}
