/* handlers.c - see handlers.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "handlers.h"
#include "num.h"

/* A duration key of a handler, in ms (absent: 0, the job's or jobd's
 * applies). Returns 0, or -1 with a message naming the type and key. */
static int seconds_ms(json_t *spec, const char *type, const char *key, int64_t *out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(spec, key);
    char why[256];
    *out = 0;
    if (!v) return 0;
    if (num_json_seconds_ms(v, key, 0, NUM_100Y_MS, out, why, sizeof why) < 0) {
        snprintf(err, errlen, "handler \"%s\": %s", type, why);
        return -1;
    }
    return 0;
}

/* An integer key of a persistent handler in lo..hi (absent: *out stays). */
static int int_key(json_t *spec, const char *type, const char *key, int64_t lo, int64_t hi,
                   int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(spec, key);
    char why[256];
    if (v && num_json_int(v, key, lo, hi, out, why, sizeof why) < 0) {
        snprintf(err, errlen, "handler \"%s\": %s", type, why);
        return -1;
    }
    return 0;
}

/* "mode" and the pool keys (protocol v2). */
static int load_mode(handler_t *h, const char *type, json_t *spec, char *err, size_t errlen)
{
    json_t *mode = json_object_get(spec, "mode");
    if (mode) {
        const char *m = json_string_value(mode);
        if (!m || (strcmp(m, "persistent") != 0 && strcmp(m, "process") != 0)) {
            snprintf(err, errlen,
                     "handler \"%s\": \"mode\" must be \"persistent\" or \"process\" "
                     "(the default: one process per job)",
                     type);
            return -1;
        }
        h->persistent = strcmp(m, "persistent") == 0;
    }
    static const char *const pool_keys[] = {"processes", "max_jobs", "max_rss_mb",
                                            "start_timeout_s", NULL};
    for (int i = 0; pool_keys[i]; i++) {
        if (!h->persistent && json_object_get(spec, pool_keys[i])) {
            snprintf(err, errlen, "handler \"%s\": \"%s\" needs \"mode\": \"persistent\"", type,
                     pool_keys[i]);
            return -1;
        }
    }
    if (!h->persistent) return 0;
    if (h->builtin) {
        snprintf(err, errlen, "handler \"%s\": \"mode\": \"persistent\" needs \"exec\"", type);
        return -1;
    }
    int64_t processes = 0;
    h->start_timeout_ms = HANDLER_START_TIMEOUT_MS;
    if (int_key(spec, type, "processes", 1, HANDLER_PROCESSES_MAX, &processes, err, errlen) < 0 ||
        int_key(spec, type, "max_jobs", 0, INT64_C(1000000000000), &h->max_jobs, err, errlen) < 0 ||
        int_key(spec, type, "max_rss_mb", 0, INT64_C(16777216), &h->max_rss_mb, err, errlen) < 0)
        return -1;
    h->processes = (int)processes;
    json_t *st = json_object_get(spec, "start_timeout_s");
    char why[256];
    if (st && num_json_seconds_ms(st, "start_timeout_s", 100, NUM_100Y_MS, &h->start_timeout_ms,
                                  why, sizeof why) < 0) {
        snprintf(err, errlen, "handler \"%s\": %s", type, why);
        return -1;
    }
    return 0;
}

/* "exec": the program and its arguments, the program checked now. */
static int load_exec(handler_t *h, const char *type, json_t *exec, char *err, size_t errlen)
{
    size_t n = json_array_size(exec);
    if (!json_is_array(exec) || n == 0) {
        snprintf(err, errlen, "handler \"%s\": \"exec\" must be a non-empty array", type);
        return -1;
    }
    h->argv = calloc(n + 1, sizeof *h->argv);
    for (size_t i = 0; i < n; i++) {
        const char *a = json_string_value(json_array_get(exec, i));
        if (!a) {
            snprintf(err, errlen, "handler \"%s\": \"exec\" items must be strings", type);
            return -1;
        }
        h->argv[i] = strdup(a);
    }
    if (access(h->argv[0], X_OK) != 0) {
        snprintf(err, errlen,
                 "handler \"%s\": %s is not an executable file (exec needs an "
                 "absolute or relative path; there is no shell or PATH search)",
                 type, h->argv[0]);
        return -1;
    }
    return 0;
}

