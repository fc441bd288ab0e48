/* console_base.c - see console_base.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_base.h"
#include "jobd/client.h"
#include "keys.h"
#include "log.h"

/* ---- keys and answers ---- */

void console_key(const console_t *c, char *out, const char *name)
{
    keys_global(out, c->cfg->prefix, name);
}

void console_qkey(const console_t *c, char *out, const char *queue, const char *suffix)
{
    keys_queue_key(out, c->cfg->prefix, queue, suffix);
}

void console_respond_json(http_req_t *req, int code, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(v);
    if (!text) {
        http_respond_text(req, 500, "application/json", "{\"error\":\"out of memory\"}\n");
        return;
    }
    size_t n = strlen(text);
    text[n] = '\0';
    http_respond(req, code, "application/json", text, n, "X-Content-Type-Options: nosniff\r\n");
    free(text);
}

void console_respond_error(http_req_t *req, int code, const char *msg)
{
    console_respond_json(req, code, json_pack("{s:s}", "error", msg));
}

/* ---- Redis replies ---- */

/* Recursive over nested arrays; a reply nests as deep as our scripts make
 * it (two levels), so the depth is bounded. */
json_t *console_reply_json(const redisReply *r) // NOLINT(misc-no-recursion)
{
    if (!r) return json_null();
    switch (r->type) {
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++)
            json_array_append_new(a,
                                  console_reply_json(r->element[i])); // NOLINT(misc-no-recursion)
        return a;
    }
    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: {
        json_t *s = json_stringn(r->str, r->len);
        return s ? s : json_null();
    }
    case REDIS_REPLY_ERROR: {
        json_t *s = json_stringn(r->str, r->len);
        return json_pack("{s:o}", "error", s ? s : json_string("(not UTF-8)"));
    }
    default:
        return json_null();
    }
}

typedef struct {
    cmulti_t *m;
    int slot;
} cmulti_req_t;

static void cmulti_check(cmulti_t *m)
{
    if (--m->pending == 0) m->done(m);
}

static void on_cmulti_reply(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    cmulti_req_t *cr = arg;
    cmulti_t *m = cr->m;
    if (!r) m->down = 1;
    json_array_set_new(m->replies, (size_t)cr->slot, console_reply_json(r));
    free(cr);
    cmulti_check(m);
}

cmulti_t *cmulti_new(console_t *con, cmulti_cb done, void *ctx)
{
    cmulti_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->con = con;
    m->done = done;
    m->ctx = ctx;
    m->pending = 1; /* cmulti_go's */
    m->replies = json_array();
    return m;
}

static cmulti_req_t *slot(cmulti_t *m)
{
    json_array_append_new(m->replies, json_null());
    cmulti_req_t *cr = malloc(sizeof *cr);
    if (!cr) {
        m->down = 1;
        m->n++;
        return NULL;
    }
    cr->m = m;
    cr->slot = m->n++;
    return cr;
}

void cmulti_cmd(cmulti_t *m, int argc, const char *const argv[])
{
    cmulti_req_t *cr = slot(m);
    if (!cr) return;
    size_t lens[16];
    for (int i = 0; i < argc && i < 16; i++)
        lens[i] = strlen(argv[i]);
    m->pending++;
    if (argc > 16 ||
        rq_command(m->con->rq, argc, (const char **)argv, lens, on_cmulti_reply, cr) < 0) {
        free(cr);
        m->down = 1;
        m->pending--;
    }
}

void cmulti_script(cmulti_t *m, proto_script_t s, const char *queue, proto_argv_t *args)
{
    cmulti_req_t *cr = slot(m);
    if (!cr) {
        proto_argv_reset(args);
        return;
    }
    m->pending++;
    if (rq_script(m->con->rq, s, queue, args, on_cmulti_reply, cr) < 0) {
        free(cr);
        m->down = 1;
        m->pending--;
    }
}

