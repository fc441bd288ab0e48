/* rq.c - see rq.h. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloexec.h"
#include "jobd/client.h"
#include "jobd/version.h"
#include "keys.h"
#include "log.h"
#include "rq.h"
#include "rq_uv.h"
#include "schema.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
/* An attempt not READY by then is dropped and retried (a black-holed
 * address would otherwise wait for the kernel's connect timeout). */
#define HANDSHAKE_TIMEOUT_MS 10000
/* At the backoff's cap, a failure that goes on is logged once a minute. */
#define LOG_EVERY_MS 60000

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

static void connect_conn(rq_conn_t *c);
static void request_refresh(rq_t *rq);
static void close_done(rq_t *rq);
static void rediscover(rq_t *rq);

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

/* The command connection serving slot: the one connection off a cluster,
 * the primary's on one (NULL: no primary known, or not connected yet). */
static rq_conn_t *conn_for_slot(const rq_t *rq, int slot)
{
    if (!rq->cluster) return (rq_conn_t *)&rq->cmd;
    const cluster_addr_t *a = cluster_map_node(rq->map, slot);
    for (int i = 0; a && i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i] && cluster_addr_eq(&rq->nodes[i]->addr, a)) return rq->nodes[i];
    return NULL;
}

static rq_conn_t *node_at(const rq_t *rq, const cluster_addr_t *a)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i] && cluster_addr_eq(&rq->nodes[i]->addr, a)) return rq->nodes[i];
    return NULL;
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
    const rq_conn_t *c = conn_for_slot(rq, cluster_key_slot(qp, n));
    return c && c->ready;
}

/* Tells the caller when rq as a whole became ready (again: on a cluster,
 * every time a primary comes up, so its queues are tried at once) or stopped
 * being ready. */
static void emit_state(rq_t *rq, int node_came_up)
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

static void on_retry(uv_timer_t *t)
{
    connect_conn(t->data);
}

int64_t rq_backoff_ms(int n)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 1; i < n && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    return d < BACKOFF_CAP_MS ? d : BACKOFF_CAP_MS;
}

int rq_log_due(int n, redis_fail_t why, redis_fail_t logged_why, uint64_t now_ms,
               uint64_t logged_ms)
{
    if (n <= 1 || why != logged_why) return 1;
    if (why == REDIS_FAIL_LOADING) return 0; /* said once; waiting is normal */
    if (rq_backoff_ms(n) != rq_backoff_ms(n - 1)) return 1;
    return now_ms - logged_ms >= LOG_EVERY_MS;
}

/* Copies what a socket or Redis said into dst, one line, JSON-safe: it
 * lands in log lines and in /health/ready's JSON as it is. */
static void copy_loggable(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; src && *src && o + 1 < cap; src++) {
        char ch = *src;
        if (ch == '"' || ch == '\\')
            ch = '\''; /* no JSON escape needed */
        else if (ch < 0x20 || ch > 0x7e)
            ch = ' '; /* control characters and bytes beyond ASCII */
        dst[o++] = ch;
    }
    dst[o] = '\0';
}

/* Notes why this attempt failed. The first reason wins: a refused AUTH is
 * followed by NOAUTH for everything queued behind it. */
static void note_failure(rq_conn_t *c, redis_fail_t why, const char *what, const char *said)
{
    if (c->failed) return;
    c->failed = 1;
    c->why = why;
    char text[sizeof c->detail];
    snprintf(text, sizeof text, "%s%s%s", what ? what : "", what ? ": " : "", said ? said : "");
    copy_loggable(c->detail, sizeof c->detail, text);
}

/* The reason of c's last failure in words: "connection refused", "auth
 * failed: WRONGPASS ...". */
static void reason(const rq_conn_t *c, char *out, size_t len)
{
    switch (c->why) {
    case REDIS_FAIL_NONE:
    case REDIS_FAIL_REFUSED:
    case REDIS_FAIL_LOADING:
        snprintf(out, len, "%s", redis_fail_phrase(c->why));
        break;
    case REDIS_FAIL_AUTH:
    case REDIS_FAIL_NOPERM:
        snprintf(out, len, "%s: %s", redis_fail_phrase(c->why), c->detail);
        break;
    case REDIS_FAIL_TIMEOUT:
    case REDIS_FAIL_LOST:
        snprintf(out, len, "%s (%s)", redis_fail_phrase(c->why), c->detail);
        break;
    case REDIS_FAIL_UNREACHABLE:
    case REDIS_FAIL_OTHER:
        snprintf(out, len, "%s", c->detail);
        break;
    }
}

