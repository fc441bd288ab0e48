/* schedule.c - see schedule.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "keys.h"
#include "log.h"
#include "num.h"
#include "schedule.h"

#define FAKE_CLOCK_POLL_MS 20
#define MAX_SLEEP_MS 60000 /* look again at least this often: the wall clock may jump */
#define MISSED_COUNT_MAX 100000

/* ---- the entries, from the config ---- */

static void entries_free(schedule_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(e[i].payload);
        tz_free(&e[i].tz);
    }
    free(e);
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* One schedule object into e. Returns 0 or -1 with a message. */
static int parse_one(json_t *o, schedule_entry_t *e, char *err, size_t errlen)
{
    static const char *const known[] = {"name",    "cron",     "tz",           "queue",     "type",
                                        "payload", "priority", "max_attempts", "timeout_s", NULL};
    char why[512];
    const char *name = str_of(o, "name");
    if (!json_is_object(o) || !name) {
        snprintf(err, errlen, "config key \"schedules\": each entry needs a \"name\"");
        return -1;
    }
    if (envelope_check_name("schedule name", name, why, sizeof why) < 0 || strchr(name, ':')) {
        snprintf(err, errlen, "config key \"schedules\": %s (and no ':')", why);
        return -1;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "schedule \"%s\": unknown key \"%s\"", name, k);
            return -1;
        }
    }
    const char *cron = str_of(o, "cron"), *zone = str_of(o, "tz");
    const char *queue = str_of(o, "queue"), *type = str_of(o, "type");
    if (!cron || cron_parse(&e->cron, cron, why, sizeof why) < 0) {
        snprintf(err, errlen, "schedule \"%s\": %s", name, cron ? why : "\"cron\" is required");
        return -1;
    }
    snprintf(e->cron_text, sizeof e->cron_text, "%s", cron);
    if (tz_load(&e->tz, zone ? zone : "UTC", NULL, why, sizeof why) < 0) {
        snprintf(err, errlen, "schedule \"%s\": %s", name, why);
        return -1;
    }
    int64_t prio = -1, max = 0, timeout = 0;
    json_t *p = json_object_get(o, "priority"), *m = json_object_get(o, "max_attempts"),
           *t = json_object_get(o, "timeout_s");
    if ((p && num_json_int(p, "priority", 0, 9, &prio, why, sizeof why) < 0) ||
        (m && num_json_int(m, "max_attempts", 1, 1000000, &max, why, sizeof why) < 0) ||
        (t && num_json_int(t, "timeout_s", 1, NUM_100Y_MS / 1000, &timeout, why, sizeof why) < 0)) {
        snprintf(err, errlen, "schedule \"%s\": %s", name, why);
        return -1;
    }
    snprintf(e->queue, sizeof e->queue, "%s", queue ? queue : "");
    snprintf(e->type, sizeof e->type, "%s", type ? type : "");
    json_t *payload = json_object_get(o, "payload");
    e->payload = payload ? json_incref(payload) : json_null();
    e->priority = (int)prio;
    e->max_attempts = (int)max;
    e->timeout_s = timeout;
    e->next_s = -1;
    /* The job it makes must be a valid job. */
    jobd_job_spec_t spec;
    jobd_job_spec_init(&spec);
    spec.queue = e->queue;
    spec.type = e->type;
    spec.payload = e->payload;
    spec.priority = e->priority;
    spec.max_attempts = e->max_attempts;
    spec.timeout_s = e->timeout_s;
    if (jobd_job_spec_check(&spec, (size_t)JOBD_PAYLOAD_MAX, why, sizeof why) < 0) {
        snprintf(err, errlen, "schedule \"%s\": %s", name, why);
        return -1;
    }
    return 0;
}

static int parse_all(const config_t *cfg, schedule_entry_t **out, size_t *n, char *err,
                     size_t errlen)
{
    *out = NULL;
    *n = 0;
    size_t count = json_array_size(cfg->schedules);
    if (!count) return 0;
    schedule_entry_t *e = calloc(count, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (parse_one(json_array_get(cfg->schedules, i), &e[i], err, errlen) < 0) {
            entries_free(e, i + 1);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(e[k].name, e[i].name) == 0) {
                snprintf(err, errlen, "schedule \"%s\" is listed twice", e[i].name);
                entries_free(e, i + 1);
                return -1;
            }
    }
    *out = e;
    *n = count;
    return 0;
}

int schedule_check(const config_t *cfg, char *err, size_t errlen)
{
    schedule_entry_t *e;
    size_t n;
    if (parse_all(cfg, &e, &n, err, errlen) < 0) return -1;
    entries_free(e, n);
    return 0;
}

