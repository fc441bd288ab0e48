/* registry.c - see registry.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd/version.h"
#include "keys.h"
#include "registry.h"

static void on_ignore(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

/* The jobs whose handlers run now, for the console's workers page: id,
 * queue, type, attempt, progress, started_at. */
static json_t *held_jobs(worker_t *w)
{
    json_t *arr = json_array();
    for (job_t *j = w->held; j; j = j->next) {
        if (!j->running) continue;
        pthread_mutex_lock(&j->mu);
        double progress = j->progress;
        pthread_mutex_unlock(&j->mu);
        char started[40];
        jobd_format_rfc3339(j->started_ms, started, sizeof started);
        json_t *o = json_pack("{s:s, s:s, s:s?, s:i, s:f, s:s}", "id", j->id, "queue",
                              w->cfg->queues[j->qidx].name, "type", j->env.type, "attempt",
                              j->attempt, "progress", progress, "started_at", started);
        if (o) json_array_append_new(arr, o);
    }
    return arr;
}

void registry_publish(worker_t *w)
{
    json_t *qs = json_array();
    for (int i = 0; i < w->cfg->nqueues; i++)
        json_array_append_new(qs, json_string(w->cfg->queues[i].name));
    char started[40], seen[40];
    int64_t now = jobd_now_ms();
    jobd_format_rfc3339(w->started_ms, started, sizeof started);
    jobd_format_rfc3339(now, seen, sizeof seen);
    json_t *o =
        json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:b, s:o, s:I, s:I}", "id",
                  w->cfg->worker_id, "host", w->host, "pid", (int)getpid(), "started_at", started,
                  "last_seen", seen, "in_flight", w->running, "concurrency", w->cfg->concurrency,
                  "draining", w->state != WORKER_RUNNING, "queues", qs, "claimed",
                  (json_int_t)w->stats.claimed, "lease_lost", (json_int_t)w->stats.lease_lost);
    json_object_set_new(o, "version", json_string(JOBD_VERSION));
    json_object_set_new(o, "jobs", held_jobs(w));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char key[KEYS_MAX], name[KEYS_MAX], zkey[KEYS_MAX], ttl[32], score[32];
    snprintf(name, sizeof name, "worker:%s", w->cfg->worker_id);
    keys_global(key, w->cfg->prefix, name);
    keys_global(zkey, w->cfg->prefix, "workers");
    /* Expires after three missed heartbeats: a dead worker drops out. */
    snprintf(ttl, sizeof ttl, "%lld", (long long)w->cfg->lease_ms);
    snprintf(score, sizeof score, "%lld", (long long)now);
    const char *set[] = {"SET", key, text, "PX", ttl};
    size_t setl[] = {3, strlen(key), strlen(text), 2, strlen(ttl)};
    rq_command(&w->rq, 5, set, setl, on_ignore, NULL);
    const char *zadd[] = {"ZADD", zkey, score, w->cfg->worker_id};
    size_t zaddl[] = {4, strlen(zkey), strlen(score), strlen(w->cfg->worker_id)};
    rq_command(&w->rq, 4, zadd, zaddl, on_ignore, NULL);
    free(text);
}

void registry_unpublish(worker_t *w)
{
    char key[KEYS_MAX], name[KEYS_MAX], zkey[KEYS_MAX];
    snprintf(name, sizeof name, "worker:%s", w->cfg->worker_id);
    keys_global(key, w->cfg->prefix, name);
    keys_global(zkey, w->cfg->prefix, "workers");
    const char *del[] = {"DEL", key};
    size_t dell[] = {3, strlen(key)};
    rq_command(&w->rq, 2, del, dell, on_ignore, NULL);
    const char *zrem[] = {"ZREM", zkey, w->cfg->worker_id};
    size_t zreml[] = {4, strlen(zkey), strlen(w->cfg->worker_id)};
    rq_command(&w->rq, 3, zrem, zreml, on_ignore, NULL);
}
