/* test_schedule.c - cron schedules, black box: jobd processes with the same
 * schedule enqueue one job per tick in all; a tick missed while no jobd ran
 * is enqueued once on start within the catch-up window (older ones are
 * counted, not enqueued); ticks on DST days come once. Time is a fake clock
 * (JOBD_TEST_CLOCK_FILE, test only) that the test moves: no waiting for
 * minutes. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static char clock_env[700];

static void set_clock(const char *rfc3339, int extra_ms)
{
    int64_t ms = jobd_parse_rfc3339_ms(rfc3339);
    ASSERT(ms > 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld\n", (long long)(ms + extra_ms));
    /* Written whole and renamed, so jobd never reads half a number. */
    const char *tmp = test_tmp_path("clock.tmp");
    test_write_file(tmp, buf);
    ASSERT_EQ(rename(tmp, test_tmp_path("clock")), 0);
}

static pid_t start(const char *cfg_json, const char *id, const char *log)
{
    char name[64];
    snprintf(name, sizeof name, "config-%s.json", id); /* each its own: none reads a half */
    const char *cfg = test_tmp_path(name);
    test_write_file(cfg, cfg_json);
    snprintf(clock_env, sizeof clock_env, "JOBD_TEST_CLOCK_FILE=%s", test_tmp_path("clock"));
    const char *env[] = {clock_env, NULL};
    char state[64];
    snprintf(state, sizeof state, "state-%s", id);
    return test_jobd_start(log, NULL, "other", state,
                           (const char *[]){"--config", cfg, "--queues", "other", "--worker-id", id,
                                            "--log-level", "debug", NULL},
                           env);
}

static void stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
}

/* A field of the queue's schedule record (malloc'd or NULL). */
static char *record(const char *queue, const char *field)
{
    char key[512];
    test_qkey(key, sizeof key, queue, "schedules");
    redisReply *r = test_rcmd("HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r) freeReplyObject(r);
    return v;
}

static long long record_ll(const char *queue, const char *field)
{
    char *v = record(queue, field);
    long long n = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return n;
}

static void wait_log(const char *log, const char *a, const char *b)
{
    CHECK_OR_DUMP(test_wait_log(log, test_ms(20000), a, b, NULL) == 0, log, "no log line: %s %s", a,
                  b ? b : "");
}

TEST(schedule_three_replicas_one_job_per_tick)
{
    const char *cfg = "{\"schedules\": [{\"name\": \"every5\", \"cron\": \"*/5 * * * *\", "
                      "\"queue\": \"sq\", \"type\": \"noop\", \"payload\": {\"k\": 1}}]}";
    set_clock("2025-01-01T10:02:00Z", 0);
    const char *logs[3] = {test_tmp_path("r1.log"), test_tmp_path("r2.log"),
                           test_tmp_path("r3.log")};
    const char *ids[3] = {"r1", "r2", "r3"};
    pid_t pids[3];
    for (int i = 0; i < 3; i++)
        pids[i] = start(cfg, ids[i], logs[i]);
    for (int i = 0; i < 3; i++)
        wait_log(logs[i], "schedule every5", "next tick 2025-01-01T10:05:00.000Z");
    ASSERT_EQ(test_zcard("sq", "ready"), 0); /* a new schedule starts from its next tick */

    struct {
        const char *clock, *tick;
        long long jobs;
    } steps[] = {
        {"2025-01-01T10:05:00Z", "tick 2025-01-01T10:05:00.000Z:", 1},
        {"2025-01-01T10:10:00Z", "tick 2025-01-01T10:10:00.000Z:", 2},
        /* 10:15 passes while the clock jumps: one job for 10:20, and 10:15
         * counted as missed. */
        {"2025-01-01T10:20:30Z", "tick 2025-01-01T10:20:00.000Z:", 3},
    };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        set_clock(steps[s].clock, 200);
        for (int i = 0; i < 3; i++) /* every replica has seen the tick */
            wait_log(logs[i], "schedule every5", steps[s].tick);
        ASSERT_EQ(test_zcard("sq", "ready"), steps[s].jobs);
        ASSERT_EQ(test_stat_counter("sq", "enqueued"), steps[s].jobs);
    }
    int enq = 0;
    for (int i = 0; i < 3; i++)
        enq += test_count_log(logs[i], "job enqueued");
    ASSERT_EQ(enq, 3);
    ASSERT_EQ(record_ll("sq", "every5|skipped"), 1);

    /* jobctl schedules shows it, last and next. */
    const char *argv[] = {test_env("JOBCTL_BIN"), "--redis",   test_redis_url(), "--prefix",
                          test_prefix(),          "schedules", "--json",         NULL};
    char *out = NULL;
    ASSERT_EQ(test_run(argv, NULL, NULL, &out, NULL), 0);
    json_t *arr = json_loads(out, 0, NULL);
    ASSERT(json_array_size(arr) == 1);
    json_t *s0 = json_array_get(arr, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(s0, "name")), "every5");
    ASSERT_STR_EQ(json_string_value(json_object_get(s0, "last")), "2025-01-01T10:20:00.000Z");
    ASSERT_STR_EQ(json_string_value(json_object_get(s0, "next")), "2025-01-01T10:25:00.000Z");
    ASSERT_EQ(json_integer_value(json_object_get(s0, "skipped")), 1);
    char *job = record("sq", "every5|job");
    ASSERT_STR_EQ(json_string_value(json_object_get(s0, "last_job")), job);
    ASSERT_FIELD_CONTAINS("sq", job, "env", "\"payload\":{\"k\":1}");
    free(job);
    json_decref(arr);
    free(out);
    for (int i = 0; i < 3; i++)
        stop(pids[i], logs[i]);
}

