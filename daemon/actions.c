/* actions.c - see actions.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "api.h"
#include "jobd/client.h"
#include "keys.h"
#include "log.h"

#define ACTION_SLICES 1000 /* purge and retry-dead: at most this many script calls */
#define ACTION_SLICE 500

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

static void note_action(console_t *c, http_req_t *req, const action_t *a, const char *result)
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
        note_action(c, req, a, msg);
        console_respond_error(req, m->down ? 503 : 500, msg);
        goto done;
    }
    long long n = json_is_array(r) ? api_jint(json_array_get(r, 0)) : api_jint(r);
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
        const char *st = api_jstr(r, 1);
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
    note_action(c, req, a, res);
    console_respond_json(req, code, out);
done:
    free(a);
    cmulti_free(m);
}

void actions_run(console_t *c, http_req_t *req, const char *what, const char *queue, const char *id)
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
