/* config.c - see config.h. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "jobd/client.h"
#include "jobd/version.h"
#include "keys.h"
#include "log.h"
#include "num.h"

/* The largest per-queue limit a config file may set: far above any
 * --concurrency, far below INT_MAX. */
#define MAX_QUEUE_LIMIT 1000000

typedef enum {
    T_STR,
    T_INT,
    T_COUNT,
    T_DUR,
    T_BOOL,
    T_QUEUES,
    T_LOGFMT,
    T_LOGLVL,
    T_BYTES
} opt_type_t;

typedef struct {
    const char *flag; /* long flag without "--" */
    const char *env;
    const char *key; /* config-file key */
    opt_type_t type;
    size_t off;
    int has_arg;
} opt_t;

#define O(f) offsetof(config_t, f)
static const opt_t opts[] = {
    {"config", "JOBD_CONFIG", NULL, T_STR, O(config_file), 1},
    {"redis", "JOBD_REDIS_URL", "redis", T_STR, O(redis_url), 1},
    {"redis-password-file", "JOBD_REDIS_PASSWORD_FILE", "redis_password_file", T_STR,
     O(redis_password_file), 1},
    {"prefix", "JOBD_PREFIX", "prefix", T_STR, O(prefix), 1},
    {"queues", "JOBD_QUEUES", "queues", T_QUEUES, 0, 1},
    {"concurrency", "JOBD_CONCURRENCY", "concurrency", T_INT, O(concurrency), 1},
    {"handlers", "JOBD_HANDLERS", "handlers", T_STR, O(handlers_file), 1},
    {"state-dir", "JOBD_STATE_DIR", "state_dir", T_STR, O(state_dir), 1},
    {"http", "JOBD_HTTP", "http", T_STR, O(http), 1},
    {"lease", "JOBD_LEASE", "lease", T_DUR, O(lease_ms), 1},
    {"drain-timeout", "JOBD_DRAIN_TIMEOUT", "drain_timeout", T_DUR, O(drain_timeout_ms), 1},
    {"kill-grace", "JOBD_KILL_GRACE", "kill_grace", T_DUR, O(kill_grace_ms), 1},
    {"sync-interval", "JOBD_SYNC_INTERVAL", "sync_interval", T_DUR, O(sync_interval_ms), 1},
    {"retry-base", "JOBD_RETRY_BASE", "retry_base", T_DUR, O(retry_base_ms), 1},
    {"retry-cap", "JOBD_RETRY_CAP", "retry_cap", T_DUR, O(retry_cap_ms), 1},
    {"max-output-bytes", "JOBD_MAX_OUTPUT_BYTES", "max_output_bytes", T_BYTES, O(max_output_bytes),
     1},
    {"once", "JOBD_ONCE", "once", T_BOOL, O(once), 0},
    {"worker-id", "JOBD_WORKER_ID", "worker_id", T_STR, O(worker_id), 1},
    {"log-format", "JOBD_LOG_FORMAT", "log_format", T_LOGFMT, O(log_json), 1},
    {"log-level", "JOBD_LOG_LEVEL", "log_level", T_LOGLVL, O(log_level), 1},
    {"check-config", "JOBD_CHECK_CONFIG", NULL, T_BOOL, O(check_config), 0},
    {"no-progress-attempts", "JOBD_NO_PROGRESS_ATTEMPTS", "no_progress_attempts", T_COUNT,
     O(no_progress_attempts), 1},
    {"unknown-type-tries", "JOBD_UNKNOWN_TYPE_TRIES", "unknown_type_tries", T_COUNT,
     O(unknown_type_tries), 1},
    {"unknown-type-delay", "JOBD_UNKNOWN_TYPE_DELAY", "unknown_type_delay", T_DUR,
     O(unknown_type_delay_ms), 1},
    {"schedule-catch-up", "JOBD_SCHEDULE_CATCH_UP", "schedule_catch_up", T_DUR,
     O(schedule_catch_up_ms), 1},
};
#define NOPTS (sizeof opts / sizeof opts[0])

