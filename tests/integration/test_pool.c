/* test_pool.c - persistent handlers (exec protocol v2, daemon/pool.c)
 * against real processes, through the real jobd binary: many jobs through
 * one warm process, a process that crashes mid-job, one that hangs past its
 * timeout, one that leaks memory past max_rss_mb, recycling at max_jobs, a
 * drain mid-job, kill -9 of jobd (the restarted jobd kills the old pool),
 * a crash loop in readiness, the isolation rules, and the handlers file's
 * new keys. The handler is tests/fixtures/pool_handler.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* A handlers file with "p" (the pool fixture, persistent, with extra keys
 * spliced into its object) and "p.exec" (the same program, v1: unused). */
static const char *pool_handlers(const char *extra_keys, const char *extra_args)
{
    const char *path = test_tmp_path("pool-handlers.json");
    char text[4096];
    snprintf(text, sizeof text, "{\"p\": {\"exec\": [\"%s\"%s], \"mode\": \"persistent\"%s%s}}\n",
             test_helper("pool_handler"), extra_args ? extra_args : "",
             extra_keys && *extra_keys ? ", " : "", extra_keys ? extra_keys : "");
    test_write_file(path, text);
    return path;
}

static pid_t start_pool_jobd(const char *log, const char *q, const char *state,
                             const char *handlers, const char *const more[])
{
    const char *extra[32] = {"--handlers", handlers, NULL};
    int n = 2;
    for (int i = 0; more && more[i] && n < 31; i++)
        extra[n++] = more[i];
    extra[n] = NULL;
    return test_jobd_start(log, NULL, q, state, extra, NULL);
}

/* An integer field of a job's result; -1 if missing. */
static long long result_int(const char *q, const char *id, const char *key)
{
    char *r = test_hget(q, id, "result");
    json_t *j = r ? json_loads(r, 0, NULL) : NULL;
    long long v =
        json_is_integer(json_object_get(j, key)) ? json_integer_value(json_object_get(j, key)) : -1;
    json_decref(j);
    free(r);
    return v;
}

static int alive(int pid)
{
    /* A zombie (reaped late by whoever inherited it) counts as gone. */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static int wait_gone(int pid, int64_t ms)
{
    int64_t end = test_now_ms() + ms;
    while (alive(pid)) {
        if (test_now_ms() > end) return -1;
        test_pause_ms(20);
    }
    return 0;
}

/* The pid of the "RUN <id> <pid>" line of job id in path, 0 if none yet. */
static int run_pid(const char *path, const char *id)
{
    char *s = test_read_file(path);
    int pid = 0;
    char needle[128];
    snprintf(needle, sizeof needle, "RUN %s ", id);
    const char *p = s ? strstr(s, needle) : NULL;
    if (p) pid = atoi(p + strlen(needle));
    free(s);
    return pid;
}

static int wait_run_pid(const char *path, const char *id, int64_t ms)
{
    int64_t end = test_now_ms() + ms;
    int pid;
    while ((pid = run_pid(path, id)) == 0 && test_now_ms() < end)
        test_pause_ms(20);
    return pid;
}

/* ====================================================================== */

TEST(pool_many_jobs_through_one_process)
{
    enum { N = 200 };
    const char *q = "pool-many", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char ids[N][JOBD_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        test_submit(c, q, "p", "{\"mode\":\"ok\"}", 1, 0, ids[i]);
    const char *more[] = {"--concurrency", "4", "--once", NULL};
    pid_t pid = start_pool_jobd(log, q, "st", pool_handlers("\"processes\": 1", NULL), more);
    ASSERT_EXIT(pid, test_ms(60000), log, 0);
    ASSERT_EQ(test_zcard(q, "succeeded"), N);
    long long first = result_int(q, ids[0], "pid");
    ASSERT_GT(first, 0);
    char seen[N + 1] = {0};
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(result_int(q, ids[i], "pid"), first); /* one warm process did them all */
        long long n = result_int(q, ids[i], "n");
        ASSERT(n >= 1 && n <= N);
        ASSERT_EQ(seen[n], 0); /* one job at a time, each once */
        seen[n] = 1;
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", "\"protocol\":\"2\"");
    }
    ASSERT(test_count_log(log, "persistent, 1 processes") == 1);
    /* The pool's process went away with jobd. */
    ASSERT_EQ(wait_gone((int)first, test_ms(5000)), 0);
    jobd_client_free(c);
}

