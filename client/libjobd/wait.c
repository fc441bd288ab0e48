/* wait.c - jobd_wait: wait for jobs to finish without polling Redis.
 *
 * DESIGN: subscribe first (a second connection), then mark each job watched
 * and read its state with watch.lua; scripts publish every later change of a
 * watched job on PREFIX:{QUEUE}:ev:ID, so no change falls between the read
 * and the subscription. The loop then sleeps in poll() on the subscriber's
 * socket. Every RESYNC_MS it re-reads the states once, a cheap safety net
 * should a message be lost with a connection.
 *
 * `jobctl submit --batch --wait` waits for 100,000 jobs at once, so every
 * per-job step is pipelined in windows of WINDOW commands, and a message
 * finds its job by binary search over the channels, not a scan. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "keys.h"

#define RESYNC_MS 10000
#define WINDOW 512

typedef struct {
    const char *id;
    const char *queue; /* borrowed from waitset_t.queues */
    char *channel;     /* malloc'd: PREFIX:{QUEUE}:ev:ID */
    jobd_state_t state;
    double progress;
} watched_t;

typedef struct {
    watched_t *w;
    watched_t **by_channel; /* sorted by channel, for on_message */
    json_t *queues;         /* the queue names, kept while w points into them */
    size_t n;
    jobd_wait_cb cb;
    void *arg;
} waitset_t;

static int terminal(jobd_state_t s)
{
    return s == JOBD_SUCCEEDED || s == JOBD_DEAD || s == JOBD_CANCELED;
}

/* Finds the queue of jobs [start, end): one EXISTS per job and queue, each
 * on its queue's node, pipelined. CLIENT_EREDIRECT: start over. */
static int find_window(jobd_client_t *c, waitset_t *ws, size_t start, size_t end, int *nodes)
{
    watched_t *w = ws->w;
    json_t *queues = ws->queues;
    size_t nq = json_array_size(queues), k = 0;
    int rc = 0;
    for (size_t i = start; i < end && rc >= 0; i++) {
        char key[KEYS_MAX], suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "job:%s", w[i].id);
        for (size_t q = 0; q < nq && rc >= 0; q++) {
            keys_queue_key(key, c->prefix, json_string_value(json_array_get(queues, q)), suffix);
            if ((rc = nodes[k] = client_pipe_appendf(c, key, "EXISTS %s", key)) >= 0) k++;
        }
    }
    size_t sent = k;
    if (rc > 0) rc = 0;
    k = 0;
    for (size_t i = start; i < end && k < sent; i++) {
        for (size_t q = 0; q < nq && k < sent; q++) {
            redisReply *r;
            int e = client_pipe_read_ok(c, nodes[k++], "EXISTS", &r);
            if (e == JOBD_ECONN) return e;
            if (e < 0) {
                rc = rc < 0 && rc != CLIENT_EREDIRECT ? rc : e;
                continue;
            }
            if (r->type == REDIS_REPLY_INTEGER && r->integer == 1 && !w[i].queue)
                w[i].queue = json_string_value(json_array_get(queues, q));
            freeReplyObject(r);
        }
    }
    return rc < 0 ? rc : 0;
}

/* Finds each job's queue: one SMEMBERS, then find_window per window.
 * Returns 0 or JOBD_ENOTFOUND naming the first unknown id. */
static int find_queues(jobd_client_t *c, waitset_t *ws)
{
    watched_t *w = ws->w;
    size_t n = ws->n;
    int rc = jobd_queues(c, &ws->queues);
    if (rc < 0) return rc;
    size_t nq = json_array_size(ws->queues);
    size_t per = nq ? (WINDOW + nq - 1) / nq : WINDOW; /* jobs per window */
    int *nodes = malloc((per * (nq ? nq : 1)) * sizeof *nodes);
    if (!nodes) return client_err(c, JOBD_ENOMEM, "out of memory");
    for (size_t start = 0; start < n && rc == 0; start += per) {
        size_t end = start + per < n ? start + per : n;
        for (int t = 0; t < 4; t++) {
            for (size_t i = start; i < end; i++)
                w[i].queue = NULL;
            if ((rc = find_window(c, ws, start, end, nodes)) != CLIENT_EREDIRECT) break;
            if ((rc = client_pipe_recover(c)) < 0) break;
            rc = client_err(c, JOBD_EREDIS, "Redis Cluster: redirected again and again");
        }
        for (size_t i = start; i < end && rc == 0; i++)
            if (!w[i].queue) rc = client_err(c, JOBD_ENOTFOUND, "no such job: %s", w[i].id);
    }
    free(nodes);
    return rc;
}

/* Applies a state read by watch.lua to job i; returns 1 if it is terminal. */
static int apply_state(waitset_t *ws, watched_t *w, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
    int s = jobd_state_parse(r->element[0]->str);
    double p = strtod(r->element[1]->str, NULL);
    if (s < 0) return -1;
    if ((jobd_state_t)s != w->state || p != w->progress) {
        w->state = (jobd_state_t)s;
        w->progress = p;
        if (ws->cb) ws->cb(ws->arg, w->id, jobd_state_name(w->state), p);
    }
    return terminal(w->state);
}