TEST(schedule_catch_up_on_start)
{
    const char *cfg = "{\"schedules\": [{\"name\": \"hourly\", \"cron\": \"0 * * * *\", "
                      "\"queue\": \"cq\", \"type\": \"noop\"}]}";
    const char *log = test_tmp_path("jobd.log");
    set_clock("2025-01-01T10:30:00Z", 0);
    pid_t pid = start(cfg, "w", log);
    wait_log(log, "schedule hourly", "next tick 2025-01-01T11:00:00.000Z");
    stop(pid, log);
    ASSERT_EQ(test_zcard("cq", "ready"), 0);

    /* Down over 11:00 and 12:00: 12:00 is 10 minutes old, within the
     * default window of 1 h: enqueued once; 11:00 counted as missed. */
    set_clock("2025-01-01T12:10:00Z", 0);
    pid = start(cfg, "w", log);
    wait_log(log, "schedule hourly", "tick 2025-01-01T12:00:00.000Z: job enqueued");
    ASSERT_EQ(test_zcard("cq", "ready"), 1);
    ASSERT_EQ(record_ll("cq", "hourly|skipped"), 1);
    stop(pid, log);

    /* A window of 30 minutes, down until 15:45: 13:00, 14:00 and 15:00
     * are all missed, none enqueued. */
    const char *cfg2 = "{\"schedule_catch_up\": \"30m\", \"schedules\": [{\"name\": \"hourly\", "
                       "\"cron\": \"0 * * * *\", \"queue\": \"cq\", \"type\": \"noop\"}]}";
    set_clock("2025-01-01T15:45:00Z", 0);
    pid = start(cfg2, "w", log);
    wait_log(log, "schedule hourly: 3 missed ticks", "up to tick 2025-01-01T15:00:00.000Z");
    ASSERT_EQ(test_zcard("cq", "ready"), 1);
    stop(pid, log);
    ASSERT_EQ(record_ll("cq", "hourly|skipped"), 4);
    char *last = record("cq", "hourly");
    ASSERT_EQ(strtoll(last, NULL, 10), jobd_parse_rfc3339_ms("2025-01-01T15:00:00Z"));
    free(last);
}

