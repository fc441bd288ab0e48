/* wait.c - jobd_wait: wait for jobs to finish without polling Redis.
 *
 * DESIGN: subscribe first (a second connection), then mark each job watched
 * and read its state with watch.lua; scripts publish every later change of a
 * watched job on PREFIX:{QUEUE}:ev:ID, so no change falls between the read
 * and the subscription. The loop then sleeps in poll() on the subscriber's
 * socket. Every RESYNC_MS it re-reads the states once, a cheap safety net
 * should a message be lost with a connection. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "keys.h"

#define RESYNC_MS 10000

typedef struct {
    const char *id;
    char queue[128];
    char channel[KEYS_MAX];
    jobd_state_t state;
    double progress;
} watched_t;

static int terminal(jobd_state_t s)
{
    return s == JOBD_SUCCEEDED || s == JOBD_DEAD || s == JOBD_CANCELED;
}

/* Reads (and marks watched) the state of every job; returns how many are
 * terminal, or an error. */
static int read_states(jobd_client_t *c, watched_t *w, size_t n, jobd_wait_cb cb, void *arg)
{
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        client_script_begin(c, PROTO_WATCH, w[i].queue);
        proto_argv_adds(&c->argv, w[i].id);
        redisReply *r;
        int rc = client_script_call(c, &r);
        if (rc < 0) return rc;
        if (r->elements != 2) {
            freeReplyObject(r);
            return client_err(c, JOBD_ENOTFOUND, "no such job: %s", w[i].id);
        }
        int s = jobd_state_parse(r->element[0]->str);
        double p = strtod(r->element[1]->str, NULL);
        freeReplyObject(r);
        if (s < 0) return client_err(c, JOBD_EREDIS, "job %s has unknown state", w[i].id);
        if ((jobd_state_t)s != w[i].state || p != w[i].progress) {
            w[i].state = (jobd_state_t)s;
            w[i].progress = p;
            if (cb) cb(arg, w[i].id, jobd_state_name(w[i].state), p);
        }
        done += terminal(w[i].state);
    }
    return done;
}

/* Applies one pub/sub message; returns 1 if a job became terminal. */
static int on_message(watched_t *w, size_t n, const redisReply *m, jobd_wait_cb cb, void *arg)
{
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
        strcmp(m->element[0]->str, "message") != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i].channel, m->element[1]->str) != 0 || terminal(w[i].state)) continue;
        const char *what = m->element[2]->str;
        if (strncmp(what, "progress", 8) == 0) {
            if (what[8] == ':') w[i].progress = strtod(what + 9, NULL);
        } else {
            int s = jobd_state_parse(what);
            if (s >= 0) w[i].state = (jobd_state_t)s;
            if (w[i].state == JOBD_SUCCEEDED) w[i].progress = 1;
        }
        if (cb) cb(arg, w[i].id, jobd_state_name(w[i].state), w[i].progress);
        return terminal(w[i].state);
    }
    return 0;
}

static int subscribe(jobd_client_t *c, redisContext *sub, watched_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "ev:%s", w[i].id);
        keys_queue_key(w[i].channel, c->prefix, w[i].queue, suffix);
        redisAppendCommand(sub, "SUBSCRIBE %s", w[i].channel);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (redisGetReply(sub, (void **)&r) != REDIS_OK)
            return client_err(c, JOBD_ECONN, "Redis: subscribe failed: %s", sub->errstr);
        freeReplyObject(r);
    }
    return 0;
}

int jobd_wait(jobd_client_t *c, const char *const *ids, size_t n, int64_t timeout_ms,
              jobd_wait_cb cb, void *arg, jobd_state_t *states_out)
{
    watched_t *w = calloc(n ? n : 1, sizeof *w);
    if (!w) return client_err(c, JOBD_ENOMEM, "out of memory");
    redisContext *sub = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        w[i].id = ids[i];
        w[i].state = (jobd_state_t)-1;
        w[i].progress = -1;
        rc = client_find_queue(c, ids[i], w[i].queue, sizeof w[i].queue);
    }
    if (rc < 0) goto out;
    if ((rc = client_connect(c, &sub)) < 0) goto out;
    if ((rc = subscribe(c, sub, w, n)) < 0) goto out;
    int64_t deadline = timeout_ms > 0 ? jobd_now_ms() + timeout_ms : 0;
    int64_t resync = jobd_now_ms() + RESYNC_MS;
    size_t done;
    if ((rc = read_states(c, w, n, cb, arg)) < 0) goto out;
    done = (size_t)rc;
    rc = 0;
    while (done < n) {
        /* Replies already buffered by an earlier read come first. */
        redisReply *m = NULL;
        if (redisGetReplyFromReader(sub, (void **)&m) != REDIS_OK) {
            rc = client_err(c, JOBD_ECONN, "Redis: %s", sub->errstr);
            break;
        }
        if (m) {
            done += (size_t)on_message(w, n, m, cb, arg);
            freeReplyObject(m);
            continue;
        }
        int64_t now = jobd_now_ms();
        if (deadline && now >= deadline) {
            rc = client_err(c, JOBD_ETIMEDOUT, "timed out waiting for %zu of %zu jobs", n - done,
                            n);
            break;
        }
        if (now >= resync) {
            if ((rc = read_states(c, w, n, cb, arg)) < 0) break;
            done = (size_t)rc;
            rc = 0;
            resync = now + RESYNC_MS;
            continue;
        }
        int64_t wait = resync - now;
        if (deadline && deadline - now < wait) wait = deadline - now;
        struct pollfd pfd = {.fd = sub->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)wait);
        if (pr > 0 && redisBufferRead(sub) != REDIS_OK) {
            rc = client_err(c, JOBD_ECONN, "Redis connection lost while waiting: %s", sub->errstr);
            break;
        }
    }
    if (rc == 0 && states_out)
        for (size_t i = 0; i < n; i++)
            states_out[i] = w[i].state;
out:
    if (sub) redisFree(sub);
    free(w);
    return rc;
}