/* One log line for a failed attempt, in the words of its kind. */
static void log_failure(rq_conn_t *c, int64_t delay)
{
    rq_t *rq = c->rq;
    char why[256], when[64];
    reason(c, why, sizeof why);
    snprintf(when, sizeof when, "attempt %d, next try in %.1f s", c->attempts,
             (double)delay / 1000.0);
    char conn[300];
    if (c->is_node)
        snprintf(conn, sizeof conn, "cluster node %s:%d", c->addr.host, c->addr.port);
    else
        snprintf(conn, sizeof conn, "%s",
                 c->is_sentinel ? "Sentinel"
                 : c->is_sub    ? "pub/sub"
                 : rq->cluster  ? "control"
                                : "command");
    switch (c->why) {
    case REDIS_FAIL_LOADING:
        log_info("Redis at %s is loading its data set; waiting for it (%s connection, %s)",
                 rq->where, conn, when);
        break;
    case REDIS_FAIL_LOST:
        log_warn("Redis %s connection lost (%s); reconnecting (%s)", conn, c->detail, when);
        break;
    case REDIS_FAIL_AUTH:
    case REDIS_FAIL_NOPERM:
    case REDIS_FAIL_OTHER:
        log_error("Redis at %s: %s (%s connection, %s)", rq->where, why, conn, when);
        break;
    default:
        log_warn("Redis unreachable at %s: %s (%s connection, %s)", rq->where, why, conn, when);
        break;
    }
}

/* The one place a failed attempt ends: counts it, logs it when the policy
 * says so (rq_log_due) and arms the next attempt after the jittered
 * backoff. Every failure path calls this exactly once per attempt. */
