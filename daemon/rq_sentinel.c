/* rq_sentinel.c - Redis Sentinel for rq: the Sentinel connection's
 * handshake (the primary's address, then +switch-master), ROLE at the
 * start of cmd's and sub's handshakes, and failover: a new primary, a
 * READONLY reply or a demoted primary drops cmd and sub, which reconnect
 * to the address the Sentinels name. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rq.h"
#include "rq_int.h"

/* Drops c's connection so that it reconnects (to the primary Sentinel
 * names now), through the usual backoff. */
static void drop_conn(rq_conn_t *c)
{
    if (c->ac && !c->failed) {
        rq_conn_note_failure(c, REDIS_FAIL_LOST, NULL, "redis failover in progress");
        redisAsyncDisconnect(c->ac);
    }
}

/* Asks the Sentinels again: the Sentinel connection's handshake asks. */
void rq_sentinel_rediscover(rq_t *rq)
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
        if (!conns[i]->ac && conns[i]->attempts == 0) rq_conn_retry_now(conns[i]);
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
        rq_conn_fail(c, "SENTINEL get-master-addr-by-name", said);
        return;
    }
    set_primary(c->rq, r->element[0]->str, (int)strtol(r->element[1]->str, NULL, 10));
    rq_conn_step_done(c);
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
        rq_sentinel_rediscover(c->rq);
        rq_conn_fail(c, "ROLE", "not the primary (redis failover in progress)");
        return;
    }
    rq_conn_step_done(c);
}

void rq_sentinel_ask(rq_conn_t *c)
{
    c->handshake_pending++;
    redisAsyncCommand(c->ac, on_master_addr, NULL, "SENTINEL get-master-addr-by-name %s",
                      c->rq->url.master);
    redisAsyncCommand(c->ac, on_sentinel_message, NULL, "SUBSCRIBE +switch-master");
}

void rq_sentinel_check_role(rq_conn_t *c)
{
    c->handshake_pending++;
    redisAsyncCommand(c->ac, on_role, NULL, "ROLE");
}

void rq_sentinel_demoted(rq_t *rq)
{
    rq_sentinel_rediscover(rq);
    drop_conn(&rq->cmd);
    drop_conn(&rq->sub);
}
