/* test_garbage.c - garbage written straight into Redis beside good jobs:
 * every good job still runs, every unusable job record ends dead with the
 * reason, every entry with no job record behind it leaves its set and is
 * counted (jobd_garbage_entries_total). The real jobd binary against the
 * real test redis-server for the claim path; the scripts through libjobd
 * for the others. No sleeps stand in for events: Redis state is polled with
 * a deadline. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

#define IDSZ (JOBD_ID_LEN + 1)

/* "<prefix>:{queue}:job:id" in a static buffer (4 in turn). */
static const char *jk(const char *queue, const char *id)
{
    static char bufs[4][700];
    static int next;
    char *b = bufs[next++ % 4], suffix[300];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    test_qkey(b, 700, queue, suffix);
    return b;
}

static const char *setkey(const char *queue, const char *set)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    test_qkey(b, 600, queue, set);
    return b;
}

static void cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(test_redis(), fmt, ap);
    va_end(ap);
    ASSERT(r != NULL);
    if (r->type == REDIS_REPLY_ERROR) test_fail(__FILE__, __LINE__, "redis: %s", r->str);
    freeReplyObject(r);
}

static int in_set(const char *queue, const char *set, const char *id)
{
    redisReply *r = test_cmd("ZSCORE %s %s", setkey(queue, set), id);
    int in = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return in;
}

/* A valid v1 envelope for id, written as enqueue.lua writes a job. */
static char *envelope(const char *queue, const char *id, size_t pad)
{
    char *pl = malloc(pad + 3);
    memset(pl, 'x', pad + 2);
    pl[0] = pl[pad + 1] = '"';
    pl[pad + 2] = '\0';
    char *env;
    if (asprintf(&env,
                 "{\"v\":1,\"id\":\"%s\",\"queue\":\"%s\",\"type\":\"noop\",\"payload\":%s,"
                 "\"priority\":5,\"created_at\":\"2026-01-01T00:00:00Z\"}",
                 id, queue, pad ? pl : "null") < 0)
        abort();
    free(pl);
    return env;
}

/* A job hash with a valid envelope and the given counters (NULL: absent),
 * as a ready entry at zset score zs. */
static void put_ready(const char *queue, const char *id, double zs, const char *attempt,
                      const char *claims, const char *max, const char *score)
{
    char *env = envelope(queue, id, 0);
    cmd("HSET %s env %s state queued ready_at 1", jk(queue, id), env);
    free(env);
    if (attempt) cmd("HSET %s attempt %s", jk(queue, id), attempt);
    if (claims) cmd("HSET %s claims %s", jk(queue, id), claims);
    if (max) cmd("HSET %s max %s", jk(queue, id), max);
    if (score) cmd("HSET %s score %s", jk(queue, id), score);
    cmd("ZADD %s %.1f %s", setkey(queue, "ready"), zs, id);
}

static double ready_score_of(const char *queue, const char *id)
{
    redisReply *r = test_cmd("ZSCORE %s %s", setkey(queue, "ready"), id);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING);
    double s = strtod(r->str, NULL);
    freeReplyObject(r);
    return s;
}

/* The value of the metric line starting with name (labels included), -1. */
static long long metric(const char *body, const char *name)
{
    const char *p = body ? strstr(body, name) : NULL;
    return p ? strtoll(p + strlen(name), NULL, 10) : -1;
}

enum { GOOD = 20, SCHED = 4, NDEAD = 9, NDROP = 2 };

static int all_ended(const char *q, char (*good)[IDSZ], const char *const *dead)
{
    for (int i = 0; i < GOOD + SCHED; i++)
        if (!test_field_is(q, good[i], "state", "succeeded")) return 0;
    for (int i = 0; i < NDEAD; i++)
        if (!test_field_is(q, dead[i], "state", "dead")) return 0;
    return test_zcard(q, "ready") == 0 && test_zcard(q, "scheduled") == 0 &&
           test_zcard(q, "active") == 0;
}

/* Every kind of garbage in the ready and scheduled sets, between good jobs,
 * under jobd at concurrency 4. */
