/* schedules.c - jobd_schedules: what jobd publishes about its cron
 * schedules (PREFIX:schedules) joined with what each schedule's queue
 * records (PREFIX:{QUEUE}:schedules, tick.lua). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "keys.h"

static json_t *time_or_null(long long ms)
{
    if (ms < 0) return json_null();
    char buf[40];
    jobd_format_rfc3339(ms, buf, sizeof buf);
    return json_string(buf);
}

typedef struct {
    json_t *s; /* borrowed from the array */
} item_t;

static int by_name(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    return strcmp(json_string_value(json_object_get(x->s, "name")),
                  json_string_value(json_object_get(y->s, "name")));
}

/* Adds last, last_job and skipped from the queue's record to s. */
static int add_record(jobd_client_t *c, json_t *s)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *queue = json_string_value(json_object_get(s, "queue"));
    char key[KEYS_MAX], job[200], skipped[200];
    keys_queue_key(key, c->prefix, queue, "schedules");
    snprintf(job, sizeof job, "%s|job", name);
    snprintf(skipped, sizeof skipped, "%s|skipped", name);
    redisReply *r;
    int rc = client_command(c, key, &r, "HMGET %s %s %s %s", key, name, job, skipped);
    if (rc < 0) return rc;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3;
    redisReply *last = ok ? r->element[0] : NULL, *id = ok ? r->element[1] : NULL,
               *sk = ok ? r->element[2] : NULL;
    json_object_set_new(
        s, "last",
        time_or_null(last && last->type == REDIS_REPLY_STRING ? strtoll(last->str, NULL, 10) : -1));
    json_object_set_new(s, "last_job",
                        id && id->type == REDIS_REPLY_STRING ? json_stringn(id->str, id->len)
                                                             : json_null());
    json_object_set_new(
        s, "skipped",
        json_integer(sk && sk->type == REDIS_REPLY_STRING ? strtoll(sk->str, NULL, 10) : 0));
    freeReplyObject(r);
    return 0;
}

int jobd_schedules(jobd_client_t *c, json_t **out)
{
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "schedules");
    redisReply *all;
    int rc = client_command(c, key, &all, "HGETALL %s", key);
    if (rc < 0) return rc;
    json_t *arr = json_array();
    for (size_t i = 0; all->type == REDIS_REPLY_ARRAY && i + 1 < all->elements; i += 2) {
        redisReply *v = all->element[i + 1];
        json_t *s = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        /* Anything else in the hash is not ours to show. */
        if (!json_is_object(s) || !json_is_string(json_object_get(s, "name")) ||
            !json_is_string(json_object_get(s, "queue"))) {
            json_decref(s);
            continue;
        }
        json_int_t next = json_integer_value(json_object_get(s, "next"));
        json_object_set_new(
            s, "next",
            time_or_null(json_is_integer(json_object_get(s, "next")) ? (long long)next : -1));
        json_t *upd = json_object_get(s, "updated_at");
        if (json_is_integer(upd))
            json_object_set_new(s, "updated_at", time_or_null(json_integer_value(upd)));
        json_array_append_new(arr, s);
    }
    freeReplyObject(all);
    size_t n = json_array_size(arr);
    item_t *items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++)
        items[i].s = json_array_get(arr, i);
    if (items) qsort(items, n, sizeof *items, by_name);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *s = items ? items[i].s : json_array_get(arr, i);
        rc = add_record(c, s);
        json_array_append(sorted, s);
    }
    free(items);
    json_decref(arr);
    if (rc < 0) {
        json_decref(sorted);
        return rc;
    }
    *out = sorted;
    return 0;
}