TEST(pool_crash_fails_only_its_job_and_restarts)
{
    const char *q = "pool-crash", *log = test_tmp_path("jobd.log"),
               *runs = test_tmp_path("runs.log");
    jobd_client_t *c = test_client();
    char crash[JOBD_ID_LEN + 1], ok[3][JOBD_ID_LEN + 1], payload[600];
    snprintf(payload, sizeof payload, "{\"mode\":\"crash\",\"log\":\"%s\"}", runs);
    test_submit(c, q, "p", payload, 1, 0, crash);
    snprintf(payload, sizeof payload, "{\"mode\":\"ok\",\"log\":\"%s\"}", runs);
    for (int i = 0; i < 3; i++)
        test_submit(c, q, "p", payload, 1, 0, ok[i]);
    const char *more[] = {"--concurrency", "1", "--once", NULL};
    pid_t pid = start_pool_jobd(log, q, "st", pool_handlers("\"processes\": 1", NULL), more);
    ASSERT_EXIT(pid, test_ms(60000), log, 1); /* --once: a job ended dead */
    ASSERT_FIELD(q, crash, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, crash, "error", "handler process exited with status 3");
    ASSERT_FIELD_CONTAINS(q, crash, "error", "crashing now"); /* its stderr */
    int crashed = run_pid(runs, crash);
    ASSERT_GT(crashed, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_FIELD(q, ok[i], "state", "succeeded");
        ASSERT(result_int(q, ok[i], "pid") != crashed); /* a new process took over */
    }
    ASSERT(test_count_log(log, "while running job") >= 1);
    jobd_client_free(c);
}

TEST(pool_timeout_kills_and_replaces_the_process)
{
    const char *q = "pool-hang", *log = test_tmp_path("jobd.log"),
               *runs = test_tmp_path("runs.log");
    jobd_client_t *c = test_client();
    char hang[JOBD_ID_LEN + 1], ok[JOBD_ID_LEN + 1], payload[600];
    snprintf(payload, sizeof payload, "{\"mode\":\"hang\",\"log\":\"%s\"}", runs);
    test_submit(c, q, "p", payload, 1, 1, hang); /* timeout 1 s */
    test_submit(c, q, "p", "{\"mode\":\"ok\"}", 1, 0, ok);
    const char *more[] = {"--concurrency", "1", "--once", "--kill-grace", "1", NULL};
    pid_t pid = start_pool_jobd(log, q, "st", pool_handlers("\"processes\": 1", NULL), more);
    ASSERT_EXIT(pid, test_ms(60000), log, 1);
    ASSERT_FIELD(q, hang, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, hang, "error", "timeout after");
    ASSERT_FIELD_CONTAINS(q, hang, "error", "killed by signal 9"); /* it ignored SIGTERM */
    int hung = run_pid(runs, hang);
    ASSERT_GT(hung, 0);
    ASSERT_EQ(wait_gone(hung, test_ms(5000)), 0);
    ASSERT_FIELD(q, ok, "state", "succeeded");
    ASSERT(result_int(q, ok, "pid") != hung);
    jobd_client_free(c);
}

TEST(pool_recycles_at_max_rss_and_max_jobs)
{
    const char *q = "pool-rss", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char leak[JOBD_ID_LEN + 1], after[JOBD_ID_LEN + 1], ok[7][JOBD_ID_LEN + 1];
    test_submit(c, q, "p", "{\"mode\":\"leak\",\"mb\":96}", 1, 0, leak);
    test_submit(c, q, "p", "{\"mode\":\"ok\"}", 1, 0, after);
    for (int i = 0; i < 7; i++)
        test_submit(c, q, "p", "{\"mode\":\"ok\"}", 1, 0, ok[i]);
    const char *more[] = {"--concurrency", "1", "--once", NULL};
    pid_t pid = start_pool_jobd(
        log, q, "st", pool_handlers("\"processes\": 1, \"max_rss_mb\": 64, \"max_jobs\": 3", NULL),
        more);
    ASSERT_EXIT(pid, test_ms(60000), log, 0);
    ASSERT_FIELD(q, leak, "state", "succeeded");
    long long leaked = result_int(q, leak, "pid");
    CHECK_OR_DUMP(leaked > 0 && result_int(q, after, "pid") != leaked, log,
                  "the process that leaked (%lld) took the next job", leaked);
    ASSERT(test_count_log(log, "over max_rss_mb 64") == 1);
    /* max_jobs 3: no process took more than 3 jobs. */
    for (int i = 0; i < 7; i++) {
        ASSERT_FIELD(q, ok[i], "state", "succeeded");
        ASSERT(result_int(q, ok[i], "n") <= 3);
    }
    ASSERT(test_count_log(log, "ran max_jobs 3 jobs") >= 2);
    jobd_client_free(c);
}