static int load_one(handler_t *h, const char *type, json_t *spec, char *err, size_t errlen)
{
    h->type = strdup(type);
    if (!json_is_object(spec)) {
        snprintf(err, errlen, "handler \"%s\": want an object", type);
        return -1;
    }
    json_t *exec = json_object_get(spec, "exec"), *bi = json_object_get(spec, "builtin");
    if ((exec != NULL) == (bi != NULL)) {
        snprintf(err, errlen, "handler \"%s\": want exactly one of \"exec\" or \"builtin\"", type);
        return -1;
    }
    if (exec) {
        if (load_exec(h, type, exec, err, errlen) < 0) return -1;
    } else {
        h->builtin = json_is_string(bi) ? builtin_find(json_string_value(bi)) : NULL;
        if (!h->builtin) {
            snprintf(err, errlen, "handler \"%s\": no built-in named %s", type,
                     json_is_string(bi) ? json_string_value(bi) : "(not a string)");
            return -1;
        }
    }
    static const char *const known[] = {
        "exec",      "builtin", "timeout_s", "max_attempts", "retry_base_s",    "retry_cap_s",
        "resources", "mode",    "processes", "max_jobs",     "start_timeout_s", "max_rss_mb",
        NULL};
    const char *k;
    json_t *v;
    json_object_foreach(spec, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "handler \"%s\": unknown key \"%s\"", type, k);
            return -1;
        }
    }
    /* A job's own max_attempts may be 1..1000 (the schema's range); so may
     * the handler's. */
    json_t *ma = json_object_get(spec, "max_attempts");
    int64_t max = 0;
    char why[256];
    if (ma && num_json_int(ma, "max_attempts", 1, 1000, &max, why, sizeof why) < 0) {
        snprintf(err, errlen, "handler \"%s\": %s", type, why);
        return -1;
    }
    h->max_attempts = (int)max;
    if (seconds_ms(spec, type, "timeout_s", &h->timeout_ms, err, errlen) < 0 ||
        seconds_ms(spec, type, "retry_base_s", &h->retry_base_ms, err, errlen) < 0 ||
        seconds_ms(spec, type, "retry_cap_s", &h->retry_cap_ms, err, errlen) < 0)
        return -1;
    if (load_mode(h, type, spec, err, errlen) < 0) return -1;
    json_t *res = json_object_get(spec, "resources");
    if (res) {
        if (!json_is_object(res)) {
            snprintf(err, errlen, "handler \"%s\": \"resources\" must be {\"name\": units}", type);
            return -1;
        }
        h->resources = json_incref(res);
    }
    return 0;
}

/* One handler_t per built-in, answering to the built-in's own name. */
static int load_builtins(handlers_t *h, char *err, size_t errlen)
{
    h->nbuiltins = builtin_count();
    h->builtins = calloc(h->nbuiltins, sizeof *h->builtins);
    if (!h->builtins) {
        h->nbuiltins = 0;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < h->nbuiltins; i++) {
        h->builtins[i].builtin = builtin_at(i);
        h->builtins[i].type = (char *)builtin_at(i)->name; /* static: never freed */
    }
    return 0;
}

int handlers_load(handlers_t *h, const char *path, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (load_builtins(h, err, errlen) < 0) return -1;
    if (!path || !*path) return 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "handlers file %s: %s (line %d)", path, je.text, je.line);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "handlers file %s: want an object of job types", path);
        rc = -1;
    } else {
        h->items = calloc(json_object_size(root) + 1, sizeof *h->items);
        if (!h->items) {
            snprintf(err, errlen, "handlers file %s: out of memory", path);
            json_decref(root);
            return -1;
        }
        const char *type;
        json_t *spec;
        json_object_foreach(root, type, spec)
        {
            char nerr[256];
            if (envelope_check_name("type", type, nerr, sizeof nerr) < 0) {
                snprintf(err, errlen, "handlers file %s: %s", path, nerr);
                rc = -1;
                break;
            }
            rc = load_one(&h->items[h->n++], type, spec, err, errlen);
            if (rc < 0) break;
        }
    }
    json_decref(root);
    return rc;
}

int handlers_check_resources(const handlers_t *h, json_t *limits, char *err, size_t errlen)
{
    const char *name;
    json_t *v;
    json_object_foreach(limits, name, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            snprintf(err, errlen, "config key \"resources.%s\": the limit must be an integer >= 1",
                     name);
            return -1;
        }
    }
    for (size_t i = 0; i < h->n; i++) {
        json_object_foreach(h->items[i].resources, name, v)
        {
            json_t *limit = json_object_get(limits, name);
            if (!limit) {
                snprintf(err, errlen,
                         "handler \"%s\" needs resource \"%s\", which the config "
                         "file's \"resources\" section does not limit",
                         h->items[i].type, name);
                return -1;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > json_integer_value(limit)) {
                snprintf(err, errlen,
                         "handler \"%s\": units of \"%s\" must be an integer in "
                         "1..%lld",
                         h->items[i].type, name, (long long)json_integer_value(limit));
                return -1;
            }
        }
    }
    return 0;
}

int handlers_persistent_processes(const handlers_t *h, const handler_t *one, int concurrency)
{
    if (one->processes > 0) return one->processes;
    int n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->items[i].persistent;
    if (n < 1) n = 1;
    int share = (concurrency + n - 1) / n;
    if (share > HANDLER_PROCESSES_MAX) share = HANDLER_PROCESSES_MAX;
    return share > 0 ? share : 1;
}

const handler_t *handlers_find(const handlers_t *h, const char *type)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->items[i].type, type) == 0) return &h->items[i];
    /* Built-ins answer to their own names unless the file maps them. */
    for (size_t i = 0; i < h->nbuiltins; i++)
        if (strcmp(h->builtins[i].type, type) == 0) return &h->builtins[i];
    return NULL;
}

void handlers_free(handlers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->items[i].type);
        for (char **a = h->items[i].argv; a && *a; a++)
            free(*a);
        free(h->items[i].argv);
        json_decref(h->items[i].resources);
    }
    free(h->items);
    free(h->builtins);
    memset(h, 0, sizeof *h);
}