TEST(garbage_beside_good_jobs_all_good_jobs_run)
{
    test_install_abort_handler();
    const char *q = "gq", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char good[GOOD + SCHED][IDSZ];
    for (int i = 0; i < GOOD; i++)
        test_submit(c, q, "noop", "{}", 0, 0, good[i]);
    /* Scheduled good jobs, made due: promoted in the same call as a due
     * garbage entry. */
    for (int i = GOOD; i < GOOD + SCHED; i++) {
        jobd_job_spec_t s;
        jobd_job_spec_init(&s);
        s.queue = q;
        s.type = "noop";
        s.delay_ms = 3600 * 1000;
        ASSERT_EQ(jobd_submit(c, &s, good[i], NULL), 0);
        cmd("ZADD %s XX %lld %s", setkey(q, "scheduled"), (long long)jobd_now_ms() - 1000, good[i]);
    }

    /* Garbage, each entry right after a good job in claim order. */
    static const char *dead[NDEAD] = {"g-noenv", "g-sched-score", "g-attempt", "g-claims", "g-max",
                                      "g-score",
                                      /* an id of 100 characters */
                                      "g-long-id-"
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                      "g-huge-env", "g-bad:id chars"};
    static const char *const reasons[NDEAD] = {"job record has no envelope",
                                               "score is \"abc\"",
                                               "attempt is \"1e300\"",
                                               "claims is \"-3\"",
                                               "max is \"99999999999999999999\"",
                                               "score is \"1e300\"",
                                               "job id is 100 characters long",
                                               "over the 1056768-byte limit",
                                               "characters outside"};
    ASSERT_EQ(strlen(dead[6]), 100);
    double zs[GOOD];
    for (int i = 0; i < GOOD; i++)
        zs[i] = ready_score_of(q, good[i]);
    int k = 0;
    /* a string at a job key named in the ready set */
    cmd("SET %s %s", jk(q, "g-string"), "just a string");
    cmd("ZADD %s %.1f %s", setkey(q, "ready"), zs[k++] + 0.5, "g-string");
    /* a ready entry with no hash */
    cmd("ZADD %s %.1f %s", setkey(q, "ready"), zs[k++] + 0.5, "g-nohash");
    /* a hash with no envelope */
    cmd("HSET %s state queued score 40000000000001", jk(q, dead[0]));
    cmd("ZADD %s %.1f %s", setkey(q, "ready"), zs[k++] + 0.5, dead[0]);
    /* a due scheduled entry whose score field is not a number */
    char *env = envelope(q, dead[1], 0);
    cmd("HSET %s env %s state scheduled score abc", jk(q, dead[1]), env);
    free(env);
    cmd("ZADD %s %lld %s", setkey(q, "scheduled"), (long long)jobd_now_ms() - 2000, dead[1]);
    /* absurd counters */
    put_ready(q, dead[2], zs[k++] + 0.5, "1e300", NULL, NULL, "40000000000001");
    put_ready(q, dead[3], zs[k++] + 0.5, NULL, "-3", NULL, "40000000000001");
    put_ready(q, dead[4], zs[k++] + 0.5, NULL, NULL, "99999999999999999999", "40000000000001");
    put_ready(q, dead[5], zs[k++] + 0.5, NULL, NULL, NULL, "1e300");
    /* an id longer than the id format allows */
    put_ready(q, dead[6], zs[k++] + 0.5, NULL, NULL, NULL, "40000000000001");
    /* an envelope over the size limit (1 MiB + 8 KiB): 2 MiB of payload */
    env = envelope(q, dead[7], 2 * 1024 * 1024);
    cmd("HSET %s env %s state queued score 40000000000001", jk(q, dead[7]), env);
    free(env);
    cmd("ZADD %s %.1f %s", setkey(q, "ready"), zs[k++] + 0.5, dead[7]);
    /* an id with characters the id format does not allow */
    put_ready(q, dead[8], zs[k++] + 0.5, NULL, NULL, NULL, "40000000000001");

    pid_t pid =
        test_jobd_start(log, NULL, q, "state", (const char *[]){"--concurrency", "4", NULL}, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    int64_t deadline = test_now_ms() + test_ms(20000);
    while (!all_ended(q, good, dead)) {
        if (test_now_ms() >= deadline || waitpid(pid, NULL, WNOHANG) != 0) {
            test_dump_log(log);
            int ok = 0, lost = 0;
            for (int i = 0; i < GOOD + SCHED; i++) {
                ok += test_field_is(q, good[i], "state", "succeeded");
                lost += !in_set(q, "ready", good[i]) && !in_set(q, "scheduled", good[i]) &&
                        !in_set(q, "active", good[i]) && !in_set(q, "succeeded", good[i]);
            }
            test_fail(__FILE__, __LINE__,
                      "%d of %d good jobs succeeded, %d in no set (lost); ready %lld, "
                      "scheduled %lld, active %lld, dead %lld",
                      ok, GOOD + SCHED, lost, test_zcard(q, "ready"), test_zcard(q, "scheduled"),
                      test_zcard(q, "active"), test_zcard(q, "dead"));
        }
        test_pause_ms(20);
    }
    for (int i = 0; i < NDEAD; i++) {
        ASSERT(in_set(q, "dead", dead[i]));
        char *err = test_hget(q, dead[i], "error");
        if (!err || !strstr(err, reasons[i]))
            test_fail(__FILE__, __LINE__, "%s: error \"%s\", want \"%s\"", dead[i],
                      err ? err : "(none)", reasons[i]);
        free(err);
        ASSERT_EQ(test_log_has_job(log, dead[i], "job dead without running"), 1);
    }
    /* Dead without running: never claimed, no handler started. */
    ASSERT_EQ(test_hget_ll(q, dead[0], "attempt"), -1);
    ASSERT_EQ(test_log_has_job(log, dead[7], "job started"), 0);
    /* The entries with no job record left their sets, logged and counted. */
    ASSERT(!in_set(q, "ready", "g-string") && !in_set(q, "ready", "g-nohash"));
    ASSERT_EQ(test_log_has_job(log, "g-string", "job key holds a string"), 1);
    ASSERT_EQ(test_log_has_job(log, "g-nohash", "no job record"), 1);
    ASSERT_EQ(test_zcard(q, "succeeded"), GOOD + SCHED);
    ASSERT_EQ(test_zcard(q, "dead"), NDEAD);
    ASSERT_EQ(test_stat_counter(q, "dropped"), NDROP);
    char *body = httpc_get_body(port, "/metrics");
    char name[256];
    snprintf(name, sizeof name, "jobd_garbage_entries_total{queue=\"%s\",action=\"dropped\"} ", q);
    ASSERT_EQ(metric(body, name), NDROP);
    snprintf(name, sizeof name, "jobd_garbage_entries_total{queue=\"%s\",action=\"dead\"} ", q);
    ASSERT_EQ(metric(body, name), NDEAD);
    free(body);
    /* jobctl status shows the record that had no envelope, dead with why. */
    json_t *st = NULL;
    ASSERT_EQ(jobd_status(c, dead[0], &st), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "state")), "dead");
    ASSERT_CONTAINS(json_string_value(json_object_get(st, "error")), "no envelope");
    json_decref(st);

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* Submits a noop job to queue and claims it (lease 60 s); id receives it. */
static void claim_one(jobd_client_t *c, const char *q, char *id, char *token)
{
    test_submit(c, q, "noop", "{}", 0, 0, id);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, q, "w-test", 60000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, id);
    snprintf(token, 48, "%s", j.token);
    jobd_claim_clear(&j);
}