static void retry_later(rq_conn_t *c)
{
    rq_t *rq = c->rq;
    c->ready = 0;
    c->ac = NULL;
    if (rq->closing || c->gone) return;
    /* A primary that fails may have been replaced (failover): read the map
     * again. Control and pub/sub try the URL's next seed. */
    if (c->is_node) request_refresh(rq);
    if (rq->url.kind == REDIS_URL_SENTINEL && !c->is_sentinel && !c->is_sub) rediscover(rq);
    if (!c->is_node && rq->url.nhosts > 1) c->seed = (c->seed + 1) % rq->url.nhosts;
    if (!c->failed) note_failure(c, REDIS_FAIL_LOST, NULL, "closed");
    c->failed = 0;
    c->attempts++;
    int64_t d = rq_backoff_ms(c->attempts);
    /* Jitter to half..full so a fleet does not reconnect in lockstep. */
    d = d / 2 + (int64_t)(random() % (d / 2 + 1));
    uint64_t now = uv_now(rq->loop);
    c->retry_at = now + (uint64_t)d;
    /* While the command connection is down its lines tell the story; the
     * pub/sub connection speaks up only when it fails alone. */
    int quiet = c->is_sub && !rq->cmd.ready;
    if (c->attempts == 1) c->logged_why = REDIS_FAIL_NONE;
    if (!quiet && rq_log_due(c->attempts, c->why, c->logged_why, now, c->logged_at)) {
        log_failure(c, d);
        c->logged_why = c->why;
        c->logged_at = now;
    } else {
        char why[256];
        reason(c, why, sizeof why);
        log_debug("Redis %s connection: %s (attempt %d)", c->is_sub ? "pub/sub" : "command", why,
                  c->attempts);
    }
    uv_timer_start(&c->retry, on_retry, (uint64_t)d, 0);
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
    reason(c, why, sizeof why);
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

static void set_down(rq_conn_t *c)
{
    int was_ready = c->ready;
    c->ready = 0;
    c->ac = NULL;
    if (!c->is_sub && was_ready) emit_state(c->rq, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rq_conn_t *c = ac->data;
    if (!c) return;
    /* A handshake failure noted its own reason before disconnecting. */
    if (!c->failed)
        note_failure(c, REDIS_FAIL_LOST, NULL, status == REDIS_OK ? "closed" : ac->errstr);
    set_down(c);
    retry_later(c);
    if (c->rq->closing && --c->rq->pending_closes == 0) close_done(c->rq);
}

static void handshake_step_done(rq_conn_t *c);

static void on_connect(const redisAsyncContext *ac, int status)
{
    rq_conn_t *c = ac->data;
    if (!c) return;
    if (status == REDIS_OK) {
        handshake_step_done(c); /* connected: one step of the handshake */
        return;
    }
    /* hiredis frees ac after this callback; no on_disconnect follows. */
    note_failure(c, redis_fail_of_connect(ac->errstr), NULL, ac->errstr);
    retry_later(c);
    if (c->rq->closing && --c->rq->pending_closes == 0) close_done(c->rq);
}

/* No READY within the handshake timeout (a black-holed address, a Redis
 * that stopped answering): drop the attempt and try again later. */
static void on_handshake_timeout(uv_timer_t *t)
{
    rq_conn_t *c = t->data;
    redisAsyncContext *ac = c->ac;
    if (!ac || c->ready) return;
    note_failure(c, REDIS_FAIL_TIMEOUT, NULL, "no answer within the handshake timeout");
    /* Free it here (no callback of ours is running): pending commands get
     * NULL replies, which the handshake callbacks ignore, and with data
     * cleared on_disconnect leaves the retry to us. */
    ac->data = NULL;
    redisAsyncFree(ac);
    retry_later(c);
}

/* Fails the handshake: note why (the first failure only; a disconnect is
 * already under way after it), drop the connection and try again later
 * (on_disconnect). */
static void handshake_failed(rq_conn_t *c, const char *what, const char *said)
{
    if (c->failed) return;
    redis_fail_t why = said ? redis_fail_of_reply(said) : REDIS_FAIL_OTHER;
    /* Which step met NOAUTH or LOADING says nothing more; for any other
     * error it does. */
    note_failure(c, why, why == REDIS_FAIL_OTHER ? what : NULL, said ? said : "unexpected reply");
    if (c->ac) redisAsyncDisconnect(c->ac);
}

static void handshake_step_done(rq_conn_t *c)
{
    if (--c->handshake_pending > 0) return;
    uv_timer_stop(&c->retry); /* the handshake's deadline */
    c->ready = 1;
    c->attempts = 0;
    c->why = REDIS_FAIL_NONE;
    rq_t *rq = c->rq;
    if (c->is_node) {
        log_info("Redis Cluster primary %s:%d ready", c->addr.host, c->addr.port);
        rq->checked |= (unsigned)c->checks;
        emit_state(rq, 1);
    } else if (!c->is_sub && !c->is_sentinel && !rq->cluster) {
        if (rq->url.kind == REDIS_URL_SENTINEL)
            log_info("Redis ready at %s:%d (primary of %s)", rq->primary.host, rq->primary.port,
                     rq->url.master);
        else
            log_info("Redis ready at %s", rq->where);
        rq->failover = 0;
        emit_state(rq, 1);
    }
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    const char *what = priv;
    if (!r || !c) return; /* connection lost: on_disconnect handles it */
    if (r->type == REDIS_REPLY_ERROR) {
        handshake_failed(c, what, r->str);
        return;
    }
    handshake_step_done(c);
}

/* One reply of the layout check (schema.h); priv is 2 * key + (GET). The
 * SET's error, if any, waits for its GET, which decides. */
static void on_schema(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    int k = (int)(intptr_t)priv / 2, get = (int)(intptr_t)priv % 2;
    if (!get) {
        c->schema_seterr[k][0] = '\0';
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(c->schema_seterr[k], sizeof c->schema_seterr[k], "%s", r->str);
        handshake_step_done(c);
        return;
    }
    const char *said;
    char err[768];
    int v = schema_verdict(c->rq->prefix, (schema_key_t)k,
                           c->schema_seterr[k][0] ? c->schema_seterr[k] : NULL, r->type, r->str,
                           &said, err, sizeof err);
    if (v == JOBD_ESCHEMA) {
        log_error("Redis at %s: %s", c->rq->where, err);
        uv_timer_stop(&c->retry); /* no handshake deadline: this is the end */
        if (c->rq->on_state) c->rq->on_state(c->rq, RQ_FATAL, c->rq->arg);
        return;
    }
    if (v < 0) {
        handshake_failed(c, "layout check", said ? said : err);
        return;
    }
    handshake_step_done(c);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    proto_script_t s = (proto_script_t)(intptr_t)priv;
    if (r->type != REDIS_REPLY_STRING) {
        handshake_failed(c, "SCRIPT LOAD", r->type == REDIS_REPLY_ERROR ? r->str : NULL);
        return;
    }
    snprintf(c->rq->sha[s], sizeof c->rq->sha[s], "%s", r->str);
    handshake_step_done(c);
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    if (strcmp(r->element[0]->str, "message") == 0 && c->rq->on_message)
        c->rq->on_message(c->rq, r->element[1]->str, r->element[2]->str, c->rq->arg);
    else if (strcmp(r->element[0]->str, "subscribe") == 0 && ++c->subscribed == c->rq->nchannels &&
             c->rq->on_state)
        c->rq->on_state(c->rq, RQ_SUBSCRIBED, c->rq->arg);
}

static void send_subscribe(rq_conn_t *c, const char *channel)
{
    redisAsyncCommand(c->ac, on_sub_message, NULL, "SUBSCRIBE %s", channel);
}

/* Queues the layout check (schema.h) for the keys in mask and SCRIPT LOAD
 * of every script: the part of the handshake that runs where scripts run. */
static void handshake_data(rq_conn_t *c, int mask)
{
    rq_t *rq = c->rq;
    for (int k = 0; k < SCHEMA_NKEYS; k++) {
        if (!(mask & (1 << k))) continue;
        for (int g = 0; g < 2; g++) {
            schema_cmd_t sc;
            schema_cmd(&sc, rq->prefix, (schema_key_t)k, g);
            c->handshake_pending++;
            redisAsyncCommandArgv(c->ac, on_schema, (void *)(intptr_t)(2 * k + g), sc.argc, sc.argv,
                                  sc.lens);
        }
    }
    for (int s = 0; s < PROTO_NSCRIPTS; s++) {
        size_t len;
        const char *text = proto_script_text((proto_script_t)s, &len);
        c->handshake_pending++;
        redisAsyncCommand(c->ac, on_script_loaded, (void *)(intptr_t)s, "SCRIPT LOAD %b", text,
                          len);
    }
}

/* The layout keys whose slot node a serves: it checks those. */
static int checks_for(const rq_t *rq, const cluster_addr_t *a)
{
    int mask = 0;
    for (int k = 0; k < SCHEMA_NKEYS; k++) {
        schema_cmd_t sc;
        schema_cmd(&sc, rq->prefix, (schema_key_t)k, 1);
        const cluster_addr_t *n =
            cluster_map_node(rq->map, cluster_key_slot(sc.key, strlen(sc.key)));
        if (n && cluster_addr_eq(n, a)) mask |= 1 << k;
    }
    return mask;
}

static void node_remove(rq_t *rq, int i);

static void on_node_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Makes rq->nodes match the map m (steals it): a connection per primary,
 * new ones connecting, those no longer primaries closed. */
static void apply_map(rq_t *rq, cluster_map_t *m)
{
    free(rq->map);
    rq->map = m;
    if (!rq->cluster)
        log_info("Redis at %s is a Redis Cluster: %d primaries", rq->where, m->nnodes);
    rq->cluster = 1;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        rq_conn_t *n = rq->nodes[i];
        if (!n) continue;
        int keep = 0;
        for (int k = 0; k < m->nnodes && !keep; k++)
            keep = cluster_addr_eq(&m->node[k], &n->addr);
        if (!keep) node_remove(rq, i);
    }
    for (int k = 0; k < m->nnodes; k++) {
        if (node_at(rq, &m->node[k])) continue;
        int free_slot = -1;
        for (int i = 0; i < CLUSTER_MAX_NODES && free_slot < 0; i++)
            if (!rq->nodes[i]) free_slot = i;
        rq_conn_t *n = free_slot < 0 ? NULL : calloc(1, sizeof *n);
        if (!n) break;
        n->rq = rq;
        n->is_node = 1;
        n->addr = m->node[k];
        uv_timer_init(rq->loop, &n->retry);
        n->retry.data = n;
        rq->nodes[free_slot] = n;
        log_info("Redis Cluster: connecting to primary %s:%d", n->addr.host, n->addr.port);
        connect_conn(n);
    }
    emit_state(rq, 0);
}

/* Closes node i's connection for good (it is no primary any more). Its
 * pending calls get NULL replies (their callers retry); the struct is freed
 * when its timer has closed. */
static void node_remove(rq_t *rq, int i)
{
    rq_conn_t *n = rq->nodes[i];
    rq->nodes[i] = NULL;
    n->gone = 1;
    log_info("Redis Cluster: %s:%d is no longer a primary", n->addr.host, n->addr.port);
    uv_timer_stop(&n->retry);
    if (n->ac) {
        redisAsyncContext *ac = n->ac;
        n->ac = NULL;
        ac->data = NULL; /* no callback of ours acts on it */
        if (n->ready)
            redisAsyncDisconnect(ac);
        else
            redisAsyncFree(ac);
    }
    n->ready = 0;
    uv_close((uv_handle_t *)&n->retry, on_node_closed);
    emit_state(rq, 0);
}

static cluster_map_t *map_of(rq_t *rq, const rq_conn_t *c, const redisReply *r)
{
    cluster_map_t *m = malloc(sizeof *m);
    const char *seed = rq->url.nhosts ? rq->url.hosts[c->seed].host : rq->url.host;
    if (m && (cluster_map_parse(m, r, seed) < 0 || m->nnodes == 0)) {
        free(m);
        m = NULL;
    }
    return m;
}

/* The handshake's CLUSTER SLOTS: a map makes cmd the control connection of
 * a cluster; an error (cluster support disabled, or a user who may not ask)
 * means one Redis, and cmd goes on with the layout check and the scripts. */
static void on_slots(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    cluster_map_t *m = r->type == REDIS_REPLY_ARRAY ? map_of(c->rq, c, r) : NULL;
    if (m) {
        apply_map(c->rq, m);
    } else if (c->rq->cluster) {
        handshake_failed(c, "CLUSTER SLOTS", r->type == REDIS_REPLY_ERROR ? r->str : NULL);
        return;
    } else {
        handshake_data(c, (1 << SCHEMA_NKEYS) - 1);
    }
    handshake_step_done(c);
}

static void on_refresh(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!c) return;
    c->rq->refreshing = 0;
    cluster_map_t *m = r ? map_of(c->rq, c, r) : NULL;
    if (m) apply_map(c->rq, m);
}

