/* rq.c - rq's public API (rq.h): init, start and close, readiness as a
 * whole and per queue, subscriptions, rq_why_down, and the calls callers
 * make: rq_script and rq_script_keys with the script table (EVALSHA, and
 * on NOSCRIPT the script's text once), rq_command. The connections
 * themselves live in rq_conn.c, rq_cluster.c and rq_sentinel.c
 * (rq_int.h). */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "rq.h"
#include "rq_int.h"
#include "schema.h"

typedef struct {
    rq_t *rq;
    proto_script_t script;
    int retried;
    int slot;           /* of the first key: which primary serves it */
    int redirects;      /* MOVED/ASK followed so far */
    cluster_addr_t ask; /* port 0: no ASK pending */
    proto_argv_t args;  /* full command: EVALSHA sha 1 prefix ARGV... */
    rq_reply_cb cb;
    void *arg;
} request_t;

void rq_init(rq_t *rq, uv_loop_t *loop, const redis_url_t *url, const char *prefix,
             rq_state_cb on_state, rq_message_cb on_message, void *arg)
{
    memset(rq, 0, sizeof *rq);
    rq->loop = loop;
    rq->url = *url;
    redis_url_describe(url, rq->where, sizeof rq->where);
    snprintf(rq->prefix, sizeof rq->prefix, "%s", prefix);
    rq->on_state = on_state;
    rq->on_message = on_message;
    rq->arg = arg;
    rq->cmd.rq = rq->sub.rq = rq;
    rq->sub.is_sub = 1;
    uv_timer_init(loop, &rq->cmd.retry);
    uv_timer_init(loop, &rq->sub.retry);
    rq->cmd.retry.data = &rq->cmd;
    rq->sub.retry.data = &rq->sub;
    rq->sent.rq = rq;
    rq->sent.is_sentinel = 1;
    uv_timer_init(loop, &rq->sent.retry);
    rq->sent.retry.data = &rq->sent;
}

int rq_ready(const rq_t *rq)
{
    if (rq->closing) return 0;
    if (!rq->cluster) return rq->cmd.ready;
    if (rq->checked != (1u << SCHEMA_NKEYS) - 1) return 0;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i] && rq->nodes[i]->ready) return 1;
    return 0;
}

int rq_ready_for(const rq_t *rq, const char *queue)
{
    if (!rq_ready(rq)) return 0;
    if (!rq->cluster) return 1;
    char qp[KEYS_MAX];
    size_t n = keys_queue_prefix(qp, rq->prefix, queue);
    const rq_conn_t *c = rq_cluster_conn_for_slot(rq, cluster_key_slot(qp, n));
    return c && c->ready;
}

/* Tells the caller when rq as a whole became ready (again: on a cluster,
 * every time a primary comes up, so its queues are tried at once) or stopped
 * being ready. */
void rq_emit_state(rq_t *rq, int node_came_up)
{
    int now = rq_ready(rq);
    int was = rq->was_ready;
    rq->was_ready = now;
    if (!rq->on_state) return;
    if (now && (!was || node_came_up))
        rq->on_state(rq, RQ_READY, rq->arg);
    else if (!now && was)
        rq->on_state(rq, RQ_DOWN, rq->arg);
}