/* reap: expired leases with a string key and with no record, beside good
 * jobs, one with an attempt count that is no number, one whose score was
 * damaged. */
TEST(garbage_reap_keeps_good_leases)
{
    const char *q = "gr";
    jobd_client_t *c = test_client();
    char a[IDSZ], b[IDSZ], cc[IDSZ], ta[48], tb[48], tc[48];
    claim_one(c, q, a, ta);
    claim_one(c, q, b, tb);
    claim_one(c, q, cc, tc);
    cmd("SET %s %s", jk(q, "g-astr"), "just a string");
    cmd("ZADD %s 1 g-astr 1 g-anohash", setkey(q, "active"));
    cmd("HSET %s attempt abc", jk(q, b));
    cmd("HSET %s score xyz", jk(q, cc));
    cmd("ZADD %s XX 1 %s 1 %s 1 %s", setkey(q, "active"), a, b, cc);
    jobd_reap_t r;
    ASSERT_EQ(jobd_reap(c, q, &r), 0);
    ASSERT_EQ(r.requeued, 2);
    ASSERT_EQ(r.dead, 1);
    ASSERT_EQ(r.dropped, 2);
    ASSERT(in_set(q, "ready", a));
    ASSERT(in_set(q, "ready", cc));
    ASSERT_FIELD(q, b, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, b, "error", "attempt is \"abc\"");
    ASSERT_GE(test_hget_ll(q, cc, "score"), 4e13); /* made anew at the default priority */
    ASSERT_EQ(test_zcard(q, "active"), 0);
    ASSERT_EQ(test_stat_counter(q, "dropped"), 2);
    jobd_client_free(c);
}

/* The lease calls on a key that is no hash: stale, not a script error; an
 * attempt count that is no number counts as out of attempts. */