int config_parse_queues(config_t *c, const char *s, char *err, size_t errlen)
{
    c->nqueues = 0;
    char *dup = strdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        for (size_t n = strlen(tok); n && tok[n - 1] == ' '; n--)
            tok[n - 1] = '\0'; /* "a:3, b" and "a:3 ,b" both mean a and b */
        if (!*tok) continue;
        if (c->nqueues == CONFIG_MAX_QUEUES) {
            snprintf(err, errlen, "too many queues (at most %d)", CONFIG_MAX_QUEUES);
            rc = -1;
            break;
        }
        config_queue_t *q = &c->queues[c->nqueues];
        char *colon = strchr(tok, ':');
        q->weight = 1;
        q->limit = 0;
        if (colon) {
            *colon = '\0';
            char *end;
            long w = strtol(colon + 1, &end, 10);
            if (end == colon + 1 || *end || w < 1 || w > 1000) {
                snprintf(err, errlen, "queue %s: weight must be 1..1000", tok);
                rc = -1;
                break;
            }
            q->weight = (int)w;
        }
        char nerr[256];
        if (envelope_check_name("queue", tok, nerr, sizeof nerr) < 0) {
            snprintf(err, errlen, "%s", nerr);
            rc = -1;
            break;
        }
        for (int i = 0; i < c->nqueues; i++)
            if (strcmp(c->queues[i].name, tok) == 0) {
                snprintf(err, errlen, "queue \"%s\" is listed twice", tok);
                rc = -2;
            }
        if (rc) break;
        snprintf(q->name, sizeof q->name, "%s", tok);
        c->nqueues++;
    }
    free(dup);
    if (rc == 0 && c->nqueues == 0) {
        snprintf(err, errlen, "no queue given");
        rc = -1;
    }
    return rc;
}

static char **str_field(config_t *c, const opt_t *o)
{
    return (char **)((char *)c + o->off);
}

/* Applies one textual value from a source ("--flag", "JOBD_X" or "key"). */
static int apply(config_t *c, const opt_t *o, const char *val, const char *src, char *err,
                 size_t errlen)
{
    char *end;
    long long n;
    int64_t ms;
    switch (o->type) {
    case T_STR:
        free(*str_field(c, o));
        *str_field(c, o) = strdup(val);
        return 0;
    case T_INT:
        n = strtoll(val, &end, 10);
        if (end == val || *end || n < 1 || n > 4096) {
            snprintf(err, errlen, "%s: \"%s\" is not a number in 1..4096", src, val);
            return CONFIG_INVALID;
        }
        *(int *)((char *)c + o->off) = (int)n;
        return 0;
    case T_COUNT:
        n = strtoll(val, &end, 10);
        if (end == val || *end || n < 0 || n > 1000) {
            snprintf(err, errlen, "%s: \"%s\" is not a number in 0..1000", src, val);
            return CONFIG_INVALID;
        }
        *(int *)((char *)c + o->off) = (int)n;
        return 0;
    case T_BYTES:
        n = strtoll(val, &end, 10);
        if (end == val || *end || n < CONFIG_OUTPUT_MIN || n > CONFIG_OUTPUT_MAX) {
            snprintf(err, errlen, "%s: \"%s\" is not a number of bytes in %d..%d", src, val,
                     CONFIG_OUTPUT_MIN, CONFIG_OUTPUT_MAX);
            return CONFIG_INVALID;
        }
        *(int64_t *)((char *)c + o->off) = n;
        return 0;
    case T_DUR:
        ms = jobd_parse_duration_ms(val);
        if (ms < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a duration (seconds, or 250ms/30s/5m/2h)", src,
                     val);
            return CONFIG_INVALID;
        }
        *(int64_t *)((char *)c + o->off) = ms;
        return 0;
    case T_BOOL:
        if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0 || strcmp(val, "yes") == 0)
            *(int *)((char *)c + o->off) = 1;
        else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0 || strcmp(val, "no") == 0 ||
                 !*val)
            *(int *)((char *)c + o->off) = 0;
        else {
            snprintf(err, errlen, "%s: \"%s\" is not true or false", src, val);
            return CONFIG_INVALID;
        }
        return 0;
    case T_QUEUES: {
        char qerr[256];
        int qrc = config_parse_queues(c, val, qerr, sizeof qerr);
        if (qrc < 0) {
            snprintf(err, errlen, "%s: %s", src, qerr);
            return qrc == -2 ? CONFIG_USAGE : CONFIG_INVALID;
        }
        return 0;
    }
    case T_LOGFMT:
        if (strcmp(val, "json") != 0 && strcmp(val, "text") != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not json or text", src, val);
            return CONFIG_INVALID;
        }
        c->log_json = strcmp(val, "json") == 0;
        return 0;
    case T_LOGLVL:
        if (log_level_parse(val) < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not debug, info, warn or error", src, val);
            return CONFIG_INVALID;
        }
        c->log_level = log_level_parse(val);
        return 0;
    }
    return 0;
}

