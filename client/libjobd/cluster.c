/* cluster.c - see cluster.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

uint16_t cluster_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int cluster_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        /* "{}" is no tag: the whole key is hashed. */
        if (close && close > open + 1)
            return cluster_crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_NSLOTS - 1);
    }
    return cluster_crc16(key, len) & (CLUSTER_NSLOTS - 1);
}

int cluster_addr_eq(const cluster_addr_t *a, const cluster_addr_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int add_node(cluster_map_t *m, const cluster_addr_t *a)
{
    for (int i = 0; i < m->nnodes; i++)
        if (cluster_addr_eq(&m->node[i], a)) return i;
    if (m->nnodes == CLUSTER_MAX_NODES) return -1;
    m->node[m->nnodes] = *a;
    return m->nnodes++;
}

int cluster_map_parse(cluster_map_t *m, const redisReply *r, const char *seed_host)
{
    memset(m, 0, sizeof *m);
    if (!r || r->type != REDIS_REPLY_ARRAY) return -1;
    for (size_t i = 0; i < r->elements; i++) {
        /* [start, end, [host, port, id, ...], replicas...] */
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            return -1;
        const redisReply *h = e->element[2]->element[0], *p = e->element[2]->element[1];
        if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_INTEGER) return -1;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= CLUSTER_NSLOTS || lo > hi || p->integer < 1 || p->integer > 65535)
            return -1;
        cluster_addr_t a = {.port = (int)p->integer};
        /* An empty or "?" endpoint: the node we asked (Redis 7's
         * cluster-preferred-endpoint-type unknown-endpoint). */
        const char *host = h->len && strcmp(h->str, "?") != 0 ? h->str : seed_host;
        snprintf(a.host, sizeof a.host, "%s", host ? host : "127.0.0.1");
        int n = add_node(m, &a);
        if (n < 0) return -1;
        for (long long s = lo; s <= hi; s++)
            m->slot[s] = (uint8_t)(n + 1);
    }
    return 0;
}

const cluster_addr_t *cluster_map_node(const cluster_map_t *m, int slot)
{
    if (slot < 0 || slot >= CLUSTER_NSLOTS || !m->slot[slot]) return NULL;
    return &m->node[m->slot[slot] - 1];
}

int cluster_redirect_parse(const char *err, int *ask, int *slot, cluster_addr_t *to)
{
    if (!err) return 0;
    int is_ask = strncmp(err, "ASK ", 4) == 0;
    if (!is_ask && strncmp(err, "MOVED ", 6) != 0) return 0;
    const char *p = err + (is_ask ? 4 : 6);
    char *end;
    long s = strtol(p, &end, 10);
    if (end == p || *end != ' ' || s < 0 || s >= CLUSTER_NSLOTS) return 0;
    p = end + 1;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof to->host) return 0;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || port < 1 || port > 65535) return 0;
    memcpy(to->host, p, (size_t)(colon - p));
    to->host[colon - p] = '\0';
    to->port = (int)port;
    *ask = is_ask;
    *slot = (int)s;
    return 1;
}