/* Reads the slot map again (a primary failed or sent MOVED). One at a
 * time; while the control connection is down its next handshake does it. */
static void request_refresh(rq_t *rq)
{
    if (!rq->cluster || rq->refreshing || !rq->cmd.ready || rq->closing) return;
    rq->refreshing = 1;
    redisAsyncCommand(rq->cmd.ac, on_refresh, NULL, "CLUSTER SLOTS");
}

/* Drops c's connection so that it reconnects (to the primary Sentinel
 * names now), through the usual backoff. */
static void drop_conn(rq_conn_t *c)
{
    if (c->ac && !c->failed) {
        note_failure(c, REDIS_FAIL_LOST, NULL, "redis failover in progress");
        redisAsyncDisconnect(c->ac);
    }
}

/* Asks the Sentinels again: the Sentinel connection's handshake asks. */
static void rediscover(rq_t *rq)
{
    rq->failover = 1;
    if (rq->sent.ready) drop_conn(&rq->sent);
}

/* Sets the primary's address; a new one drops cmd and sub, which then
 * connect there. */
static void set_primary(rq_t *rq, const char *host, int port)
{
    cluster_addr_t a = {.port = port};
    snprintf(a.host, sizeof a.host, "%s", host);
    if (cluster_addr_eq(&a, &rq->primary)) return;
    if (rq->primary.port)
        log_warn("Redis Sentinel: the primary of %s moved from %s:%d to %s:%d", rq->url.master,
                 rq->primary.host, rq->primary.port, a.host, a.port);
    else
        log_info("Redis Sentinel: the primary of %s is %s:%d", rq->url.master, a.host, a.port);
    rq->primary = a;
    drop_conn(&rq->cmd);
    drop_conn(&rq->sub);
    /* Waiting for an address, not backing off: go now. */
    rq_conn_t *conns[2] = {&rq->cmd, &rq->sub};
    for (int i = 0; i < 2 && !rq->closing; i++)
        if (!conns[i]->ac && conns[i]->attempts == 0)
            uv_timer_start(&conns[i]->retry, on_retry, 0, 0);
}