/* Queues in a file may be "a:3,b:1" or {"a": 3, "b": {"weight": 1, "limit": 2}}. */
static int file_queues(config_t *c, json_t *v, char *err, size_t errlen)
{
    if (json_is_string(v))
        return apply(c, &opts[4], json_string_value(v), "config queues", err, errlen);
    if (!json_is_object(v) || json_object_size(v) == 0) {
        snprintf(err, errlen, "config key \"queues\": want \"a:3,b:1\" or an object");
        return CONFIG_INVALID;
    }
    c->nqueues = 0;
    const char *name;
    json_t *q;
    json_object_foreach(v, name, q)
    {
        if (c->nqueues == CONFIG_MAX_QUEUES) break;
        config_queue_t *cq = &c->queues[c->nqueues];
        char nerr[256];
        if (envelope_check_name("queue", name, nerr, sizeof nerr) < 0) {
            snprintf(err, errlen, "config key \"queues\": %s", nerr);
            return CONFIG_INVALID;
        }
        snprintf(cq->name, sizeof cq->name, "%s", name);
        cq->weight = 1;
        cq->limit = 0;
        json_t *w = json_is_object(q) ? json_object_get(q, "weight") : q;
        json_t *l = json_is_object(q) ? json_object_get(q, "limit") : NULL;
        /* Both are ints: a limit of 4294967295 was once -1, a queue never
         * served. The weight's range is the --queues flag's. */
        int64_t weight = 1, limit = 0;
        char why[256];
        if ((w && num_json_int(w, "weight", 1, 1000, &weight, why, sizeof why) < 0) ||
            (l && num_json_int(l, "limit", 0, MAX_QUEUE_LIMIT, &limit, why, sizeof why) < 0)) {
            snprintf(err, errlen, "config key \"queues.%s\": %s", name, why);
            return CONFIG_INVALID;
        }
        cq->weight = (int)weight;
        cq->limit = (int)limit;
        c->nqueues++;
    }
    return 0;
}

/* "retention": {"succeeded": SECONDS, "dead": SECONDS}, 0: keep. */
static int file_retention(config_t *c, json_t *v, char *err, size_t errlen)
{
    static const char *const keys[] = {"succeeded", "dead"};
    int64_t *dst[] = {&c->ttl_succeeded_ms, &c->ttl_dead_ms};
    if (!json_is_object(v)) {
        snprintf(err, errlen,
                 "config key \"retention\": want {\"succeeded\": SECONDS, "
                 "\"dead\": SECONDS}");
        return CONFIG_INVALID;
    }
    for (int i = 0; i < 2; i++) {
        json_t *s = json_object_get(v, keys[i]);
        char field[32], why[256];
        snprintf(field, sizeof field, "retention.%s", keys[i]);
        if (s && num_json_seconds_ms(s, field, 0, NUM_100Y_MS, dst[i], why, sizeof why) < 0) {
            snprintf(err, errlen, "config key %s", why);
            return CONFIG_INVALID;
        }
    }
    return 0;
}

int config_parse_rate(const char *s, int64_t *count, int64_t *window_ms)
{
    char *end;
    const char *slash = strchr(s, '/');
    if (!slash) return -1;
    long long n = strtoll(s, &end, 10);
    if (end == s || end != slash || n < 1 || n > CONFIG_RATE_MAX) return -1;
    char per[64];
    const char *w = slash + 1;
    /* "100/s": one of the unit */
    if (*w >= 'a' && *w <= 'z' && strlen(w) < sizeof per - 1) {
        snprintf(per, sizeof per, "1%s", w);
        w = per;
    }
    int64_t ms = jobd_parse_duration_ms(w);
    if (ms < 1 || ms > 86400000) return -1;
    *count = n;
    *window_ms = ms;
    return 0;
}

/* "resources": {"name": LIMIT} or {"name": {"concurrency": LIMIT, "rate":
 * "600/1m"}} (either or both): split into c->resources (the concurrency
 * limits, as handlers_check_resources and acquire.lua read them) and
 * c->rates. */