int schedule_init(schedule_t *s, uv_loop_t *loop, const config_t *cfg, rq_t *rq, char *err,
                  size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->rq = rq;
    if (parse_all(cfg, &s->e, &s->n, err, errlen) < 0) return -1;
    const char *fake = getenv("JOBD_TEST_CLOCK_FILE");
    if (fake && *fake) snprintf(s->clock_file, sizeof s->clock_file, "%s", fake);
    return 0;
}

/* ---- time ---- */

static int64_t now_ms(const schedule_t *s)
{
    if (!*s->clock_file) return jobd_now_ms();
    /* Test only (schedule.h): the fake clock, read each time. */
    FILE *f = fopen(s->clock_file, "re");
    char buf[32] = "";
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
        fclose(f);
    }
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end != buf && v >= 0 ? v : jobd_now_ms();
}

/* Ticks strictly between after and before (Unix s), at most
 * MISSED_COUNT_MAX. */
static long long ticks_between(const schedule_entry_t *e, int64_t after, int64_t before)
{
    long long n = 0;
    for (int64_t t = cron_next(&e->cron, &e->tz, after); t >= 0 && t < before;
         t = cron_next(&e->cron, &e->tz, t))
        if (++n >= MISSED_COUNT_MAX) break;
    return n;
}

/* ---- Redis ---- */

static void on_ignore(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

static void command(schedule_t *s, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rq_command(s->rq, argc, argv, lens, on_ignore, NULL);
}

/* Tells jobctl about the entry: the global hash PREFIX:schedules. */
static void publish(schedule_t *s, const schedule_entry_t *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "name", e->name, "cron",
                          e->cron_text, "tz", e->tz.name, "queue", e->queue, "type", e->type,
                          "next", (json_int_t)(e->next_s >= 0 ? e->next_s * 1000 : -1), "worker",
                          s->cfg->worker_id, "updated_at", (json_int_t)jobd_now_ms());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) return;
    char key[KEYS_MAX], queues[KEYS_MAX];
    keys_global(key, s->cfg->prefix, "schedules");
    keys_global(queues, s->cfg->prefix, "queues");
    command(s, 4, (const char *[]){"HSET", key, e->name, text});
    command(s, 3, (const char *[]){"SADD", queues, e->queue});
    free(text);
}

typedef struct {
    schedule_t *s;
    size_t idx;
    int64_t tick_s;
    int skip;
} tick_req_t;

static void on_ticked(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    tick_req_t *t = arg;
    schedule_t *s = t->s;
    schedule_entry_t *e = &s->e[t->idx];
    log_job_t lj = {.queue = e->queue, .type = e->type};
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        if (r)
            log_msg(LOG_ERROR, &lj, "schedule %s: tick failed: %s", e->name,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        free(t);
        return;
    }
    char when[40];
    jobd_format_rfc3339(t->tick_s * 1000, when, sizeof when);
    long long created = r->element[0]->integer, last = r->element[1]->integer;
    /* The call that moved the record on counts the ticks it passed over
     * (counted, then logged, before the enqueue is: a reader of the log
     * who sees the latter has seen the former). */
    if (last >= 0 && last < t->tick_s * 1000) {
        long long missed = ticks_between(e, last / 1000, t->tick_s) + (t->skip ? 1 : 0);
        if (missed > 0) {
            char key[KEYS_MAX], field[160], n[32];
            keys_queue_key(key, s->cfg->prefix, e->queue, "schedules");
            snprintf(field, sizeof field, "%s|skipped", e->name);
            snprintf(n, sizeof n, "%lld", missed);
            command(s, 4, (const char *[]){"HINCRBY", key, field, n});
            log_msg(LOG_WARN, &lj,
                    "schedule %s: %lld missed ticks not enqueued (older than the catch-up "
                    "window of %lld s, or passed over by a later one), up to tick %s",
                    e->name, missed, (long long)(s->cfg->schedule_catch_up_ms / 1000), when);
        }
    }
    if (created)
        log_msg(LOG_INFO, &lj, "schedule %s: tick %s: job enqueued", e->name, when);
    else
        log_msg(LOG_DEBUG, &lj, "schedule %s: tick %s: recorded, no job made here", e->name, when);
    free(t);
}