TEST(pool_drain_mid_job_stops_checkpoints_and_releases)
{
    const char *q = "pool-drain", *log = test_tmp_path("jobd.log"),
               *runs = test_tmp_path("runs.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[600];
    snprintf(payload, sizeof payload, "{\"mode\":\"sleep\",\"ms\":600000,\"log\":\"%s\"}", runs);
    test_submit(c, q, "p", payload, 3, 0, id);
    const char *more[] = {"--concurrency", "2", "--drain-timeout", "1", "--kill-grace", "5", NULL};
    pid_t pid = start_pool_jobd(log, q, "st", pool_handlers("\"processes\": 2", NULL), more);
    int hp = wait_run_pid(runs, id, test_ms(15000));
    CHECK_OR_DUMP(hp > 0, log, "the job never ran");
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(10000)) == 0, log,
                  "not active");
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    /* The stop line reached it; it answered a checkpoint and stopped. */
    char *r = test_read_file(runs);
    ASSERT_CONTAINS(r, "STOP ");
    free(r);
    ASSERT_FIELD(q, id, "state", "queued");
    ASSERT_FIELD(q, id, "attempt", "0"); /* released, not charged */
    ASSERT_FIELD_CONTAINS(q, id, "checkpoint", "\"i\":");
    /* Every process of the pool exited with jobd. */
    ASSERT_EQ(wait_gone(hp, test_ms(5000)), 0);
    jobd_client_free(c);
}

TEST(pool_sigkill_restart_kills_the_old_pool)
{
    const char *q = "pool-k9", *runs = test_tmp_path("runs.log"), *state = test_tmp_path("state");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[600];
    /* It checkpoints, then ignores everything but SIGKILL: it outlives jobd. */
    snprintf(payload, sizeof payload, "{\"mode\":\"hang\",\"log\":\"%s\"}", runs);
    test_submit(c, q, "p", payload, 3, 0, id);
    const char *handlers = pool_handlers("\"processes\": 2", NULL);
    const char *more_a[] = {"--concurrency", "2", "--lease", "30", "--worker-id", "A", NULL};
    pid_t a = start_pool_jobd(log_a, q, state, handlers, more_a);
    int hp = wait_run_pid(runs, id, test_ms(15000));
    CHECK_OR_DUMP(hp > 0, log_a, "the job never ran");
    /* Its checkpoint made the lease durable in the journal. */
    int64_t end = test_now_ms() + test_ms(10000);
    while (test_held_rows(state, id) != 1 && test_now_ms() < end)
        test_pause_ms(20);
    CHECK_OR_DUMP(test_held_rows(state, id) == 1, log_a, "the job never reached the journal");
    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);
    ASSERT(alive(hp)); /* the old pool's busy process outlived its jobd */
    const char *more_b[] = {"--concurrency",   "2", "--lease",      "30", "--worker-id", "B",
                            "--drain-timeout", "1", "--kill-grace", "1",  NULL};
    int64_t t0 = test_now_ms();
    pid_t b = start_pool_jobd(log_b, q, state, handlers, more_b);
    CHECK_OR_DUMP(wait_gone(hp, test_ms(10000)) == 0, log_b, "the old pool process %d lives on",
                  hp);
    CHECK_OR_DUMP(test_count_log(log_b, "left from an earlier run") >= 1, log_b,
                  "B did not say it stopped the old pool's process");
    /* B released the lease at once (far below the 30 s lease) and runs the
     * job again in its own pool. */
    CHECK_OR_DUMP(test_wait_field(q, id, "worker", "B", test_ms(10000)) == 0, log_b,
                  "B never took the job");
    printf("old pool killed and the job taken again %lld ms after the restart\n",
           (long long)(test_now_ms() - t0));
    kill(b, SIGTERM);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);
    ASSERT_FIELD(q, id, "state", "queued");
    jobd_client_free(c);
}