void rq_why_down(const rq_t *rq, char *out, size_t len)
{
    const rq_conn_t *c = &rq->cmd;
    /* No primary named yet: the Sentinels are the story. */
    if (rq->url.kind == REDIS_URL_SENTINEL && !rq->primary.port) c = &rq->sent;
    char node[300] = "";
    if (rq->cluster) {
        for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
            const rq_conn_t *n = rq->nodes[i];
            if (!n || n->ready) continue;
            c = n;
            snprintf(node, sizeof node, " (cluster node %s:%d)", n->addr.host, n->addr.port);
            break;
        }
        if (c == &rq->cmd && rq->checked != (1u << SCHEMA_NKEYS) - 1) {
            snprintf(out, len, "redis not ready: the layout check has not passed yet");
            return;
        }
    }
    char why[256];
    rq_conn_reason(c, why, sizeof why);
    int reachable = c->why == REDIS_FAIL_AUTH || c->why == REDIS_FAIL_NOPERM ||
                    c->why == REDIS_FAIL_LOADING || c->why == REDIS_FAIL_OTHER ||
                    c->why == REDIS_FAIL_NONE;
    const char *head = rq->failover ? "redis failover in progress"
                       : reachable  ? "redis not ready"
                                    : "redis unreachable";
    if (c->attempts == 0) {
        snprintf(out, len, "%s%s: %s", head, node, why);
        return;
    }
    uint64_t now = uv_now(rq->loop);
    if (c->retry_at > now)
        snprintf(out, len, "%s%s: %s (attempt %d, next try in %.1f s)", head, node, why,
                 c->attempts, (double)(c->retry_at - now) / 1000.0);
    else
        snprintf(out, len, "%s%s: %s (attempt %d, trying again now)", head, node, why, c->attempts);
}

void rq_start(rq_t *rq)
{
    if (rq->url.kind == REDIS_URL_SENTINEL) rq_conn_connect(&rq->sent);
    rq_conn_connect(&rq->cmd);
    rq_conn_connect(&rq->sub);
}

void rq_subscribe(rq_t *rq, const char *channel)
{
    if (rq->nchannels == RQ_MAX_CHANNELS) return;
    rq->channels[rq->nchannels++] = strdup(channel);
    if (rq->sub.ac) rq_conn_subscribe(&rq->sub, channel);
}

static int send_request(request_t *req);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    request_t *req = priv;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && !req->retried) {
        /* The script cache was flushed (restart, failover): EVAL the text
         * once, which also caches it again under the same SHA1. */
        size_t len;
        const char *text = proto_script_text(req->script, &len);
        req->retried = 1;
        proto_argv_t *a = &req->args;
        memcpy(a->buf + a->offs[0], "EVAL", 5);
        a->lens[0] = 4;
        /* Point argv[1] at the script text by appending it to the arena. */
        int argc = a->argc;
        proto_argv_add(a, text, len);
        a->offs[1] = a->offs[argc];
        a->lens[1] = len;
        a->argc = argc;
        if (send_request(req) == 0) return;
        r = NULL;
    }
    if (rq_cluster_redirect(req->rq, r, &req->redirects, &req->ask) && send_request(req) == 0)
        return;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0 &&
        req->rq->url.kind == REDIS_URL_SENTINEL) {
        /* The primary was demoted under us; the call did not run. The
         * caller keeps its work and retries once ready again. */
        rq_sentinel_demoted(req->rq);
        r = NULL;
    }
    req->cb(req->rq, r, req->arg);
    proto_argv_free(&req->args);
    free(req);
}

/* Sends req to the connection serving its slot (or, after ASK, to the
 * target, ASKING first). -1: that connection is not ready. */
static int send_request(request_t *req)
{
    rq_t *rq = req->rq;
    const size_t *lens;
    const char **argv = proto_argv_finish(&req->args, &lens);
    rq_conn_t *c =
        req->ask.port ? rq_cluster_node_at(rq, &req->ask) : rq_cluster_conn_for_slot(rq, req->slot);
    int asking = req->ask.port != 0;
    req->ask.port = 0;
    if (!argv || !c || !c->ready || !c->ac) return -1;
    rq->commands_sent++;
    if (asking) redisAsyncCommand(c->ac, NULL, NULL, "ASKING");
    return redisAsyncCommandArgv(c->ac, on_reply, req, req->args.argc, argv, lens) == REDIS_OK ? 0
                                                                                               : -1;
}

int rq_script(rq_t *rq, proto_script_t s, const char *queue, proto_argv_t *args, rq_reply_cb cb,
              void *arg)
{
    char qp[KEYS_MAX];
    keys_queue_prefix(qp, rq->prefix, queue);
    const char *keys[1] = {qp};
    return rq_script_keys(rq, s, 1, keys, args, cb, arg);
}