static void add_watch(jobd_client_t *c, const watched_t *w)
{
    client_script_begin(c, PROTO_WATCH, w->queue);
    proto_argv_adds(&c->argv, w->id);
}

/* Reads (and marks watched) the state of jobs [start, end), pipelined, each
 * call on its queue's node; returns how many are terminal, an error, or
 * CLIENT_EREDIRECT (start over: watch.lua changes nothing twice). */
static int read_window(jobd_client_t *c, waitset_t *ws, size_t start, size_t end, int *nodes)
{
    watched_t *w = ws->w;
    int rc = 0, done = 0;
    size_t sent = start;
    for (; sent < end; sent++) {
        add_watch(c, &w[sent]);
        if ((rc = nodes[sent - start] = client_script_send(c)) < 0) break;
    }
    if (rc > 0) rc = 0;
    for (size_t i = start; i < sent; i++) {
        redisReply *r;
        int e = client_script_reply(c, nodes[i - start], PROTO_WATCH, &r);
        if (e == JOBD_ECONN) return e;
        if (e < 0) {
            if (rc >= 0 || e == CLIENT_EREDIRECT) rc = e;
            continue;
        }
        int t = apply_state(ws, &w[i], r);
        freeReplyObject(r);
        /* Its record expired between the find and now. */
        if (t < 0 && rc >= 0) rc = client_err(c, JOBD_ENOTFOUND, "no such job: %s", w[i].id);
        if (t > 0) done++;
    }
    return rc < 0 ? rc : done;
}

/* Reads (and marks watched) the state of every job; returns how many are
 * terminal, or an error. */
static int read_states(jobd_client_t *c, waitset_t *ws)
{
    watched_t *w = ws->w;
    size_t n = ws->n;
    int done = 0;
    if (n == 0) return 0;
    /* The first call alone, so a NOSCRIPT (Redis restarted) is reloaded and
     * retried before the pipelined ones. */
    redisReply *r;
    add_watch(c, &w[0]);
    int rc = client_script_call(c, &r);
    if (rc < 0) return rc;
    int t = apply_state(ws, &w[0], r);
    freeReplyObject(r);
    if (t < 0) return client_err(c, JOBD_ENOTFOUND, "no such job: %s", w[0].id);
    done += t;
    int nodes[WINDOW];
    for (size_t start = 1; start < n; start += WINDOW) {
        size_t end = start + WINDOW < n ? start + WINDOW : n;
        for (int tries = 0;; tries++) {
            rc = read_window(c, ws, start, end, nodes);
            if (rc != CLIENT_EREDIRECT) break;
            if (tries == 3)
                return client_err(c, JOBD_EREDIS, "Redis Cluster: redirected again and again");
            if ((rc = client_pipe_recover(c)) < 0) return rc;
        }
        if (rc < 0) return rc;
        done += rc;
    }
    return done;
}

static int cmp_channel(const void *a, const void *b)
{
    return strcmp((*(watched_t *const *)a)->channel, (*(watched_t *const *)b)->channel);
}

static int cmp_key_channel(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(watched_t *const *)elem)->channel);
}

/* Applies one message to job w; returns 1 if it became terminal. */
static int apply_message(waitset_t *ws, watched_t *w, const char *what)
{
    if (terminal(w->state)) return 0;
    if (strncmp(what, "progress", 8) == 0) {
        if (what[8] == ':') w->progress = strtod(what + 9, NULL);
        /* claim.lua publishes nothing, so progress is how a waiter learns
         * that a job it saw queued now runs. */
        if (w->state == JOBD_QUEUED || w->state == JOBD_SCHEDULED) w->state = JOBD_ACTIVE;
    } else {
        int s = jobd_state_parse(what);
        if (s >= 0) w->state = (jobd_state_t)s;
        if (w->state == JOBD_SUCCEEDED) w->progress = 1;
    }
    if (ws->cb) ws->cb(ws->arg, w->id, jobd_state_name(w->state), w->progress);
    return terminal(w->state);
}

/* Applies one pub/sub message; returns how many jobs became terminal. */
static int on_message(waitset_t *ws, const redisReply *m)
{
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
        m->element[0]->type != REDIS_REPLY_STRING || strcmp(m->element[0]->str, "message") != 0)
        return 0;
    const char *channel = m->element[1]->str;
    watched_t **hit = bsearch(channel, ws->by_channel, ws->n, sizeof(watched_t *), cmp_key_channel);
    if (!hit) return 0;
    /* The same id given twice has one channel: update every entry. */
    while (hit > ws->by_channel && strcmp(hit[-1]->channel, channel) == 0)
        hit--;
    int done = 0;
    for (; hit < ws->by_channel + ws->n && strcmp((*hit)->channel, channel) == 0; hit++)
        done += apply_message(ws, *hit, m->element[2]->str);
    return done;
}