static void on_master_addr(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
        char said[200];
        snprintf(said, sizeof said, "Sentinel knows no primary named %s%s%s", c->rq->url.master,
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        handshake_failed(c, "SENTINEL get-master-addr-by-name", said);
        return;
    }
    set_primary(c->rq, r->element[0]->str, (int)strtol(r->element[1]->str, NULL, 10));
    handshake_step_done(c);
}

/* +switch-master "<name> <old ip> <old port> <new ip> <new port>". */
static void on_sentinel_message(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0)
        return;
    char text[700], *save = NULL, *f[5];
    snprintf(text, sizeof text, "%s", r->element[2]->str);
    int n = 0;
    for (char *t = strtok_r(text, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    if (n != 5 || strcmp(f[0], c->rq->url.master) != 0) return;
    char *end;
    long port = strtol(f[4], &end, 10);
    if (*end || port < 1 || port > 65535) return;
    c->rq->failover = 1;
    set_primary(c->rq, f[3], (int)port);
}

/* ROLE at the start of cmd's and sub's handshakes: anything but a primary
 * (a demoted one, mid-failover) fails the attempt and asks Sentinel again. */
static void on_role(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    int master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0) master = 1;
    if (!master) {
        rediscover(c->rq);
        handshake_failed(c, "ROLE", "not the primary (redis failover in progress)");
        return;
    }
    handshake_step_done(c);
}