TEST(schedule_dst_forward_runs_once)
{
    /* Europe/Berlin, 2025-03-30: 02:00 CET jumps to 03:00 CEST. 02:30 does
     * not exist that day; it ticks once, at 03:30 CEST (01:30 UTC). */
    const char *cfg = "{\"schedules\": [{\"name\": \"night\", \"cron\": \"30 2 * * *\", "
                      "\"tz\": \"Europe/Berlin\", \"queue\": \"dq\", \"type\": \"noop\"}]}";
    const char *log = test_tmp_path("jobd.log");
    set_clock("2025-03-29T23:00:00Z", 0);
    pid_t pid = start(cfg, "w", log);
    wait_log(log, "schedule night", "next tick 2025-03-30T01:30:00.000Z");
    set_clock("2025-03-30T01:30:00Z", 200);
    wait_log(log, "tick 2025-03-30T01:30:00.000Z: job enqueued", NULL);
    set_clock("2025-03-31T00:30:00Z", 200); /* 02:30 CEST the next day */
    wait_log(log, "tick 2025-03-31T00:30:00.000Z: job enqueued", NULL);
    ASSERT_EQ(test_zcard("dq", "ready"), 2);
    ASSERT_EQ(test_count_log(log, "missed ticks"), 0);
    stop(pid, log);
}

TEST(schedule_dst_back_runs_once)
{
    /* Europe/Berlin, 2025-10-26: 03:00 CEST goes back to 02:00 CET; 02:30
     * happens twice (00:30 and 01:30 UTC) and ticks at the first only. */
    const char *cfg = "{\"schedules\": [{\"name\": \"night\", \"cron\": \"30 2 * * *\", "
                      "\"tz\": \"Europe/Berlin\", \"queue\": \"bq\", \"type\": \"noop\"}]}";
    const char *log = test_tmp_path("jobd.log");
    set_clock("2025-10-25T23:00:00Z", 0);
    pid_t pid = start(cfg, "w", log);
    wait_log(log, "schedule night", "next tick 2025-10-26T00:30:00.000Z");
    set_clock("2025-10-26T00:30:00Z", 200);
    wait_log(log, "tick 2025-10-26T00:30:00.000Z: job enqueued", NULL);
    set_clock("2025-10-26T01:30:30Z", 0); /* the second 02:30: no tick */
    set_clock("2025-10-27T01:30:00Z", 200);
    wait_log(log, "tick 2025-10-27T01:30:00.000Z: job enqueued", NULL);
    ASSERT_EQ(test_zcard("bq", "ready"), 2);
    ASSERT_EQ(test_count_log(log, "job enqueued"), 2);
    ASSERT_EQ(test_count_log(log, "missed ticks"), 0);
    stop(pid, log);
}

TEST(schedule_config_errors)
{
    const char *bad[] = {
        "{\"schedules\": [{\"name\": \"a\", \"cron\": \"61 * * * *\", \"queue\": \"q\", "
        "\"type\": \"noop\"}]}",
        "{\"schedules\": [{\"name\": \"a\", \"cron\": \"* * * * *\", \"tz\": \"Mars/Base\", "
        "\"queue\": \"q\", \"type\": \"noop\"}]}",
        "{\"schedules\": [{\"name\": \"a\", \"cron\": \"* * * * *\", \"queue\": \"q{x}\", "
        "\"type\": \"noop\"}]}",
        "{\"schedules\": [{\"name\": \"a\", \"cron\": \"* * * * *\", \"queue\": \"q\", "
        "\"type\": \"noop\", \"colour\": 1}]}",
    };
    const char *want[] = {"minute", "Mars/Base", "queue", "colour"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *cfg = test_tmp_path("bad.json");
        test_write_file(cfg, bad[i]);
        const char *argv[] = {test_env("JOBD_BIN"),   "--config",       cfg, "--state-dir",
                              test_tmp_path("state"), "--check-config", NULL};
        char *err = NULL;
        ASSERT_EQ(test_run(argv, NULL, NULL, NULL, &err), 78);
        ASSERT_CONTAINS(err, want[i]);
        free(err);
    }
}
