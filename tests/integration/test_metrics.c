/* test_metrics.c - the series deploy/monitoring/METRICS.md promises, on a
 * real jobd against the real Redis: outcomes by queue, type and outcome
 * (terminal ones apart from retried and released), every series at 0 from
 * the start, unknown types under type="unknown", the oldest waiting job's
 * age, jobd_build_info and process_*, and a scrape that `promtool check
 * metrics` accepts. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "httpc.h"
#include "jobd/version.h"
#include "testlib.h"

/* The value of the series whose line starts with "series " in body (name
 * and labels exactly as jobd writes them); -1 if absent. */
static double value_in(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of every series of family name (lines "name{..." or "name ..."). */
static double family_sum(const char *body, const char *name)
{
    size_t n = strlen(name);
    double sum = 0;
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
            const char *sp = strchr(p, ' ');
            if (sp) sum += strtod(sp + 1, NULL);
        }
    return sum;
}

static double metric(int port, const char *series)
{
    char *body = httpc_get_body(port, "/metrics");
    double v = body ? value_in(body, series) : -1;
    free(body);
    return v;
}

/* Polls until series has value want (within ms); fails the test with the
 * log dumped otherwise. */
static void wait_value(int port, const char *series, double want, int64_t ms, const char *log)
{
    int64_t deadline = test_now_ms() + test_ms(ms);
    double v;
    while ((v = metric(port, series)) != want) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "%s is %g, want %g", series, v, want);
        test_pause_ms(20);
    }
}

/* "name{queue="q",type="t"[,outcome="o"]}" into out. */
static const char *series(char *out, size_t len, const char *name, const char *q, const char *t,
                          const char *outcome)
{
    if (outcome)
        snprintf(out, len, "%s{queue=\"%s\",type=\"%s\",outcome=\"%s\"}", name, q, t, outcome);
    else
        snprintf(out, len, "%s{queue=\"%s\",type=\"%s\"}", name, q, t);
    return out;
}

/* A handlers file with "rel": an exec handler that exits 75 (release) the
 * first time and succeeds the next. Returns its path. */
static const char *rel_handlers(void)
{
    const char *mark = test_tmp_path("rel.mark");
    char text[1024];
    snprintf(text, sizeof text, "read line\nif [ -e '%s' ]; then exit 0; fi\n: > '%s'\nexit 75\n",
             mark, mark);
    return test_script_handlers("rel", text);
}

static pid_t start(const char *q, const char *log, int *port)
{
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          test_redis_url(),
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          q,
                          "--handlers",
                          rel_handlers(),
                          "--state-dir",
                          test_tmp_path("st"),
                          "--http",
                          "127.0.0.1:0",
                          "--concurrency",
                          "8",
                          "--unknown-type-tries",
                          "0",
                          "--lease",
                          "3", /* a cancel is seen at the next extension, a second away */
                          NULL};
    pid_t pid = test_spawn(argv, NULL, log);
    test_track(pid);
    *port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(*port > 0, log, "no HTTP port logged");
    return pid;
}

static void stop(pid_t pid, const char *log)
{
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
}

TEST(metrics_outcomes_by_queue_type_and_outcome)
{
    const char *q = "mq", *log = test_tmp_path("jobd.log");
    int port;
    pid_t pid = start(q, log, &port);
    char s[300];

    /* Before any job: every series of every type, at 0; "unknown" too. */
    char *body = httpc_get_body(port, "/metrics");
    ASSERT(body != NULL);
    static const char *const types[] = {"rel", "noop", "sleep", "fail", "unknown"};
    static const char *const outcomes[] = {"succeeded", "dead", "canceled"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t o = 0; o < 3; o++)
            ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_finished_total", q, types[t],
                                            outcomes[o])),
                      0);
        ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_retried_total", q, types[t], 0)),
                  0);
        ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_released_total", q, types[t], 0)),
                  0);
        ASSERT_EQ(
            value_in(body, series(s, sizeof s, "jobd_job_duration_seconds_count", q, types[t], 0)),
            0);
    }
    /* No outcome but the terminal ones, and the buckets reach an hour. */
    ASSERT(strstr(body, "outcome=\"retried\"") == NULL);
    ASSERT(strstr(body, "outcome=\"released\"") == NULL);
    ASSERT_CONTAINS(body,
                    "jobd_job_duration_seconds_bucket{queue=\"mq\",type=\"noop\",le=\"3600\"} 0");
    free(body);

    /* One job of each ending. */
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], sleeper[JOBD_ID_LEN + 1], rel[JOBD_ID_LEN + 1];
    test_submit(c, q, "noop", "{}", 0, 0, id);                   /* succeeded */
    test_submit(c, q, "fail", "{}", 1, 0, id);                   /* dead */
    test_submit(c, q, "nosuch", "{}", 0, 0, id);                 /* dead, as type "unknown" */
    test_submit(c, q, "rel", "{}", 0, 0, rel);                   /* released, then succeeded */
    test_submit(c, q, "sleep", "{\"ms\":60000}", 0, 0, sleeper); /* canceled */
    jobd_job_spec_t spec;
    jobd_job_spec_init(&spec);
    spec.queue = q;
    spec.type = "fail";
    spec.max_attempts = 2; /* retried, then dead */
    spec.retry_base_ms = 1;
    spec.retry_cap_ms = 1;
    ASSERT_EQ(jobd_submit(c, &spec, id, NULL), 0);
    CHECK_OR_DUMP(test_wait_field(q, sleeper, "state", "active", test_ms(10000)) == 0, log,
                  "the sleep job never started");
    ASSERT_EQ(jobd_cancel(c, sleeper, NULL), 0);

    /* Exactly these series moved, by exactly these amounts. */
    wait_value(port, series(s, sizeof s, "jobd_jobs_finished_total", q, "fail", "dead"), 2, 15000,
               log);
    wait_value(port, series(s, sizeof s, "jobd_jobs_finished_total", q, "sleep", "canceled"), 1,
               15000, log);
    wait_value(port, series(s, sizeof s, "jobd_jobs_finished_total", q, "rel", "succeeded"), 1,
               15000, log);
    body = httpc_get_body(port, "/metrics");
    ASSERT(body != NULL);
    ASSERT_EQ(
        value_in(body, series(s, sizeof s, "jobd_jobs_finished_total", q, "noop", "succeeded")), 1);
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_finished_total", q, "unknown", "dead")),
              1);
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_retried_total", q, "fail", 0)), 1);
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_jobs_released_total", q, "rel", 0)), 1);
    ASSERT_EQ(family_sum(body, "jobd_jobs_finished_total"), 6);
    ASSERT_EQ(family_sum(body, "jobd_jobs_retried_total"), 1);
    ASSERT_EQ(family_sum(body, "jobd_jobs_released_total"), 1);
    ASSERT_EQ(family_sum(body, "jobd_jobs_deferred_total"), 0);
    ASSERT(strstr(body, "nosuch") == NULL); /* a job's type never becomes a label */
    /* Run times: every attempt that ended but the released one. */
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_job_duration_seconds_count", q, "fail", 0)),
              3);
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_job_duration_seconds_count", q, "rel", 0)),
              1);
    ASSERT_EQ(value_in(body, series(s, sizeof s, "jobd_job_duration_seconds_count", q, "sleep", 0)),
              1);
    ASSERT_EQ(family_sum(body, "jobd_job_duration_seconds_count"), 7);
    free(body);
    jobd_client_free(c);
    stop(pid, log);
}

