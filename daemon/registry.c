/* registry.c - see registry.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd/version.h"
#include "keys.h"
#include "jobd/client.h"
#include "registry.h"

static void on_ignore(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

void registry_init(registry_t *r, const config_t *cfg, rq_t *rq, int64_t started_ms)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->rq = rq;
    r->started_ms = started_ms;
    gethostname(r->host, sizeof r->host - 1);
}

void registry_publish(registry_t *reg, const stats_snapshot_t *s, json_t *jobs)
{
    json_t *qs = json_array();
    for (int i = 0; i < reg->cfg->nqueues; i++)
        json_array_append_new(qs, json_string(reg->cfg->queues[i].name));
    char started[40], seen[40];
    int64_t now = jobd_now_ms();
    jobd_format_rfc3339(reg->started_ms, started, sizeof started);
    jobd_format_rfc3339(now, seen, sizeof seen);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:b, s:o, s:I, s:I}", "id",
                          reg->cfg->worker_id, "host", reg->host, "pid", (int)getpid(),
                          "started_at", started, "last_seen", seen, "in_flight", s->running,
                          "concurrency", reg->cfg->concurrency, "draining", s->draining, "queues",
                          qs, "claimed", (json_int_t)s->counters.claimed, "lease_lost",
                          (json_int_t)s->counters.lease_lost);
    if (!o) {
        json_decref(jobs);
        return;
    }
    json_object_set_new(o, "version", json_string(JOBD_VERSION));
    json_object_set_new(o, "jobs", jobs ? jobs : json_array());
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) return;
    char key[KEYS_MAX], name[KEYS_MAX], zkey[KEYS_MAX], ttl[32], score[32];
    snprintf(name, sizeof name, "worker:%s", reg->cfg->worker_id);
    keys_global(key, reg->cfg->prefix, name);
    keys_global(zkey, reg->cfg->prefix, "workers");
    /* Expires after three missed heartbeats: a dead worker drops out. */
    snprintf(ttl, sizeof ttl, "%lld", (long long)reg->cfg->lease_ms);
    snprintf(score, sizeof score, "%lld", (long long)now);
    const char *set[] = {"SET", key, text, "PX", ttl};
    size_t setl[] = {3, strlen(key), strlen(text), 2, strlen(ttl)};
    rq_command(reg->rq, 5, set, setl, on_ignore, NULL);
    const char *zadd[] = {"ZADD", zkey, score, reg->cfg->worker_id};
    size_t zaddl[] = {4, strlen(zkey), strlen(score), strlen(reg->cfg->worker_id)};
    rq_command(reg->rq, 4, zadd, zaddl, on_ignore, NULL);
    free(text);
}

void registry_unpublish(registry_t *reg)
{
    char key[KEYS_MAX], name[KEYS_MAX], zkey[KEYS_MAX];
    snprintf(name, sizeof name, "worker:%s", reg->cfg->worker_id);
    keys_global(key, reg->cfg->prefix, name);
    keys_global(zkey, reg->cfg->prefix, "workers");
    const char *del[] = {"DEL", key};
    size_t dell[] = {3, strlen(key)};
    rq_command(reg->rq, 2, del, dell, on_ignore, NULL);
    const char *zrem[] = {"ZREM", zkey, reg->cfg->worker_id};
    size_t zreml[] = {4, strlen(zkey), strlen(reg->cfg->worker_id)};
    rq_command(reg->rq, 3, zrem, zreml, on_ignore, NULL);
}