void cmulti_go(cmulti_t *m)
{
    cmulti_check(m);
}

void cmulti_free(cmulti_t *m)
{
    if (!m) return;
    json_decref(m->replies);
    free(m);
}

/* ---- throughput samples ---- */

static console_series_t *series_of(console_t *c, const char *queue, int create)
{
    for (int i = 0; i < c->nseries; i++)
        if (strcmp(c->series[i].name, queue) == 0) return &c->series[i];
    if (!create || c->nseries >= CONSOLE_MAX_QUEUES) return NULL;
    console_series_t *s = &c->series[c->nseries++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", queue);
    return s;
}

/* The i-th sample, oldest first. */
static const console_sample_t *sample_at(const console_series_t *s, int i)
{
    return &s->s[(s->head + i) % CONSOLE_SAMPLES];
}

void console_sample(console_t *c, const char *queue, long long succeeded, long long failed)
{
    console_series_t *s = series_of(c, queue, 1);
    if (!s) return;
    int64_t now = jobd_now_ms();
    if (s->n && now - sample_at(s, s->n - 1)->t_ms < CONSOLE_SAMPLE_MS - 250) return;
    console_sample_t v = {now, succeeded, failed};
    if (s->n < CONSOLE_SAMPLES) {
        s->s[(s->head + s->n) % CONSOLE_SAMPLES] = v;
        s->n++;
    } else {
        s->s[s->head] = v;
        s->head = (s->head + 1) % CONSOLE_SAMPLES;
    }
}

void console_series_json(const console_t *c, const char *queue, json_t *o)
{
    const console_series_t *s = NULL;
    for (int i = 0; i < c->nseries; i++)
        if (strcmp(c->series[i].name, queue) == 0) s = &c->series[i];
    json_t *t = json_array(), *ok = json_array(), *bad = json_array();
    double tput = 0;
    json_t *erate = json_null();
    if (s && s->n >= 2) {
        const console_sample_t *last = sample_at(s, s->n - 1);
        for (int i = 1; i < s->n; i++) {
            const console_sample_t *a = sample_at(s, i - 1), *b = sample_at(s, i);
            double dt = (double)(b->t_ms - a->t_ms) / 1000.0;
            if (dt <= 0) continue;
            json_array_append_new(t, json_integer(b->t_ms));
            /* A counter that went down (the queue's stats were reset) is
             * no negative rate. */
            long long ds = b->succeeded - a->succeeded, df = b->failed - a->failed;
            json_array_append_new(ok, json_real(ds > 0 ? (double)ds / dt : 0));
            json_array_append_new(bad, json_real(df > 0 ? (double)df / dt : 0));
        }
        /* Over the last minute (or what we have of it). */
        const console_sample_t *m1 = NULL, *m5 = NULL;
        for (int i = 0; i < s->n; i++) {
            const console_sample_t *x = sample_at(s, i);
            if (!m5 && last->t_ms - x->t_ms <= 300000) m5 = x;
            if (!m1 && last->t_ms - x->t_ms <= 60000) m1 = x;
        }
        if (m1 && m1 != last && last->succeeded >= m1->succeeded)
            tput = (double)(last->succeeded - m1->succeeded) * 1000.0 /
                   (double)(last->t_ms - m1->t_ms);
        if (m5 && m5 != last) {
            long long ds = last->succeeded - m5->succeeded, df = last->failed - m5->failed;
            if (ds >= 0 && df >= 0 && ds + df > 0) {
                json_decref(erate);
                erate = json_real((double)df / (double)(ds + df));
            }
        }
    }
    json_object_set_new(o, "throughput_per_s", json_real(tput));
    json_object_set_new(o, "error_rate", erate);
    json_object_set_new(o, "series",
                        json_pack("{s:o, s:o, s:o}", "t", t, "succeeded", ok, "failed", bad));
}

void console_watch(console_t *c)
{
    c->watched_ms = uv_now(c->loop);
}
