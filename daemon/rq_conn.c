/* rq_conn.c - one Redis connection (rq_conn_t): connecting, the
 * handshake up to READY, and after a failure the capped jittered backoff
 * with the reason of the failure, logged by the policy rq_log_due states.
 * It serves every kind of connection (command, pub/sub, cluster primary,
 * Sentinel); the steps that belong to a cluster or to Sentinel come from
 * rq_cluster.c and rq_sentinel.c (rq_int.h). */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloexec.h"
#include "jobd/client.h"
#include "log.h"
#include "rq.h"
#include "rq_int.h"
#include "rq_uv.h"
#include "schema.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
/* An attempt not READY by then is dropped and retried (a black-holed
 * address would otherwise wait for the kernel's connect timeout). */
#define HANDSHAKE_TIMEOUT_MS 10000
/* At the backoff's cap, a failure that goes on is logged once a minute. */
#define LOG_EVERY_MS 60000

static void on_retry(uv_timer_t *t)
{
    rq_conn_connect(t->data);
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
void rq_conn_note_failure(rq_conn_t *c, redis_fail_t why, const char *what, const char *said)
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
void rq_conn_reason(const rq_conn_t *c, char *out, size_t len)
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
static void report_failure(rq_conn_t *c, int64_t delay)
{
    rq_t *rq = c->rq;
    char why[256], when[64];
    rq_conn_reason(c, why, sizeof why);
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
    if (c->is_node) rq_cluster_refresh(rq);
    if (rq->url.kind == REDIS_URL_SENTINEL && !c->is_sentinel && !c->is_sub)
        rq_sentinel_rediscover(rq);
    if (!c->is_node && rq->url.nhosts > 1) c->seed = (c->seed + 1) % rq->url.nhosts;
    if (!c->failed) rq_conn_note_failure(c, REDIS_FAIL_LOST, NULL, "closed");
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
        report_failure(c, d);
        c->logged_why = c->why;
        c->logged_at = now;
    } else {
        char why[256];
        rq_conn_reason(c, why, sizeof why);
        log_debug("Redis %s connection: %s (attempt %d)", c->is_sub ? "pub/sub" : "command", why,
                  c->attempts);
    }
    uv_timer_start(&c->retry, on_retry, (uint64_t)d, 0);
}