TEST(garbage_lease_calls_and_fail)
{
    const char *q = "gl";
    jobd_client_t *c = test_client();
    cmd("SET %s %s", jk(q, "g-astr"), "just a string");
    ASSERT_EQ(jobd_extend(c, q, "g-astr", "1.1", 1000), JOBD_ESTALE);
    ASSERT_EQ(jobd_checkpoint(c, q, "g-astr", "1.1", "{}", 0.5), JOBD_ESTALE);
    ASSERT_EQ(jobd_ack(c, q, "g-astr", "1.1", NULL), JOBD_ESTALE);
    ASSERT_EQ(jobd_release(c, q, "g-astr", "1.1", NULL), JOBD_ESTALE);
    ASSERT_EQ(jobd_fail(c, q, "g-astr", "1.1", "x", 0), JOBD_ESTALE);
    char d[IDSZ], td[48];
    claim_one(c, q, d, td);
    cmd("HSET %s attempt 1e999", jk(q, d));
    ASSERT_EQ(jobd_fail(c, q, d, td, "boom", 0), JOBD_FAILED_DEAD);
    ASSERT_FIELD(q, d, "state", "dead");
    ASSERT_FIELD(q, d, "error", "boom");
    jobd_client_free(c);
}

/* retry: a string key in the dead set is dropped, a dead job whose score is
 * no number goes back at the default priority (not dropped from the dead
 * set and left in none). */
TEST(garbage_retry_dead)
{
    const char *q = "gt";
    jobd_client_t *c = test_client();
    char b[IDSZ], tb[48];
    claim_one(c, q, b, tb);
    ASSERT_EQ(jobd_fail(c, q, b, tb, "boom", -1), JOBD_FAILED_DEAD);
    cmd("HSET %s score abc", jk(q, b));
    cmd("SET %s %s", jk(q, "g-astr"), "just a string");
    cmd("ZADD %s 1 g-astr", setkey(q, "dead"));
    ASSERT_EQ(jobd_retry_dead(c, q), 1);
    ASSERT_FIELD(q, b, "state", "queued");
    ASSERT(in_set(q, "ready", b));
    ASSERT_GE(test_hget_ll(q, b, "score"), 4e13);
    ASSERT_EQ(test_zcard(q, "dead"), 0);
    jobd_client_free(c);
}

/* stats reads around a string at the head of the ready set; enqueue resets
 * a seq counter that is no counter and leaves a string under a given id
 * alone. */
TEST(garbage_stats_and_enqueue)
{
    const char *q = "gs";
    jobd_client_t *c = test_client();
    char a[IDSZ];
    test_submit(c, q, "noop", "{}", 0, 0, a);
    cmd("SET %s %s", jk(q, "g-astr"), "just a string");
    cmd("ZADD %s 40000000000000 g-astr", setkey(q, "ready"));
    json_t *st = NULL;
    ASSERT_EQ(jobd_stats(c, &st), 0);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, q), "queued")), 2);
    json_decref(st);

    cmd("SET %s abc", setkey(q, "seq"));
    char e[IDSZ];
    test_submit(c, q, "noop", "{}", 0, 0, e);
    ASSERT(in_set(q, "ready", e));
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = q;
    s.type = "noop";
    s.id = "g-astr";
    int created = -1;
    char id[IDSZ];
    ASSERT_EQ(jobd_submit(c, &s, id, &created), 0);
    ASSERT_EQ(created, 0);
    redisReply *rr = test_cmd("GET %s", jk(q, "g-astr"));
    ASSERT_STR_EQ(rr->str, "just a string");
    freeReplyObject(rr);
    jobd_client_free(c);
}

/* A state set that is no sorted set: claim refuses before it writes, so a
 * due scheduled job stays where it was. */
TEST(garbage_state_set_of_wrong_type_fails_claim_cleanly)
{
    const char *q = "gz";
    jobd_client_t *c = test_client();
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = q;
    s.type = "noop";
    s.delay_ms = 3600 * 1000;
    char id[IDSZ];
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
    cmd("ZADD %s XX 1 %s", setkey(q, "scheduled"), id);
    cmd("SET %s %s", setkey(q, "ready"), "not a set");
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, q, "w-test", 60000, &j, 1), JOBD_EREDIS);
    ASSERT(in_set(q, "scheduled", id));
    ASSERT_FIELD(q, id, "state", "scheduled");
    ASSERT_CONTAINS(jobd_client_errmsg(c), "not a sorted set");
    /* Once the garbage is gone, the job runs. */
    cmd("DEL %s", setkey(q, "ready"));
    ASSERT_EQ(jobd_claim(c, q, "w-test", 60000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, id);
    jobd_claim_clear(&j);
    jobd_client_free(c);
}