static int file_resources(config_t *c, json_t *v, char *err, size_t errlen)
{
    if (!json_is_object(v)) {
        snprintf(err, errlen,
                 "config key \"resources\": want {\"name\": limit} or {\"name\": "
                 "{\"concurrency\": N, \"rate\": \"600/1m\"}}");
        return CONFIG_INVALID;
    }
    json_t *limits = json_object(), *rates = json_object();
    const char *name;
    json_t *r;
    int rc = 0;
    json_object_foreach(v, name, r)
    {
        json_t *conc = json_is_object(r) ? json_object_get(r, "concurrency") : r;
        json_t *rate = json_is_object(r) ? json_object_get(r, "rate") : NULL;
        if (json_is_object(r) &&
            (json_object_size(r) != (size_t)(conc ? 1 : 0) + (size_t)(rate ? 1 : 0) ||
             (!conc && !rate))) {
            snprintf(err, errlen,
                     "config key \"resources.%s\": want {\"concurrency\": N, \"rate\": "
                     "\"COUNT/DURATION\"}, either or both, and nothing else",
                     name);
            rc = CONFIG_INVALID;
            break;
        }
        /* handlers_check_resources refuses a limit that is no integer >= 1. */
        if (conc)
            json_object_set(limits, name, conc);
        else
            json_object_set_new(limits, name, json_integer(CONFIG_RES_UNLIMITED));
        if (rate) {
            int64_t n = 0, ms = 0;
            if (!json_is_string(rate) || config_parse_rate(json_string_value(rate), &n, &ms) < 0) {
                snprintf(err, errlen,
                         "config key \"resources.%s.rate\": want \"COUNT/DURATION\" such as "
                         "\"600/1m\" (count 1..%d, window 1ms..1d)",
                         name, CONFIG_RATE_MAX);
                rc = CONFIG_INVALID;
                break;
            }
            json_object_set_new(rates, name, json_pack("[I, I]", (json_int_t)n, (json_int_t)ms));
        }
    }
    json_decref(c->resources);
    json_decref(c->rates);
    c->resources = limits;
    c->rates = rates;
    return rc;
}

static int load_file(config_t *c, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "config file %s: %s (line %d)", path, je.text, je.line);
        return CONFIG_INVALID;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config file %s: want a JSON object", path);
        rc = CONFIG_INVALID;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (rc) break;
        if (strcmp(key, "queues") == 0) {
            rc = file_queues(c, v, err, errlen);
            continue;
        }
        if (strcmp(key, "resources") == 0) {
            rc = file_resources(c, v, err, errlen);
            continue;
        }
        if (strcmp(key, "schedules") == 0) {
            if (!json_is_array(v)) {
                snprintf(err, errlen,
                         "config key \"schedules\": want [{\"name\", \"cron\", \"queue\", "
                         "\"type\", ...}]");
                rc = CONFIG_INVALID;
            }
            json_decref(c->schedules);
            c->schedules = json_incref(v);
            continue;
        }
        if (strcmp(key, "retention") == 0) {
            rc = file_retention(c, v, err, errlen);
            continue;
        }
        const opt_t *o = NULL;
        for (size_t i = 0; i < NOPTS; i++)
            if (opts[i].key && strcmp(opts[i].key, key) == 0) o = &opts[i];
        if (!o) {
            snprintf(err, errlen, "config file %s: unknown key \"%s\"", path, key);
            rc = CONFIG_INVALID;
            break;
        }
        char buf[64], src[160];
        const char *val = NULL;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), val = buf;
        else if (json_is_real(v))
            snprintf(buf, sizeof buf, "%gs", json_real_value(v)), val = buf;
        else if (json_is_boolean(v))
            val = json_is_true(v) ? "true" : "false";
        snprintf(src, sizeof src, "config key \"%s\"", key);
        if (!val) {
            snprintf(err, errlen, "%s: unsupported value type", src);
            rc = CONFIG_INVALID;
        } else {
            rc = apply(c, o, val, src, err, errlen);
        }
    }
    json_decref(root);
    return rc;
}

