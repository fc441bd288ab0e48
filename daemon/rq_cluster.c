/* rq_cluster.c - Redis Cluster for rq: the slot map (read with CLUSTER
 * SLOTS on the control connection, again after a primary fails or sends
 * MOVED), one command connection per primary (rq->nodes, opened and
 * closed to match the map), routing a call to the primary of its first
 * key's slot, and following MOVED and ASK. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rq.h"
#include "rq_int.h"
#include "schema.h"

/* The command connection serving slot: the one connection off a cluster,
 * the primary's on one (NULL: no primary known, or not connected yet). */
rq_conn_t *rq_cluster_conn_for_slot(const rq_t *rq, int slot)
{
    if (!rq->cluster) return (rq_conn_t *)&rq->cmd;
    const cluster_addr_t *a = cluster_map_node(rq->map, slot);
    for (int i = 0; a && i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i] && cluster_addr_eq(&rq->nodes[i]->addr, a)) return rq->nodes[i];
    return NULL;
}

rq_conn_t *rq_cluster_node_at(const rq_t *rq, const cluster_addr_t *a)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (rq->nodes[i] && cluster_addr_eq(&rq->nodes[i]->addr, a)) return rq->nodes[i];
    return NULL;
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
        if (rq_cluster_node_at(rq, &m->node[k])) continue;
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
        rq_conn_connect(n);
    }
    rq_emit_state(rq, 0);
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
    rq_emit_state(rq, 0);
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
        rq_conn_fail(c, "CLUSTER SLOTS", r->type == REDIS_REPLY_ERROR ? r->str : NULL);
        return;
    } else {
        rq_conn_handshake_data(c, (1 << SCHEMA_NKEYS) - 1);
    }
    rq_conn_step_done(c);
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
void rq_cluster_refresh(rq_t *rq)
{
    if (!rq->cluster || rq->refreshing || !rq->cmd.ready || rq->closing) return;
    rq->refreshing = 1;
    redisAsyncCommand(rq->cmd.ac, on_refresh, NULL, "CLUSTER SLOTS");
}

void rq_cluster_ask_slots(rq_conn_t *c)
{
    c->handshake_pending++;
    c->rq->refreshing = 0;
    redisAsyncCommand(c->ac, on_slots, NULL, "CLUSTER SLOTS");
}

void rq_cluster_node_handshake(rq_conn_t *c)
{
    rq_conn_handshake_data(c, c->checks = checks_for(c->rq, &c->addr));
}

/* A MOVED or ASK reply to a call (the call did not run): it goes where
 * Redis says, at most twice. MOVED also patches the slot's owner at once
 * and reads the whole map again. */
int rq_cluster_redirect(rq_t *rq, const redisReply *r, int *redirects, cluster_addr_t *ask)
{
    int is_ask, slot;
    cluster_addr_t to;
    if (!r || r->type != REDIS_REPLY_ERROR || !cluster_redirect_parse(r->str, &is_ask, &slot, &to))
        return 0;
    if ((*redirects)++ >= 2) return 0;
    if (is_ask) {
        *ask = to;
    } else if (rq->map) {
        int k = 0;
        while (k < rq->map->nnodes && !cluster_addr_eq(&rq->map->node[k], &to))
            k++;
        if (k == rq->map->nnodes && k < CLUSTER_MAX_NODES) rq->map->node[rq->map->nnodes++] = to;
        if (k < rq->map->nnodes) rq->map->slot[slot] = (uint8_t)(k + 1);
        rq_cluster_refresh(rq);
    } else {
        /* One Redis answering MOVED: it became (or is) a cluster node. */
        rq_cluster_refresh(rq);
        return 0;
    }
    return 1;
}