static void handshake(rq_conn_t *c)
{
    rq_t *rq = c->rq;
    /* Released at the end, once all are queued, and when connected. */
    c->handshake_pending = 2;
    /* An ACL user authenticates with its password (from the URL or the
     * password file; empty for a nopass user); the default user with the
     * password alone. */
    if (rq->url.user[0] || rq->url.password[0]) {
        c->handshake_pending++;
        if (rq->url.user[0])
            redisAsyncCommand(c->ac, on_handshake, "AUTH", "AUTH %s %s", rq->url.user,
                              rq->url.password);
        else
            redisAsyncCommand(c->ac, on_handshake, "AUTH", "AUTH %s", rq->url.password);
    }
    if (c->is_sentinel) {
        c->handshake_pending = 2; /* Sentinels are asked without AUTH */
        c->handshake_pending++;
        redisAsyncCommand(c->ac, on_master_addr, NULL, "SENTINEL get-master-addr-by-name %s",
                          rq->url.master);
        redisAsyncCommand(c->ac, on_sentinel_message, NULL, "SUBSCRIBE +switch-master");
    } else if (c->is_sub) {
        if (rq->url.kind == REDIS_URL_SENTINEL) {
            c->handshake_pending++;
            redisAsyncCommand(c->ac, on_role, NULL, "ROLE");
        }
        c->subscribed = 0;
        for (int i = 0; i < rq->nchannels; i++)
            send_subscribe(c, rq->channels[i]);
    } else if (c->is_node) {
        handshake_data(c, c->checks = checks_for(rq, &c->addr));
    } else {
        if (rq->url.db && rq->url.kind != REDIS_URL_CLUSTER) {
            c->handshake_pending++;
            redisAsyncCommand(c->ac, on_handshake, "SELECT", "SELECT %d", rq->url.db);
        }
        if (rq->url.kind == REDIS_URL_SENTINEL) {
            /* Before anything writes: a replica would answer READONLY. */
            c->handshake_pending++;
            redisAsyncCommand(c->ac, on_role, NULL, "ROLE");
            handshake_data(c, (1 << SCHEMA_NKEYS) - 1);
        } else {
            /* Which kind of Redis this is decides the rest (on_slots). */
            c->handshake_pending++;
            rq->refreshing = 0;
            redisAsyncCommand(c->ac, on_slots, NULL, "CLUSTER SLOTS");
        }
    }
    handshake_step_done(c);
}