TEST(metrics_queue_oldest_age)
{
    /* A job waits in a paused queue before jobd starts: jobd samples the
     * queue as soon as Redis answers. */
    const char *q = "oq", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    ASSERT_EQ(jobd_pause(c, q, NULL), 0);
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "noop", "{}", 0, 0, id);
    int port;
    pid_t pid = start(q, log, &port);
    char s[200];
    snprintf(s, sizeof s, "jobd_queue_oldest_age_seconds{queue=\"%s\"}", q);
    int64_t deadline = test_now_ms() + test_ms(10000);
    double age;
    while ((age = metric(port, s)) <= 0) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "%s is %g, want > 0", s, age);
        test_pause_ms(20);
    }
    ASSERT(age < 600);
    /* Resumed, the job runs; the next sample (within 5 s) says none waits. */
    ASSERT_EQ(jobd_resume(c, q, NULL), 0);
    ASSERT_EQ(test_wait_field(q, id, "state", "succeeded", test_ms(10000)), 0);
    wait_value(port, s, 0, 12000, log);
    char depth[200];
    snprintf(depth, sizeof depth, "jobd_queue_depth{queue=\"%s\",state=\"queued\"}", q);
    ASSERT_EQ(metric(port, depth), 0);
    jobd_client_free(c);
    stop(pid, log);
}

TEST(metrics_build_process_and_promtool)
{
    const char *q = "pq", *log = test_tmp_path("jobd.log");
    int port;
    pid_t pid = start(q, log, &port);
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "noop", "{}", 0, 0, id);
    ASSERT_EQ(test_wait_field(q, id, "state", "succeeded", test_ms(10000)), 0);
    char *body = httpc_get_body(port, "/metrics");
    ASSERT(body != NULL);
    ASSERT_EQ(value_in(body, "jobd_build_info{version=\"" JOBD_VERSION "\"}"), 1);
    ASSERT_EQ(value_in(body, "jobd_ready"), 1);
    ASSERT_CONTAINS(body, "# TYPE process_cpu_seconds_total counter");
    ASSERT(value_in(body, "process_cpu_seconds_total") >= 0);
    ASSERT(value_in(body, "process_resident_memory_bytes") > 1024 * 1024);
    ASSERT(value_in(body, "process_open_fds") > 3);
    ASSERT(value_in(body, "process_max_fds") >= value_in(body, "process_open_fds"));
    /* Started within the last few minutes (and not in the future). */
    double start_s = value_in(body, "process_start_time_seconds"), now = (double)time(NULL);
    ASSERT(start_s > now - 300);
    ASSERT(start_s <= now + 1);

    /* The whole scrape passes promtool's parser and lint (Debian's
     * prometheus package; deploy/install-deps.sh installs it). */
    const char *file = test_tmp_path("scrape.txt");
    test_write_file(file, body);
    free(body);
    char cmd[1024], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", file);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    int st = test_run(argv, NULL, NULL, &out, &err);
    if (st != 0) fprintf(stderr, "promtool: %s%s\n", out ? out : "", err ? err : "");
    ASSERT_EQ(st, 0);
    free(out);
    free(err);
    jobd_client_free(c);
    stop(pid, log);
}