/* Runs tick.lua for e's tick (mode "run", "catchup" or "skip"). */
static void fire(schedule_t *s, size_t idx, int64_t tick_s, const char *mode)
{
    schedule_entry_t *e = &s->e[idx];
    jobd_job_spec_t spec;
    jobd_job_spec_init(&spec);
    spec.queue = e->queue;
    spec.type = e->type;
    spec.payload = e->payload;
    spec.priority = e->priority;
    spec.max_attempts = e->max_attempts;
    spec.timeout_s = e->timeout_s;
    char id[JOBD_ID_LEN + 1], err[256], *env = NULL;
    size_t envlen = 0;
    jobd_id_new(id);
    if (envelope_encode(&spec, id, jobd_now_ms(), (size_t)JOBD_PAYLOAD_MAX, &env, &envlen, err,
                        sizeof err) < 0) {
        log_error("schedule %s: %s", e->name, err);
        return;
    }
    tick_req_t *t = malloc(sizeof *t);
    if (!t) {
        free(env);
        return;
    }
    *t = (tick_req_t){s, idx, tick_s, strcmp(mode, "skip") == 0};
    proto_argv_t a;
    proto_argv_init(&a);
    proto_argv_adds(&a, e->name);
    proto_argv_addll(&a, tick_s * 1000);
    proto_argv_adds(&a, mode);
    proto_argv_adds(&a, id);
    proto_argv_add(&a, env, envlen);
    proto_argv_addll(&a, e->priority < 0 ? JOBD_DEFAULT_PRIORITY : e->priority);
    proto_argv_addll(&a, e->max_attempts);
    free(env);
    if (rq_script(s->rq, PROTO_TICK, e->queue, &a, on_ticked, t) < 0) free(t);
    proto_argv_free(&a);
}

/* ---- the timer ---- */

static void on_timer(uv_timer_t *h);

static void arm(schedule_t *s)
{
    if (!s->timer_open) return;
    uint64_t delay = MAX_SLEEP_MS;
    if (*s->clock_file) {
        delay = FAKE_CLOCK_POLL_MS;
    } else {
        int64_t now = now_ms(s);
        for (size_t i = 0; i < s->n; i++) {
            if (s->e[i].next_s < 0) continue;
            int64_t d = s->e[i].next_s * 1000 - now;
            if (d < 0) d = 0;
            if ((uint64_t)d < delay) delay = (uint64_t)d;
        }
    }
    uv_timer_start(&s->timer, on_timer, delay, 0);
}

static void on_timer(uv_timer_t *h)
{
    schedule_t *s = h->data;
    if (rq_ready(s->rq)) {
        int64_t now = now_ms(s);
        for (size_t i = 0; i < s->n; i++) {
            schedule_entry_t *e = &s->e[i];
            if (e->next_s < 0 || now < e->next_s * 1000) continue;
            /* The latest tick that is due: if the loop slept through
             * several (a suspended VM, a clock jump), one job for the
             * latest, the others counted as missed. */
            int64_t t = cron_prev(&e->cron, &e->tz, now / 1000);
            if (t < e->next_s) t = e->next_s;
            fire(s, i, t, now - t * 1000 <= s->cfg->schedule_catch_up_ms ? "run" : "skip");
            e->next_s = cron_next(&e->cron, &e->tz, t);
            publish(s, e);
        }
    }
    arm(s);
}

void schedule_start(schedule_t *s)
{
    if (!s->n) return;
    if (!s->timer_open) {
        uv_timer_init(s->loop, &s->timer);
        s->timer.data = s;
        s->timer_open = 1;
    }
    int64_t now = now_ms(s);
    for (size_t i = 0; i < s->n; i++) {
        schedule_entry_t *e = &s->e[i];
        /* The latest tick: enqueued if it was missed and is recent enough
         * (tick.lua knows whether it was missed; a new schedule only
         * records it). */
        int64_t t = cron_prev(&e->cron, &e->tz, now / 1000);
        if (t >= 0)
            fire(s, i, t, now - t * 1000 <= s->cfg->schedule_catch_up_ms ? "catchup" : "skip");
        e->next_s = cron_next(&e->cron, &e->tz, now / 1000);
        publish(s, e);
        char when[40] = "never";
        if (e->next_s >= 0) jobd_format_rfc3339(e->next_s * 1000, when, sizeof when);
        log_msg(LOG_INFO, &(log_job_t){.queue = e->queue, .type = e->type},
                "schedule %s (%s, %s): next tick %s", e->name, e->cron_text, e->tz.name, when);
    }
    arm(s);
}

void schedule_close(schedule_t *s)
{
    if (s->timer_open) uv_close((uv_handle_t *)&s->timer, NULL);
}

void schedule_free(schedule_t *s)
{
    entries_free(s->e, s->n);
    s->e = NULL;
    s->n = 0;
}