static void set_down(rq_conn_t *c)
{
    int was_ready = c->ready;
    c->ready = 0;
    c->ac = NULL;
    if (!c->is_sub && was_ready) rq_emit_state(c->rq, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rq_conn_t *c = ac->data;
    if (!c) return;
    /* A handshake failure noted its own reason before disconnecting. */
    if (!c->failed)
        rq_conn_note_failure(c, REDIS_FAIL_LOST, NULL, status == REDIS_OK ? "closed" : ac->errstr);
    set_down(c);
    retry_later(c);
    if (c->rq->closing && --c->rq->pending_closes == 0) rq_close_done(c->rq);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rq_conn_t *c = ac->data;
    if (!c) return;
    if (status == REDIS_OK) {
        rq_conn_step_done(c); /* connected: one step of the handshake */
        return;
    }
    /* hiredis frees ac after this callback; no on_disconnect follows. */
    rq_conn_note_failure(c, redis_fail_of_connect(ac->errstr), NULL, ac->errstr);
    retry_later(c);
    if (c->rq->closing && --c->rq->pending_closes == 0) rq_close_done(c->rq);
}

/* No READY within the handshake timeout (a black-holed address, a Redis
 * that stopped answering): drop the attempt and try again later. */
static void on_handshake_timeout(uv_timer_t *t)
{
    rq_conn_t *c = t->data;
    redisAsyncContext *ac = c->ac;
    if (!ac || c->ready) return;
    rq_conn_note_failure(c, REDIS_FAIL_TIMEOUT, NULL, "no answer within the handshake timeout");
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
void rq_conn_fail(rq_conn_t *c, const char *what, const char *said)
{
    if (c->failed) return;
    redis_fail_t why = said ? redis_fail_of_reply(said) : REDIS_FAIL_OTHER;
    /* Which step met NOAUTH or LOADING says nothing more; for any other
     * error it does. */
    rq_conn_note_failure(c, why, why == REDIS_FAIL_OTHER ? what : NULL,
                         said ? said : "unexpected reply");
    if (c->ac) redisAsyncDisconnect(c->ac);
}

void rq_conn_step_done(rq_conn_t *c)
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
        rq_emit_state(rq, 1);
    } else if (!c->is_sub && !c->is_sentinel && !rq->cluster) {
        if (rq->url.kind == REDIS_URL_SENTINEL)
            log_info("Redis ready at %s:%d (primary of %s)", rq->primary.host, rq->primary.port,
                     rq->url.master);
        else
            log_info("Redis ready at %s", rq->where);
        rq->failover = 0;
        rq_emit_state(rq, 1);
    }
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    const char *what = priv;
    if (!r || !c) return; /* connection lost: on_disconnect handles it */
    if (r->type == REDIS_REPLY_ERROR) {
        rq_conn_fail(c, what, r->str);
        return;
    }
    rq_conn_step_done(c);
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
        rq_conn_step_done(c);
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
        rq_conn_fail(c, "layout check", said ? said : err);
        return;
    }
    rq_conn_step_done(c);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    rq_conn_t *c = ac->data;
    redisReply *r = reply;
    if (!r || !c) return;
    proto_script_t s = (proto_script_t)(intptr_t)priv;
    if (r->type != REDIS_REPLY_STRING) {
        rq_conn_fail(c, "SCRIPT LOAD", r->type == REDIS_REPLY_ERROR ? r->str : NULL);
        return;
    }
    snprintf(c->rq->sha[s], sizeof c->rq->sha[s], "%s", r->str);
    rq_conn_step_done(c);
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

void rq_conn_subscribe(rq_conn_t *c, const char *channel)
{
    redisAsyncCommand(c->ac, on_sub_message, NULL, "SUBSCRIBE %s", channel);
}

/* Queues the layout check (schema.h) for the keys in mask and SCRIPT LOAD
 * of every script: the part of the handshake that runs where scripts run. */
void rq_conn_handshake_data(rq_conn_t *c, int mask)
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
        rq_sentinel_ask(c);
    } else if (c->is_sub) {
        if (rq->url.kind == REDIS_URL_SENTINEL) rq_sentinel_check_role(c);
        c->subscribed = 0;
        for (int i = 0; i < rq->nchannels; i++)
            rq_conn_subscribe(c, rq->channels[i]);
    } else if (c->is_node) {
        rq_cluster_node_handshake(c);
    } else {
        if (rq->url.db && rq->url.kind != REDIS_URL_CLUSTER) {
            c->handshake_pending++;
            redisAsyncCommand(c->ac, on_handshake, "SELECT", "SELECT %d", rq->url.db);
        }
        if (rq->url.kind == REDIS_URL_SENTINEL) {
            /* Before anything writes: a replica would answer READONLY. */
            rq_sentinel_check_role(c);
            rq_conn_handshake_data(c, (1 << SCHEMA_NKEYS) - 1);
        } else {
            /* Which kind of Redis this is decides the rest (rq_cluster.c). */
            rq_cluster_ask_slots(c);
        }
    }
    rq_conn_step_done(c);
}

void rq_conn_connect(rq_conn_t *c)
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
        rq_conn_note_failure(c, ac ? redis_fail_of_connect(ac->errstr) : REDIS_FAIL_OTHER, NULL,
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
        rq_conn_note_failure(c, REDIS_FAIL_OTHER, NULL, "cannot watch the connection's socket");
        redisAsyncFree(ac); /* not connected yet: no callback runs */
        retry_later(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&c->retry, on_handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
    handshake(c);
}

void rq_conn_retry_now(rq_conn_t *c)
{
    uv_timer_start(&c->retry, on_retry, 0, 0);
}