static int subscribe(jobd_client_t *c, redisContext *sub, watched_t *w, size_t n)
{
    for (size_t start = 0; start < n; start += WINDOW) {
        size_t end = start + WINDOW < n ? start + WINDOW : n;
        for (size_t i = start; i < end; i++)
            redisAppendCommand(sub, "SUBSCRIBE %s", w[i].channel);
        for (size_t i = start; i < end; i++) {
            redisReply *r;
            if (redisGetReply(sub, (void **)&r) != REDIS_OK)
                return client_err(c, JOBD_ECONN, "Redis: subscribe failed: %s", sub->errstr);
            freeReplyObject(r);
        }
    }
    return 0;
}

static int wait_loop(jobd_client_t *c, redisContext *sub, waitset_t *ws, int64_t timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? jobd_now_ms() + timeout_ms : 0;
    int64_t resync = jobd_now_ms() + RESYNC_MS;
    int rc = read_states(c, ws);
    if (rc < 0) return rc;
    size_t done = (size_t)rc, n = ws->n;
    while (done < n) {
        /* Replies already buffered by an earlier read come first. */
        redisReply *m = NULL;
        if (redisGetReplyFromReader(sub, (void **)&m) != REDIS_OK)
            return client_err(c, JOBD_ECONN, "Redis: %s", sub->errstr);
        if (m) {
            done += (size_t)on_message(ws, m);
            freeReplyObject(m);
            continue;
        }
        int64_t now = jobd_now_ms();
        if (deadline && now >= deadline)
            return client_err(c, JOBD_ETIMEDOUT,
                              "timed out after %lldms waiting for %zu of %zu "
                              "jobs",
                              (long long)timeout_ms, n - done, n);
        if (now >= resync) {
            if ((rc = read_states(c, ws)) < 0) return rc;
            done = (size_t)rc;
            resync = now + RESYNC_MS;
            continue;
        }
        int64_t wait = resync - now;
        if (deadline && deadline - now < wait) wait = deadline - now;
        struct pollfd pfd = {.fd = sub->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)wait);
        if (pr > 0 && redisBufferRead(sub) != REDIS_OK)
            return client_err(c, JOBD_ECONN, "Redis connection lost while waiting: %s",
                              sub->errstr);
    }
    return 0;
}

int jobd_wait(jobd_client_t *c, const char *const *ids, size_t n, int64_t timeout_ms,
              jobd_wait_cb cb, void *arg, jobd_state_t *states_out)
{
    waitset_t ws = {.n = n, .cb = cb, .arg = arg};
    ws.w = calloc(n ? n : 1, sizeof *ws.w);
    ws.by_channel = calloc(n ? n : 1, sizeof(watched_t *));
    redisContext *sub = NULL;
    int rc;
    if (!ws.w || !ws.by_channel) {
        rc = client_err(c, JOBD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ws.w[i].id = ids[i];
        ws.w[i].state = (jobd_state_t)-1;
        ws.w[i].progress = -1;
    }
    if ((rc = find_queues(c, &ws)) < 0) goto out;
    for (size_t i = 0; i < n; i++) {
        char suffix[KEYS_MAX], channel[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "ev:%s", ws.w[i].id);
        keys_queue_key(channel, c->prefix, ws.w[i].queue, suffix);
        if (!(ws.w[i].channel = strdup(channel))) {
            rc = client_err(c, JOBD_ENOMEM, "out of memory");
            goto out;
        }
        ws.by_channel[i] = &ws.w[i];
    }
    qsort(ws.by_channel, n, sizeof(watched_t *), cmp_channel);
    /* On a cluster, any node: PUBLISH reaches every node's subscribers
     * (the scripts use plain PUBLISH). The node of the first job's queue
     * is one we are connected to already. */
    {
        char qp[KEYS_MAX];
        keys_queue_prefix(qp, c->prefix, n ? ws.w[0].queue : "x");
        if ((rc = client_route(c, qp)) < 0) goto out;
        const cluster_addr_t *a =
            c->cluster || c->url.kind == REDIS_URL_SENTINEL ? &c->nodes[c->cur].addr : NULL;
        if ((rc = client_connect_addr(c, a, &sub)) < 0) goto out;
    }
    if ((rc = subscribe(c, sub, ws.w, n)) < 0) goto out;
    if ((rc = wait_loop(c, sub, &ws, timeout_ms)) < 0) goto out;
    if (states_out)
        for (size_t i = 0; i < n; i++)
            states_out[i] = ws.w[i].state;
out:
    if (sub) redisFree(sub);
    for (size_t i = 0; ws.w && i < n; i++)
        free(ws.w[i].channel);
    json_decref(ws.queues);
    free(ws.by_channel);
    free(ws.w);
    return rc;
}