int rq_script_keys(rq_t *rq, proto_script_t s, int nkeys, const char *const keys[],
                   proto_argv_t *args, rq_reply_cb cb, void *arg)
{
    if (!rq_ready(rq)) {
        proto_argv_reset(args);
        return -1;
    }
    request_t *req = calloc(1, sizeof *req);
    req->rq = rq;
    req->script = s;
    req->cb = cb;
    req->arg = arg;
    req->slot = nkeys > 0 ? cluster_key_slot(keys[0], strlen(keys[0])) : 0;
    proto_argv_init(&req->args);
    proto_argv_adds(&req->args, "EVALSHA");
    proto_argv_adds(&req->args, rq->sha[s]);
    proto_argv_addll(&req->args, nkeys);
    for (int i = 0; i < nkeys; i++)
        proto_argv_adds(&req->args, keys[i]);
    for (int i = 0; i < args->argc; i++)
        proto_argv_add(&req->args, args->buf + args->offs[i], args->lens[i]);
    proto_argv_reset(args);
    if (send_request(req) < 0) {
        proto_argv_free(&req->args);
        free(req);
        return -1;
    }
    return 0;
}

typedef struct {
    rq_t *rq;
    rq_reply_cb cb;
    void *arg;
} plain_t;

static void on_plain(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    plain_t *p = priv;
    p->cb(p->rq, reply, p->arg);
    free(p);
}

int rq_command(rq_t *rq, int argc, const char **argv, const size_t *lens, rq_reply_cb cb, void *arg)
{
    if (!rq_ready(rq)) return -1;
    /* Routed by its first key (the registry's keys share {:global}). */
    rq_conn_t *c = rq_cluster_conn_for_slot(rq, argc > 1 ? cluster_key_slot(argv[1], lens[1]) : 0);
    if (!c || !c->ready || !c->ac) return -1;
    plain_t *p = malloc(sizeof *p);
    *p = (plain_t){rq, cb, arg};
    rq->commands_sent++;
    if (redisAsyncCommandArgv(c->ac, on_plain, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return -1;
    }
    return 0;
}

/* Every handle is closed: free the cluster connections, tell the owner. */
void rq_close_done(rq_t *rq)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        free(rq->nodes[i]);
        rq->nodes[i] = NULL;
    }
    free(rq->map);
    rq->map = NULL;
    if (rq->on_closed) rq->on_closed(rq);
}

static void on_timer_closed(uv_handle_t *h)
{
    rq_t *rq = ((rq_conn_t *)h->data)->rq;
    if (--rq->pending_closes == 0) rq_close_done(rq);
}

void rq_close(rq_t *rq, void (*on_closed)(rq_t *rq))
{
    rq->closing = 1;
    rq->on_closed = on_closed;
    rq_conn_t *conns[3 + CLUSTER_MAX_NODES] = {&rq->cmd, &rq->sub, &rq->sent};
    int nconns = 3;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i]) conns[nconns++] = rq->nodes[i];
    /* Counted up front: a close callback must not reach zero early. */
    rq->pending_closes = nconns; /* the timers */
    for (int i = 0; i < nconns; i++) {
        rq_conn_t *c = conns[i];
        uv_timer_stop(&c->retry);
        uv_close((uv_handle_t *)&c->retry, on_timer_closed);
        if (c->ac && !c->ready) {
            /* Still connecting or in the handshake: no caller's command is
             * in flight (they wait for READY), and a server that does not
             * answer would keep a clean disconnect waiting forever. Freed
             * with data cleared, no callback of ours acts on it (inside a
             * hiredis callback, hiredis defers the free until it returns). */
            redisAsyncContext *ac = c->ac;
            ac->data = NULL;
            c->ac = NULL;
            redisAsyncFree(ac);
        } else if (c->ac) {
            rq->pending_closes++;
            /* The command connections wait for pending replies (acks in
             * flight); pub/sub has none worth waiting for. */
            redisAsyncDisconnect(c->ac);
        }
    }
    for (int i = 0; i < rq->nchannels; i++)
        free(rq->channels[i]);
    rq->nchannels = 0;
}
