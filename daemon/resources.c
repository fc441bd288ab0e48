/* resources.c - see resources.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "resources.h"

#define MAX_NAMES 32 /* resources one handler may name (acquire.lua: 2 KEYS each) */

/* What an acquire call must find again when its reply comes. */
typedef struct {
    resources_t *r;
    const handler_t *handler; /* outlives the loop */
    char id[JOBD_ID_LEN + 1];
    char token[JOB_TOKEN_MAX];
    int renew;
} acquire_req_t;

void resources_init(resources_t *r, const config_t *cfg, rq_t *rq, lease_t *lease,
                    const resources_cbs_t *cbs)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->rq = rq;
    r->lease = lease;
    r->cbs = *cbs;
}

/* Builds the keys and arguments for acquire.lua (renew: a holder's
 * renewal) or unacquire.lua. */
static int resource_call(resources_t *r, const handler_t *h, const char *id, proto_script_t s,
                         int renew, rq_reply_cb cb, void *arg)
{
    const char *keys[2 * MAX_NAMES];
    char keybuf[2 * MAX_NAMES][KEYS_MAX];
    int n = 0;
    proto_argv_t a;
    proto_argv_init(&a);
    char holder[256];
    snprintf(holder, sizeof holder, "%s|%s", r->cfg->worker_id, id);
    proto_argv_adds(&a, holder);
    if (s == PROTO_ACQUIRE) {
        proto_argv_addll(&a, r->cfg->lease_ms);
        proto_argv_adds(&a, renew ? "1" : "0");
    }
    const char *name;
    json_t *units;
    json_object_foreach(h->resources, name, units)
    {
        if (n == MAX_NAMES) break; /* handlers_check_resources refuses more */
        char suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "res:{resources}:%s", name);
        keys_global(keybuf[n], r->cfg->prefix, suffix);
        keys[n] = keybuf[n];
        n++;
        if (s == PROTO_ACQUIRE) {
            /* The rate log beside the holds (acquire.lua: 2 keys per resource). */
            snprintf(suffix, sizeof suffix, "res:{resources}:%s:rate", name);
            keys_global(keybuf[n], r->cfg->prefix, suffix);
            keys[n] = keybuf[n];
            n++;
            json_t *rate = json_object_get(r->cfg->rates, name); /* [count, window ms] or NULL */
            proto_argv_addll(&a, json_integer_value(json_object_get(r->cfg->resources, name)));
            proto_argv_addll(&a, json_integer_value(units));
            proto_argv_addll(&a, json_integer_value(json_array_get(rate, 0)));
            proto_argv_addll(&a, json_integer_value(json_array_get(rate, 1)));
        } else {
            proto_argv_addll(&a, json_integer_value(units));
        }
    }
    int rc = rq_script_keys(r->rq, s, n, keys, &a, cb, arg);
    proto_argv_free(&a);
    return rc;
}

static void on_ignore(rq_t *rq, redisReply *reply, void *arg)
{
    (void)rq;
    (void)reply;
    (void)arg;
}

void resources_release(resources_t *r, job_t *j)
{
    if (j->res_state == 2) resource_call(r, j->handler, j->id, PROTO_UNACQUIRE, 0, on_ignore, NULL);
    j->res_state = 0;
}

static void on_acquired(rq_t *rq, redisReply *reply, void *arg)
{
    (void)rq;
    acquire_req_t *req = arg;
    resources_t *r = req->r;
    job_t *j = lease_find(r->lease, req->id, req->token);
    /* 1 held, 0 busy, -W the rate allows it in W ms (acquire.lua). */
    long long res = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    int got = res == 1;
    if (j) j->res_inflight = 0;
    if (req->renew || !j || j->res_state != 1) {
        /* A renewal, or the job ended while we asked: give back what a
         * first-time acquire just took for nobody. */
        if (!req->renew && got)
            resource_call(r, req->handler, req->id, PROTO_UNACQUIRE, 0, on_ignore, NULL);
        if (req->renew && !got && j)
            log_msg(LOG_WARN, &j->log,
                    "resource hold could not be renewed (it expired while "
                    "this worker was away); the job runs on");
        free(req);
        return;
    }
    free(req);
    if (res < 0) {
        /* The rate allows it in -res ms, its turn (acquire.lua gives each
         * waiting job a turn of its own): it waits that long in its queue. */
        r->cbs.on_busy(r->cbs.arg, j, -res, "waiting for a resource's rate limit");
        return;
    }
    if (!got) {
        /* Not enough units free, and no telling when: ask again shortly
         * (jittered), from the queue. */
        r->cbs.on_busy(r->cbs.arg, j, 200 + random() % 300,
                       "waiting for a resource's units (concurrency limit)");
        return;
    }
    j->res_state = 2;
    r->cbs.on_acquired(r->cbs.arg, j);
}

void resources_acquire(resources_t *r, job_t *j)
{
    if (j->res_inflight) return;
    acquire_req_t *req = calloc(1, sizeof *req);
    if (req) {
        req->r = r;
        memcpy(req->id, j->id, sizeof req->id);
        memcpy(req->token, j->token, sizeof req->token);
        req->renew = j->res_state == 2;
        req->handler = j->handler;
        j->res_inflight = 1;
    }
    if (!req || resource_call(r, j->handler, j->id, PROTO_ACQUIRE, req && req->renew, on_acquired,
                              req) < 0) {
        j->res_inflight = 0;
        int first = !req || !req->renew;
        free(req);
        if (first && j->res_state == 1)
            r->cbs.on_busy(r->cbs.arg, j, 500, "waiting for resources (Redis call failed)");
    }
}

void resources_renew_all(resources_t *r)
{
    for (job_t *j = r->lease->head; j; j = j->next)
        if (j->running && j->res_state == 2) resources_acquire(r, j);
}