static void defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    c->redis_url = strdup("redis://127.0.0.1:6379/0");
    c->prefix = strdup("jobd");
    snprintf(c->queues[0].name, sizeof c->queues[0].name, "default");
    c->queues[0].weight = 1;
    c->nqueues = 1;
    c->concurrency = 4;
    c->state_dir = strdup("./jobd-state");
    c->http = strdup("127.0.0.1:9090");
    c->lease_ms = 30000;
    c->drain_timeout_ms = 25000;
    c->kill_grace_ms = 5000;
    c->sync_interval_ms = 1000;
    c->retry_base_ms = 1000;
    c->retry_cap_ms = 3600000;
    c->ttl_succeeded_ms = JOBD_TTL_SUCCEEDED_MS;
    c->ttl_dead_ms = JOBD_TTL_DEAD_MS;
    c->max_output_bytes = CONFIG_OUTPUT_DEFAULT;
    c->log_json = 1;
    c->log_level = LOG_INFO;
    c->no_progress_attempts = 3;
    c->unknown_type_tries = 10;
    c->unknown_type_delay_ms = 1000;
    c->schedule_catch_up_ms = 3600000;
}

/* A worker id names a registry key and, before '|', a resource holder. */
static int worker_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= ' ' || id[i] > '~' || id[i] == '|') return 0;
    return 1;
}

static int validate(config_t *c, char *err, size_t errlen)
{
    if (c->lease_ms < 1000) {
        snprintf(err, errlen, "lease: must be at least 1 second");
        return CONFIG_INVALID;
    }
    /* The same rule as jobctl's (libjobd's keys_prefix_check). */
    if (keys_prefix_check(c->prefix, err, errlen) < 0) return CONFIG_INVALID;
    const char *colon = strrchr(c->http, ':');
    int64_t port;
    if (!colon || num_parse_int(colon + 1, 0, 65535, &port) < 0) {
        snprintf(err, errlen, "http: \"%s\" is not HOST:PORT", c->http);
        return CONFIG_INVALID;
    }
    if (c->worker_id && !worker_id_ok(c->worker_id)) {
        snprintf(err, errlen,
                 "worker-id: \"%.140s\" must be 1..128 printable characters, no spaces or '|'",
                 c->worker_id);
        return CONFIG_INVALID;
    }
    if (!c->worker_id) {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        if (asprintf(&c->worker_id, "%s-%d", host, (int)getpid()) < 0) c->worker_id = NULL;
    }
    return 0;
}

int config_load(config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    defaults(c);
    struct option lo[NOPTS + 3];
    for (size_t i = 0; i < NOPTS; i++)
        lo[i] = (struct option){opts[i].flag, opts[i].has_arg ? required_argument : no_argument,
                                NULL, (int)i + 1000};
    lo[NOPTS] = (struct option){"help", no_argument, NULL, 'h'};
    lo[NOPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    lo[NOPTS + 2] = (struct option){0, 0, 0, 0};

    /* Pass 1: validate the command line and find --config. */
    const char *file = getenv("JOBD_CONFIG");
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        if (ch == 'h') {
            config_usage();
            return CONFIG_DONE;
        }
        if (ch == 'V') {
            printf("jobd %s\n", JOBD_VERSION);
            return CONFIG_DONE;
        }
        if (ch == '?' || ch == ':') {
            snprintf(err, errlen, "unknown flag or missing value: %s (see jobd --help)",
                     argv[optind - 1]);
            return CONFIG_USAGE;
        }
        if (ch == 1000) file = optarg;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: %s (see jobd --help)", argv[optind]);
        return CONFIG_USAGE;
    }
    int rc;
    if (file && *file && (rc = load_file(c, file, err, errlen)) != 0) return rc;
    /* Pass 2: the environment. */
    for (size_t i = 1; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && (rc = apply(c, &opts[i], v, opts[i].env, err, errlen)) != 0) return rc;
    }
    /* Pass 3: flags win. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        if (ch < 1000) continue;
        const opt_t *o = &opts[ch - 1000];
        char src[64];
        snprintf(src, sizeof src, "--%s", o->flag);
        if ((rc = apply(c, o, o->has_arg ? optarg : "true", src, err, errlen)) != 0) return rc;
    }
    return validate(c, err, errlen);
}

void config_free(config_t *c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == T_STR) free(*str_field(c, &opts[i]));
    json_decref(c->resources);
    json_decref(c->rates);
    json_decref(c->schedules);
    memset(c, 0, sizeof *c);
}