static void connect_conn(rq_conn_t *c)
{
    rq_t *rq = c->rq;
    if (rq->closing || c->gone) return;
    redisAsyncContext *ac;
    if (rq->url.kind == REDIS_URL_SENTINEL && !c->is_sentinel && !rq->primary.port) {
        /* Started at once when the Sentinel connection names the primary
         * (set_primary); the Sentinel connection's backoff and log lines
         * tell why it takes long. */
        uv_timer_start(&c->retry, on_retry, 1000, 0);
        return;
    }
    if (c->is_node)
        ac = redisAsyncConnect(c->addr.host, c->addr.port);
    else if (rq->url.kind == REDIS_URL_SENTINEL && !c->is_sentinel)
        ac = redisAsyncConnect(rq->primary.host, rq->primary.port);
    else if (rq->cluster && rq->map && rq->map->nnodes && c->attempts > 0)
        /* Its node failed: any primary of the cluster will do as well. */
        ac = redisAsyncConnect(rq->map->node[c->attempts % rq->map->nnodes].host,
                               rq->map->node[c->attempts % rq->map->nnodes].port);
    else if (rq->url.is_unix)
        ac = redisAsyncConnectUnix(rq->url.path);
    else
        ac = redisAsyncConnect(rq->url.hosts[c->seed].host, rq->url.hosts[c->seed].port);
    c->failed = 0;
    if (!ac || ac->err) {
        note_failure(c, ac ? redis_fail_of_connect(ac->errstr) : REDIS_FAIL_OTHER, NULL,
                     ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        retry_later(c);
        return;
    }
    /* hiredis 0.14 opens its socket without SOCK_CLOEXEC: a handler must
     * never inherit a connection authenticated as jobd (see cloexec.h). */
    cloexec_set(ac->c.fd);
    ac->data = c;
    c->ac = ac;
    if (rq_uv_attach(ac, rq->loop) < 0) {
        note_failure(c, REDIS_FAIL_OTHER, NULL, "cannot watch the connection's socket");
        redisAsyncFree(ac); /* not connected yet: no callback runs */
        retry_later(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&c->retry, on_handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
    handshake(c);
}

void rq_start(rq_t *rq)
{
    if (rq->url.kind == REDIS_URL_SENTINEL) connect_conn(&rq->sent);
    connect_conn(&rq->cmd);
    connect_conn(&rq->sub);
}

void rq_subscribe(rq_t *rq, const char *channel)
{
    if (rq->nchannels == RQ_MAX_CHANNELS) return;
    rq->channels[rq->nchannels++] = strdup(channel);
    if (rq->sub.ac) send_subscribe(&rq->sub, channel);
}

static int send_request(request_t *req);

/* A MOVED or ASK reply to req (the call did not run): sends it where Redis
 * says, at most twice. MOVED also patches the slot's owner at once and
 * reads the whole map again. Returns 1 if req went out again. */
static int redirect(request_t *req, const redisReply *r)
{
    rq_t *rq = req->rq;
    int ask, slot;
    cluster_addr_t to;
    if (!r || r->type != REDIS_REPLY_ERROR || !cluster_redirect_parse(r->str, &ask, &slot, &to))
        return 0;
    if (req->redirects++ >= 2) return 0;
    if (ask) {
        req->ask = to;
    } else if (rq->map) {
        int k = 0;
        while (k < rq->map->nnodes && !cluster_addr_eq(&rq->map->node[k], &to))
            k++;
        if (k == rq->map->nnodes && k < CLUSTER_MAX_NODES) rq->map->node[rq->map->nnodes++] = to;
        if (k < rq->map->nnodes) rq->map->slot[slot] = (uint8_t)(k + 1);
        request_refresh(rq);
    } else {
        /* One Redis answering MOVED: it became (or is) a cluster node. */
        request_refresh(rq);
        return 0;
    }
    return send_request(req) == 0;
}

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
    if (redirect(req, r)) return;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0 &&
        req->rq->url.kind == REDIS_URL_SENTINEL) {
        /* The primary was demoted under us; the call did not run. The
         * caller keeps its work and retries once ready again. */
        rq_t *rq = req->rq;
        rediscover(rq);
        drop_conn(&rq->cmd);
        drop_conn(&rq->sub);
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
    rq_conn_t *c = req->ask.port ? node_at(rq, &req->ask) : conn_for_slot(rq, req->slot);
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
    rq_conn_t *c = conn_for_slot(rq, argc > 1 ? cluster_key_slot(argv[1], lens[1]) : 0);
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
static void close_done(rq_t *rq)
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
    if (--rq->pending_closes == 0) close_done(rq);
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