TEST(pool_crash_loop_fails_readiness)
{
    const char *q = "pool-loop", *log = test_tmp_path("jobd.log");
    const char *path = test_tmp_path("loop-handlers.json");
    /* A program that exits at once, before any ready line. */
    test_write_file(path, "{\"p\": {\"exec\": [\"/bin/false\"], \"mode\": \"persistent\", "
                          "\"processes\": 1}}\n");
    pid_t pid =
        test_jobd_start(log, NULL, q, "st", (const char *const[]){"--handlers", path, NULL}, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(20000), "crash loop", NULL) == 0, log,
                  "no crash loop logged");
    httpc_resp_t ready;
    ASSERT_EQ(httpc_request(port, "GET", "/health/ready", NULL, NULL, test_ms(10000), &ready), 503);
    ASSERT_CONTAINS(ready.body, "handler p: crash loop");
    httpc_resp_free(&ready);
    char *m = httpc_get_body(port, "/metrics");
    ASSERT_CONTAINS(m, "jobd_pool_process_crashes_total{type=\"p\"}");
    free(m);
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
}

TEST(pool_isolation_fds_and_environment)
{
    const char *q = "pool-iso", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "p", "{\"mode\":\"fds\"}", 1, 0, id);
    const char *env[] = {"JOBD_REDIS_PASSWORD=secret", "SOMETHING_ELSE=1", NULL};
    const char *extra[] = {"--handlers", pool_handlers(NULL, NULL), "--once", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, "st", extra, env);
    ASSERT_EXIT(pid, test_ms(30000), log, 0);
    char *res = test_hget(q, id, "result");
    json_t *j = res ? json_loads(res, 0, NULL) : NULL;
    const char *fds = json_string_value(json_object_get(j, "fds"));
    const char *names = json_string_value(json_object_get(j, "env"));
    if (!fds || strcmp(fds, "0 1 2") != 0)
        test_fail(__FILE__, __LINE__, "the pool process inherited more than stdio: %s",
                  res ? res : "(no result)");
    ASSERT(names != NULL);
    ASSERT(strstr(names, "JOBD_PROTOCOL") != NULL);
    ASSERT(strstr(names, "REDIS") == NULL);
    ASSERT(strstr(names, "SOMETHING_ELSE") == NULL);
    json_decref(j);
    free(res);
    jobd_client_free(c);
}

TEST(pool_handler_keys_are_checked)
{
    static const struct {
        const char *spec, *needle;
    } cases[] = {
        {"\"processes\": 2", "\"processes\" needs \"mode\": \"persistent\""},
        {"\"mode\": \"warm\"", "\"mode\" must be"},
        {"\"mode\": \"persistent\", \"processes\": 0",
         "\"processes\" must be an integer in 1..1024"},
        {"\"mode\": \"persistent\", \"max_rss_mb\": -1", "\"max_rss_mb\" must be an integer"},
        {"\"mode\": \"persistent\", \"max_jobs\": 1.5", "\"max_jobs\" must be an integer"},
        {"\"mode\": \"persistent\", \"start_timeout_s\": 0", "\"start_timeout_s\" must be"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = test_tmp_path("bad-handlers.json");
        char text[1024];
        snprintf(text, sizeof text, "{\"p\": {\"exec\": [\"%s\"], %s}}\n",
                 test_helper("pool_handler"), cases[i].spec);
        test_write_file(path, text);
        const char *argv[] = {test_env("JOBD_BIN"), "--handlers", path, "--check-config", NULL};
        char *err = NULL;
        int st = test_run(argv, NULL, NULL, NULL, &err);
        ASSERT_EQ(st, 78);
        ASSERT_CONTAINS(err, cases[i].needle);
        free(err);
    }
    /* A built-in cannot be persistent. */
    const char *path = test_tmp_path("bi-handlers.json");
    test_write_file(path, "{\"x\": {\"builtin\": \"noop\", \"mode\": \"persistent\"}}\n");
    const char *argv[] = {test_env("JOBD_BIN"), "--handlers", path, "--check-config", NULL};
    char *err = NULL;
    ASSERT_EQ(test_run(argv, NULL, NULL, NULL, &err), 78);
    ASSERT_CONTAINS(err, "needs \"exec\"");
    free(err);
}
