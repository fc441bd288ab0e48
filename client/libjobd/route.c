/* route.c - which connection serves a key: one Redis, the primary that
 * Sentinel names, or the primary of the key's slot on a Redis Cluster
 * (client_int.h, "routing").
 *
 * DESIGN: c->nodes is a table of addresses with one lazily opened blocking
 * connection each; entries are only ever added, so a node index stays
 * valid for the client's life. Node 0 is the URL's Redis (or Sentinel's
 * primary). A redis:// URL starts as one Redis; the first MOVED reply turns
 * the client into a cluster client (CLUSTER SLOTS on the node that sent
 * it), so a single Redis costs nothing extra and a cluster reached through
 * redis:// works all the same. redis+cluster:// reads the map up front. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <hiredis/sds.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "redis_fail.h"

#define MAX_REDIRECTS 5

/* Returns 1 if rc cannot serve a new call as it is: the server closed it,
 * or a call before gave up halfway, leaving commands unsent or replies
 * unread that the next call would take for its own. With nothing pending,
 * a healthy connection has nothing to read: anything readable is EOF, an
 * error or garbage. One poll(2), no wait. */
static int conn_unusable(redisContext *rc)
{
    if (sdslen(rc->obuf) > 0 || rc->reader->pos < rc->reader->len) return 1;
    struct pollfd p = {.fd = rc->fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

static void node_drop(client_node_t *n)
{
    if (n->rc) redisFree(n->rc);
    n->rc = NULL;
    n->pending = 0;
}

/* The index of the node at a, added if new; -1 if the table is full. */
static int node_index(jobd_client_t *c, const cluster_addr_t *a)
{
    for (int i = 0; i < c->nnodes; i++)
        if (cluster_addr_eq(&c->nodes[i].addr, a)) return i;
    if (c->nnodes == CLUSTER_MAX_NODES) return -1;
    memset(&c->nodes[c->nnodes], 0, sizeof c->nodes[0]);
    c->nodes[c->nnodes].addr = *a;
    return c->nnodes++;
}

int client_discover(jobd_client_t *c)
{
    /* Sentinels are asked without AUTH (their own password, if any, is not
     * the primary's). The first that names a primary wins. */
    struct timeval tv = {c->timeout_ms / 1000, (long)(c->timeout_ms % 1000) * 1000};
    char said[1024] = "no Sentinel answered";
    for (int k = 0; k < c->url.nhosts; k++) {
        int i = (c->sentinel_next + k) % c->url.nhosts;
        redisContext *s = redisConnectWithTimeout(c->url.hosts[i].host, c->url.hosts[i].port, tv);
        if (!s || s->err) {
            snprintf(said, sizeof said, "Sentinel %s:%d: %s", c->url.hosts[i].host,
                     c->url.hosts[i].port, s ? s->errstr : "out of memory");
            if (s) redisFree(s);
            continue;
        }
        redisSetTimeout(s, tv);
        redisReply *r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", c->url.master);
        int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 r->element[1]->type == REDIS_REPLY_STRING;
        if (ok) {
            client_node_t *n = &c->nodes[0];
            cluster_addr_t a = {.port = (int)strtol(r->element[1]->str, NULL, 10)};
            snprintf(a.host, sizeof a.host, "%s", r->element[0]->str);
            if (!cluster_addr_eq(&a, &n->addr)) node_drop(n);
            n->addr = a;
            c->sentinel_next = i;
        } else {
            snprintf(said, sizeof said, "Sentinel %s:%d knows no primary named %s%s%s",
                     c->url.hosts[i].host, c->url.hosts[i].port, c->url.master,
                     r && r->type == REDIS_REPLY_ERROR ? ": " : "",
                     r && r->type == REDIS_REPLY_ERROR ? r->str : "");
        }
        if (r) freeReplyObject(r);
        redisFree(s);
        if (ok) return 0;
    }
    return client_err(c, JOBD_ECONN, "Redis Sentinel: no primary for %s: %s", c->url.master, said);
}

/* Whether the connection of node i serves a primary (ROLE). */
static int is_primary(redisContext *rc)
{
    redisReply *r = redisCommand(rc, "ROLE");
    int yes = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    /* A user who may not ask is trusted: READONLY replies still catch a
     * replica. */
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0) yes = 1;
    if (r) freeReplyObject(r);
    return yes;
}

/* Makes node i's connection live. A connection with pipelined replies
 * pending is in use by the caller and left alone. */
static int node_open(jobd_client_t *c, int i)
{
    client_node_t *n = &c->nodes[i];
    if (n->rc && n->pending > 0) return 0;
    /* Checked before sending, so that a Redis restart since the last call
     * costs a reconnect rather than a failed call: after sending, a lost
     * reply cannot tell whether the command ran. */
    if (n->rc && !n->rc->err && !conn_unusable(n->rc)) return 0;
    node_drop(n);
    /* The script SHAs stay valid (they name the text); a restarted Redis
     * answers NOSCRIPT once and the call reloads the script. */
    int sentinel = i == 0 && c->url.kind == REDIS_URL_SENTINEL;
    int rc = client_connect_addr(c, i == 0 && !c->cluster && !sentinel ? NULL : &n->addr, &n->rc);
    if (rc < 0) {
        n->rc = NULL;
        return rc;
    }
    if (sentinel && !is_primary(n->rc)) {
        node_drop(n);
        return client_err(c, JOBD_ECONN,
                          "Redis at %s:%d is not the primary any more (failover in progress)",
                          n->addr.host, n->addr.port);
    }
    return 0;
}

int client_use_node(jobd_client_t *c, int i)
{
    int rc = node_open(c, i);
    if (rc < 0) return rc;
    c->cur = i;
    c->rc = c->nodes[i].rc;
    return 0;
}

/* Reads the slot map from one connection; 1 if it is a cluster's. */
static int map_from(jobd_client_t *c, redisContext *rc, const char *host)
{
    redisReply *r = redisCommand(rc, "CLUSTER SLOTS");
    int ok = r && cluster_map_parse(c->map, r, host) == 0 && c->map->nnodes > 0;
    if (r) freeReplyObject(r);
    return ok;
}

int client_map_refresh(jobd_client_t *c)
{
    if (!c->map && !(c->map = calloc(1, sizeof *c->map)))
        return client_err(c, JOBD_ENOMEM, "out of memory");
    /* Any node we know answers for the whole cluster: live connections
     * first, then the URL's seeds. */
    for (int i = 0; i < c->nnodes; i++) {
        client_node_t *n = &c->nodes[i];
        if (!n->rc || n->pending || n->rc->err || conn_unusable(n->rc)) continue;
        if (map_from(c, n->rc, n->addr.host)) goto found;
    }
    for (int i = 0; i < c->url.nhosts; i++) {
        cluster_addr_t a = {.port = c->url.hosts[i].port};
        snprintf(a.host, sizeof a.host, "%s", c->url.hosts[i].host);
        int k = node_index(c, &a);
        if (k < 0 || c->nodes[k].pending) continue;
        int was_cluster = c->cluster;
        c->cluster = 1; /* connect as to a cluster node: no SELECT */
        int rc = node_open(c, k);
        c->cluster = was_cluster;
        if (rc == 0 && map_from(c, c->nodes[k].rc, a.host)) goto found;
    }
    c->stale_map = 1;
    return client_err(c, JOBD_ECONN, "Redis Cluster: no node answered CLUSTER SLOTS%s%s",
                      c->errmsg[0] ? ": " : "", c->errmsg);
found:
    if (!c->cluster && c->url.db != 0) {
        c->map->nnodes = 0;
        return client_err(c, JOBD_EINVAL,
                          "Redis Cluster has only database 0, but the URL "
                          "asks for %d",
                          c->url.db);
    }
    c->cluster = 1;
    c->stale_map = 0;
    return 0;
}

int client_route_slot(jobd_client_t *c, int slot)
{
    if (c->url.kind == REDIS_URL_SENTINEL) {
        /* A primary that is gone or demoted: ask the Sentinels again. */
        if (!c->nodes[0].addr.port || c->stale_map) {
            int rc = client_discover(c);
            if (rc < 0) return rc;
            c->stale_map = 0;
        }
        int rc = client_use_node(c, 0);
        if (rc == JOBD_ECONN && client_discover(c) == 0) rc = client_use_node(c, 0);
        return rc;
    }
    if (!c->cluster && !c->stale_map) return client_use_node(c, 0);
    if (c->stale_map) {
        int rc = client_map_refresh(c);
        if (rc < 0) return rc;
    }
    int rc = JOBD_ECONN;
    for (int attempt = 0; attempt < 2; attempt++) {
        const cluster_addr_t *a = cluster_map_node(c->map, slot);
        if (!a) {
            rc = client_err(c, JOBD_ECONN, "Redis Cluster: no primary serves slot %d", slot);
        } else {
            int i = node_index(c, a);
            if (i < 0) return client_err(c, JOBD_ENOMEM, "Redis Cluster: too many nodes");
            if ((rc = client_use_node(c, i)) == 0) return 0;
        }
        /* The primary is gone (failover) or the slot moved: ask again. */
        if (attempt == 0 && client_map_refresh(c) < 0) return rc;
    }
    return rc;
}

int client_route(jobd_client_t *c, const char *key)
{
    return client_route_slot(c, cluster_key_slot(key, strlen(key)));
}

/* Reads one reply from node i into *out (NULL on a broken connection). */
static int read_reply(jobd_client_t *c, int i, redisReply **out)
{
    client_node_t *n = &c->nodes[i];
    redisReply *r = NULL;
    if (n->pending > 0) n->pending--;
    if (!n->rc || redisGetReply(n->rc, (void **)&r) != REDIS_OK || !r) {
        *out = NULL;
        client_err(c, JOBD_ECONN, "Redis: %s",
                   n->rc && n->rc->errstr[0] ? n->rc->errstr : "connection lost");
        return JOBD_ECONN;
    }
    *out = r;
    return 0;
}

int client_call(jobd_client_t *c, int slot, const char *cmd, size_t len, redisReply **out)
{
    cluster_addr_t ask = {0};
    int asking = 0;
    for (int tries = 0; tries <= MAX_REDIRECTS; tries++) {
        int rc;
        if (asking) {
            int i = node_index(c, &ask);
            rc = i < 0 ? client_err(c, JOBD_ENOMEM, "too many nodes") : client_use_node(c, i);
        } else {
            rc = client_route_slot(c, slot);
        }
        if (rc < 0) return rc;
        client_node_t *n = &c->nodes[c->cur];
        /* ASK: the slot is being migrated and this key is already on the
         * target; ASKING lets the very next command in. One shot. */
        if (asking) redisAppendCommand(n->rc, "ASKING");
        if (redisAppendFormattedCommand(n->rc, cmd, len) != REDIS_OK)
            return client_err(c, JOBD_ECONN, "Redis: %s", n->rc->errstr);
        redisReply *r;
        if (asking) {
            n->pending++;
            if ((rc = read_reply(c, c->cur, &r)) < 0) return rc;
            freeReplyObject(r);
        }
        n->pending++;
        if ((rc = read_reply(c, c->cur, &r)) < 0) return rc;
        int is_ask, s;
        cluster_addr_t to;
        if (r->type == REDIS_REPLY_ERROR && c->url.kind == REDIS_URL_SENTINEL &&
            strncmp(r->str, "READONLY", 8) == 0) {
            /* The primary was demoted under us: the write did not run. */
            freeReplyObject(r);
            c->stale_map = 1;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && cluster_redirect_parse(r->str, &is_ask, &s, &to)) {
            freeReplyObject(r);
            /* The command did not run: send it where Redis says. */
            if (is_ask) {
                ask = to;
                asking = 1;
                continue;
            }
            asking = 0;
            if ((rc = client_map_refresh(c)) < 0) return rc;
            slot = s;
            continue;
        }
        *out = r;
        return 0;
    }
    return client_err(c, JOBD_EREDIS, "Redis Cluster: still redirected after %d tries",
                      MAX_REDIRECTS);
}

int client_pipe_append(jobd_client_t *c, const char *key, const char *cmd, size_t len)
{
    int rc = client_route(c, key);
    if (rc < 0) return rc;
    client_node_t *n = &c->nodes[c->cur];
    if (redisAppendFormattedCommand(n->rc, cmd, len) != REDIS_OK)
        return client_err(c, JOBD_ECONN, "Redis: %s", n->rc->errstr);
    n->pending++;
    return c->cur;
}

int client_pipe_appendf(jobd_client_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    int rc = client_pipe_append(c, key, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int client_pipe_read(jobd_client_t *c, int node, redisReply **out)
{
    int rc = read_reply(c, node, out);
    if (rc < 0) return rc;
    redisReply *r = *out;
    int is_ask, s;
    cluster_addr_t to;
    if (r->type == REDIS_REPLY_ERROR && cluster_redirect_parse(r->str, &is_ask, &s, &to)) {
        /* Not run. The caller reads the rest, then starts over: stale_map
         * makes the next route read the map again. */
        freeReplyObject(r);
        *out = NULL;
        c->stale_map = 1;
        return CLIENT_EREDIRECT;
    }
    return 0;
}

int client_pipe_read_ok(jobd_client_t *c, int node, const char *what, redisReply **out)
{
    int rc = client_pipe_read(c, node, out);
    if (rc < 0 || (*out)->type != REDIS_REPLY_ERROR) return rc;
    rc = client_err(c, JOBD_EREDIS, "Redis: %s: %.*s", what, (int)(*out)->len, (*out)->str);
    freeReplyObject(*out);
    *out = NULL;
    return rc;
}

int client_pipe_flush(jobd_client_t *c)
{
    for (int i = 0; i < c->nnodes; i++) {
        client_node_t *n = &c->nodes[i];
        int done = 0;
        while (n->rc && n->pending && !done)
            if (redisBufferWrite(n->rc, &done) != REDIS_OK)
                return client_err(c, JOBD_ECONN, "Redis: %s", n->rc->errstr);
    }
    return 0;
}

void client_nodes_free(jobd_client_t *c)
{
    for (int i = 0; i < c->nnodes; i++)
        node_drop(&c->nodes[i]);
    c->nnodes = 0;
    c->rc = NULL;
    free(c->map);
    c->map = NULL;
}
