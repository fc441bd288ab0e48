/* test_worker.c - black-box tests of the jobd worker loop: the real jobd
 * binary against the real test redis-server, real exec handlers
 * (tests/fixtures/test_handler.c), real signals. Each test has its own key
 * prefix and queue names. Nothing here sleeps to synchronise: tests wait for
 * log lines, for Redis conditions polled with a deadline, or for exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

/* ---- queue-wide checks (the shared helpers are in testlib.h) ---- */

static long long terminal_count(const char *queue)
{
    return test_zcard(queue, "succeeded") + test_zcard(queue, "dead") +
           test_zcard(queue, "canceled");
}

/* Prints how many jobs of queue are in each state (for a failing test). */
static void print_counts(const char *queue)
{
    fprintf(stderr,
            "queue %s: ready %lld, scheduled %lld, active %lld, succeeded %lld, dead %lld, "
            "canceled %lld\n",
            queue, test_zcard(queue, "ready"), test_zcard(queue, "scheduled"),
            test_zcard(queue, "active"), test_zcard(queue, "succeeded"), test_zcard(queue, "dead"),
            test_zcard(queue, "canceled"));
}

/* Asserts nothing of queue is left waiting or leased. */
static void assert_nothing_pending(const char *queue)
{
    ASSERT_EQ(test_zcard(queue, "ready"), 0);
    ASSERT_EQ(test_zcard(queue, "scheduled"), 0);
    ASSERT_EQ(test_zcard(queue, "active"), 0);
}

/* Waits for a --once jobd to exit 0 and checks that all n jobs of queue
 * succeeded (none dead, none canceled, nothing pending). */
static void assert_batch_succeeded(pid_t pid, int64_t ms, const char *log, const char *queue,
                                   char (*ids)[JOBD_ID_LEN + 1], int n)
{
    int st = test_wait_exit(pid, ms, log);
    if (st != 0 || test_zcard(queue, "succeeded") != n) {
        print_counts(queue);
        if (st >= 0) test_dump_log(log);
    }
    ASSERT_EQ(st, 0);
    ASSERT_EQ(test_zcard(queue, "succeeded"), n);
    ASSERT_EQ(test_zcard(queue, "dead"), 0);
    ASSERT_EQ(test_zcard(queue, "canceled"), 0);
    assert_nothing_pending(queue);
    for (int i = 0; i < n; i++)
        ASSERT_FIELD(queue, ids[i], "state", "succeeded");
}

/* ---- 1. bounded concurrency, exactly-once success, 2,000 exec jobs ---- */

typedef struct {
    long long ns;
    int start; /* 1 START, 0 END */
} event_t;

static int cmp_event(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    if (x->ns != y->ns) return x->ns < y->ns ? -1 : 1;
    return x->start - y->start; /* an END at the same instant frees the slot first */
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

TEST(worker_concurrency_2000_exec_jobs)
{
    test_install_abort_handler();
    enum { N = 2000, SLOTS = 8 };
    const char *q = "wconc";
    const char *rec = test_tmp_path("record.log"), *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char payload[800];
    snprintf(payload, sizeof payload, "{\"mode\":\"record\",\"ms\":2,\"log\":\"%s\"}", rec);
    jobd_job_spec_t *specs = calloc(N, sizeof *specs);
    for (int i = 0; i < N; i++) {
        jobd_job_spec_init(&specs[i]);
        specs[i].queue = q;
        specs[i].type = "t.exec";
        specs[i].payload_json = payload;
    }
    char(*ids)[JOBD_ID_LEN + 1] = calloc(N, sizeof *ids);
    int rc = jobd_submit_batch(c, specs, N, (char *)ids);
    if (rc < 0) test_fail(__FILE__, __LINE__, "submit batch: %s", jobd_client_errmsg(c));

    pid_t pid = test_jobd_start(log, NULL, q, "state",
                                (const char *[]){"--concurrency", "8", "--once", NULL}, NULL);
    ASSERT_EXIT(pid, test_ms(60000), log, 0);

    ASSERT_EQ(test_zcard(q, "succeeded"), N);
    ASSERT_EQ(test_zcard(q, "dead"), 0);
    assert_nothing_pending(q);
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "succeeded");
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", ids[i]);
    }

    /* Each job ran exactly once, and never more than SLOTS at a time. */
    FILE *f = fopen(rec, "r");
    ASSERT(f != NULL);
    event_t *ev = calloc(4 * N, sizeof *ev);
    char(*ends)[JOBD_ID_LEN + 1] = calloc(2 * N, sizeof *ends);
    int nev = 0, nstart = 0, nend = 0;
    char kind[16], id[JOBD_ID_LEN + 1];
    long long ns;
    while (nev < 4 * N && fscanf(f, "%15s %36s %lld", kind, id, &ns) == 3) {
        int start = strcmp(kind, "START") == 0;
        ev[nev++] = (event_t){ns, start};
        if (start) {
            nstart++;
        } else if (nend < 2 * N) {
            memcpy(ends[nend++], id, sizeof id);
        }
    }
    fclose(f);
    ASSERT_EQ(nstart, N);
    ASSERT_EQ(nend, N);
    qsort(ends, (size_t)nend, sizeof *ends, cmp_id);
    for (int i = 1; i < nend; i++)
        if (strcmp(ends[i - 1], ends[i]) == 0)
            test_fail(__FILE__, __LINE__, "job %s ran twice", ends[i]);
    for (int i = 0; i < N; i++)
        ASSERT(bsearch(ids[i], ends, (size_t)nend, sizeof *ends, cmp_id) != NULL);
    qsort(ev, (size_t)nev, sizeof *ev, cmp_event);
    int cur = 0, max = 0;
    for (int i = 0; i < nev; i++) {
        cur += ev[i].start ? 1 : -1;
        if (cur > max) max = cur;
    }
    ASSERT_EQ(cur, 0);
    ASSERT_LE(max, SLOTS);
    ASSERT_GE(max, 2); /* the slots were really used in parallel */
    free(ev);
    free(ends);
    free(ids);
    free(specs);
    jobd_client_free(c);
}

/* ---- 2. retries with backoff, then dead ---- */

TEST(worker_retry_backoff_then_dead)
{
    test_install_abort_handler();
    const char *q = "wretry", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "fail", "{\"message\":\"boom-7f3a\"}", 3, 0, id);

    pid_t pid = test_jobd_start(
        log, NULL, q, "state",
        (const char *[]){"--once", "--retry-base", "100ms", "--retry-cap", "1s", NULL}, NULL);
    ASSERT_EXIT(pid, test_ms(30000), log, 1); /* --once: a job ended dead */

    json_t *st = NULL;
    ASSERT_EQ(jobd_status(c, id, &st), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "state")), "dead");
    ASSERT_EQ(json_integer_value(json_object_get(st, "attempt")), 3);
    ASSERT_CONTAINS(json_string_value(json_object_get(st, "error")), "boom-7f3a");
    json_decref(st);
    ASSERT_EQ(test_zcard(q, "dead"), 1);
    assert_nothing_pending(q);
    ASSERT_EQ(test_stat_counter(q, "failed"), 3);
    ASSERT_EQ(test_stat_counter(q, "dead"), 1);

    /* Two retries were scheduled (attempts 1 and 2), then attempt 3 went dead. */
    json_t *retries = test_log_find(log, id, "retry scheduled");
    json_t *dead = test_log_find(log, id, "dead");
    ASSERT_EQ(json_array_size(retries), 2);
    ASSERT_EQ(json_array_size(dead), 1);
    json_t *r1 = json_array_get(retries, 0), *r2 = json_array_get(retries, 1),
           *d = json_array_get(dead, 0);
    ASSERT_EQ(json_integer_value(json_object_get(r1, "attempt")), 1);
    ASSERT_EQ(json_integer_value(json_object_get(r2, "attempt")), 2);
    ASSERT_EQ(json_integer_value(json_object_get(d, "attempt")), 3);
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "queue")), q);
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "type")), "fail");
    int64_t t1 = jobd_parse_rfc3339_ms(json_string_value(json_object_get(r1, "ts")));
    int64_t t2 = jobd_parse_rfc3339_ms(json_string_value(json_object_get(r2, "ts")));
    int64_t t3 = jobd_parse_rfc3339_ms(json_string_value(json_object_get(d, "ts")));
    ASSERT(t1 > 0 && t2 > 0 && t3 > 0);
    ASSERT_LE(t1, t2);
    ASSERT_LE(t2, t3);
    /* The last attempt was claimed no earlier than the run_at its retry was
     * scheduled for (both on the Redis clock): the backoff was honoured. */
    long long run_at = test_hget_ll(q, id, "run_at"), started = test_hget_ll(q, id, "started_at");
    ASSERT_GT(run_at, 0);
    ASSERT_GE(started, run_at);
    json_decref(retries);
    json_decref(dead);
    jobd_client_free(c);
}

/* ---- 3. job timeout: SIGTERM, then SIGKILL after the kill grace ---- */

TEST(worker_timeout_stops_handler)
{
    test_install_abort_handler();
    const char *q = "wtimeout", *log = test_tmp_path("jobd.log"),
               *rec = test_tmp_path("handler.log");
    jobd_client_t *c = test_client();
    char p1[800], p2[800], polite[JOBD_ID_LEN + 1], stubborn[JOBD_ID_LEN + 1];
    snprintf(p1, sizeof p1, "{\"mode\":\"sleep\",\"ms\":60000,\"log\":\"%s\"}", rec);
    snprintf(p2, sizeof p2, "{\"mode\":\"hang\",\"log\":\"%s\"}", rec);
    test_submit(c, q, "t.exec", p1, 1, 1, polite);
    test_submit(c, q, "t.exec", p2, 1, 1, stubborn);

    pid_t pid = test_jobd_start(
        log, NULL, q, "state",
        (const char *[]){"--once", "--concurrency", "2", "--kill-grace", "1", NULL}, NULL);
    ASSERT_EXIT(pid, test_ms(30000), log, 1); /* --once: the jobs ended dead */

    ASSERT_FIELD(q, polite, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, polite, "error", "timeout");
    ASSERT_FIELD(q, stubborn, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, stubborn, "error", "timeout");
    assert_nothing_pending(q);
    /* The polite handler saw SIGTERM; the stubborn one ignored it and was
     * killed after the grace (it would otherwise run for minutes). */
    char want[128];
    snprintf(want, sizeof want, "TERM %s 1", polite);
    ASSERT_EQ(test_wait_log(rec, 0, want, NULL), 0);
    jobd_client_free(c);
}

/* ---- 4. cancel of active jobs (built-in and exec) ---- */

TEST(worker_cancel_active_job)
{
    test_install_abort_handler();
    const char *q = "wcancel", *log = test_tmp_path("jobd.log"),
               *rec = test_tmp_path("handler.log");
    jobd_client_t *c = test_client();
    char p[800], bi[JOBD_ID_LEN + 1], ex[JOBD_ID_LEN + 1];
    snprintf(p, sizeof p, "{\"mode\":\"sleep\",\"ms\":60000,\"log\":\"%s\"}", rec);
    test_submit(c, q, "sleep", "{\"ms\":60000}", 0, 0, bi);
    test_submit(c, q, "t.exec", p, 0, 0, ex);

    pid_t pid = test_jobd_start(
        log, NULL, q, "state",
        (const char *[]){"--once", "--concurrency", "2", "--lease", "3", NULL}, NULL);
    ASSERT_EQ(test_wait_field(q, bi, "state", "active", test_ms(10000)), 0);
    ASSERT_EQ(test_wait_field(q, ex, "state", "active", test_ms(10000)), 0);
    char run[128];
    snprintf(run, sizeof run, "RUN %s 1", ex);
    ASSERT_EQ(test_wait_log(rec, test_ms(10000), run, NULL), 0); /* the child is up */

    int was_active = -1;
    ASSERT_EQ(jobd_cancel(c, bi, &was_active), 0);
    ASSERT_EQ(was_active, 1);
    was_active = -1;
    ASSERT_EQ(jobd_cancel(c, ex, &was_active), 0);
    ASSERT_EQ(was_active, 1);

    /* The heartbeat is a third of the lease (1 s): a few of them at most. */
    ASSERT_EQ(test_wait_field(q, bi, "state", "canceled", test_ms(6000)), 0);
    ASSERT_EQ(test_wait_field(q, ex, "state", "canceled", test_ms(6000)), 0);
    ASSERT_EXIT(pid, test_ms(10000), log, 0);
    ASSERT_EQ(test_zcard(q, "canceled"), 2);
    assert_nothing_pending(q);
    char term[128];
    snprintf(term, sizeof term, "TERM %s 1", ex);
    ASSERT_EQ(test_wait_log(rec, 0, term, NULL), 0); /* jobd stopped the child */
    jobd_client_free(c);
}

/* ---- 5. lease loss: a paused worker is fenced off ---- */

/* Polls until A's log has a line for job id saying its lease was lost or
 * its outcome was rejected as stale. */
static int wait_fenced(const char *log, const char *id, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (test_log_has_job(log, id, "lease lost") + test_log_has_job(log, id, "stale") == 0) {
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
    return 0;
}

TEST(worker_lease_lost_is_fenced)
{
    test_install_abort_handler();
    const char *q = "wlease", *rec = test_tmp_path("handler.log");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    char p[800], running[JOBD_ID_LEN + 1], finished[JOBD_ID_LEN + 1];
    /* On attempt 1 (A's), "running" runs long, so A's copy is still running
     * when A wakes up (A must stop it), and "finished" ends while A is paused
     * (A's ack must be rejected). Attempt 2 (B's) is short for both. */
    snprintf(p, sizeof p, "{\"mode\":\"sleep\",\"ms\":60000,\"ms_retry\":300,\"log\":\"%s\"}", rec);
    test_submit(c, q, "t.exec", p, 5, 0, running);
    snprintf(p, sizeof p, "{\"mode\":\"sleep\",\"ms\":2000,\"ms_retry\":300,\"log\":\"%s\"}", rec);
    test_submit(c, q, "t.exec", p, 5, 0, finished);
    const char *const ids[] = {running, finished};

    pid_t a = test_jobd_start(
        log_a, NULL, q, "state-a",
        (const char *[]){"--lease", "2", "--worker-id", "A", "--concurrency", "2", NULL}, NULL);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(test_wait_field(q, ids[i], "state", "active", test_ms(10000)), 0);
        ASSERT_FIELD(q, ids[i], "worker", "A");
        char run1[128];
        snprintf(run1, sizeof run1, "RUN %s 1", ids[i]);
        ASSERT_EQ(test_wait_log(rec, test_ms(10000), run1, NULL), 0);
    }

    ASSERT_EQ(kill(a, SIGSTOP), 0);
    pid_t b = test_jobd_start(
        log_b, NULL, q, "state-b",
        (const char *[]){"--lease", "2", "--worker-id", "B", "--concurrency", "2", NULL}, NULL);
    /* A's leases expire; B claims both jobs (attempt 2) and finishes them. */
    for (int i = 0; i < 2; i++) {
        if (test_wait_field(q, ids[i], "state", "succeeded", test_ms(30000)) < 0) {
            kill(a, SIGCONT);
            test_dump_log(log_b);
            test_fail(__FILE__, __LINE__, "B did not finish job %s", ids[i]);
        }
        ASSERT_FIELD(q, ids[i], "worker", "B");
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", "\"attempt\":2");
    }
    /* A's copy of "finished" has ended (A, paused, has not seen it yet). */
    char done1[128];
    snprintf(done1, sizeof done1, "DONE %s 1", finished);
    ASSERT_EQ(test_wait_log(rec, test_ms(10000), done1, NULL), 0);

    ASSERT_EQ(kill(a, SIGCONT), 0);
    /* A finds out (rejected extension or rejected ack) and stops its copy
     * of "running". */
    for (int i = 0; i < 2; i++) {
        if (wait_fenced(log_a, ids[i], test_ms(10000)) < 0) {
            test_dump_log(log_a);
            test_fail(__FILE__, __LINE__, "A never noticed it lost the lease of %s", ids[i]);
        }
    }
    char term[128];
    snprintf(term, sizeof term, "TERM %s 1", running);
    if (test_wait_log(rec, test_ms(10000), term, NULL) < 0) {
        test_dump_log(log_a);
        test_fail(__FILE__, __LINE__, "A did not stop its copy of the job");
    }

    ASSERT_EQ(kill(a, SIGTERM), 0);
    ASSERT_EQ(kill(b, SIGTERM), 0);
    ASSERT_EXIT(a, test_ms(15000), log_a, 0);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);

    /* B's outcomes stand; A reported nothing. */
    for (int i = 0; i < 2; i++) {
        ASSERT_FIELD(q, ids[i], "state", "succeeded");
        ASSERT_FIELD(q, ids[i], "worker", "B");
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", "\"attempt\":2");
        ASSERT_EQ(test_log_has_job(log_a, ids[i], "job succeeded"), 0);
        ASSERT_EQ(test_log_has_job(log_a, ids[i], "job released"), 0);
        ASSERT_EQ(test_log_has_job(log_a, ids[i], "job failed"), 0);
    }
    ASSERT_EQ(test_zcard(q, "succeeded"), 2);
    assert_nothing_pending(q);
    ASSERT_EQ(test_stat_counter(q, "succeeded"), 2);
    ASSERT_EQ(test_stat_counter(q, "failed"), 0);
    ASSERT_EQ(test_stat_counter(q, "released"), 0);
    jobd_client_free(c);
}

/* ---- 6. kill -9 of jobd in the middle of a batch ---- */

TEST(worker_sigkill_mid_batch_loses_nothing)
{
    test_install_abort_handler();
    enum { N = 1000 };
    const char *q = "wkill", *log_a = test_tmp_path("jobd-a.log"),
               *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    jobd_job_spec_t *specs = calloc(N, sizeof *specs);
    for (int i = 0; i < N; i++) {
        jobd_job_spec_init(&specs[i]);
        specs[i].queue = q;
        specs[i].type = "sleep";
        specs[i].payload_json = "{\"ms\":20}";
    }
    char(*ids)[JOBD_ID_LEN + 1] = calloc(N, sizeof *ids);
    if (jobd_submit_batch(c, specs, N, (char *)ids) < 0)
        test_fail(__FILE__, __LINE__, "submit batch: %s", jobd_client_errmsg(c));

    const char *flags[] = {"--concurrency", "8", "--lease", "2", NULL};
    pid_t a = test_jobd_start(log_a, NULL, q, "state", flags, NULL);
    if (test_wait_zcard_ge(q, "succeeded", 200, test_ms(60000)) < 0) {
        test_dump_log(log_a);
        test_fail(__FILE__, __LINE__, "jobd did not get through 200 jobs");
    }
    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);
    long long done_at_kill = test_zcard(q, "succeeded");
    ASSERT_LT(done_at_kill, N); /* the kill really was mid-batch */

    /* A new jobd on the same state directory finishes the batch, the jobs
     * the dead one held included. */
    const char *flags_b[] = {"--concurrency", "8", "--lease", "2", "--once", NULL};
    pid_t b = test_jobd_start(log_b, NULL, q, "state", flags_b, NULL);
    assert_batch_succeeded(b, test_ms(60000), log_b, q, ids, N);
    free(ids);
    free(specs);
    jobd_client_free(c);
}

/* ---- 7. redis-server restarted in the middle of a batch ---- */

TEST(worker_redis_restart_mid_batch)
{
    test_install_abort_handler();
    enum { N = 500 };
    const char *q = "wrestart", *log = test_tmp_path("jobd.log");
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url);

    jobd_client_t *c = test_client_at(url);
    jobd_job_spec_t *specs = calloc(N, sizeof *specs);
    for (int i = 0; i < N; i++) {
        jobd_job_spec_init(&specs[i]);
        specs[i].queue = q;
        specs[i].type = "sleep";
        specs[i].payload_json = "{\"ms\":10}";
    }
    char(*ids)[JOBD_ID_LEN + 1] = calloc(N, sizeof *ids);
    if (jobd_submit_batch(c, specs, N, (char *)ids) < 0)
        test_fail(__FILE__, __LINE__, "submit batch: %s", jobd_client_errmsg(c));
    jobd_client_free(c);

    pid_t pid = test_jobd_start(
        log, url, q, "state",
        (const char *[]){"--once", "--concurrency", "4", "--lease", "3", NULL}, NULL);
    if (test_wait_zcard_ge(q, "succeeded", 100, test_ms(60000)) < 0) {
        test_dump_log(log);
        test_fail(__FILE__, __LINE__, "jobd did not get through 100 jobs");
    }
    ASSERT_EQ(test_count_log(log, "Redis ready"), 1);
    test_private_redis_stop(dir);
    test_private_redis_start(dir, url);
    long long after_restart = test_zcard(q, "succeeded");
    ASSERT_GE(after_restart, 100); /* the data survived the restart (AOF) */
    ASSERT_LT(after_restart, N);   /* and the restart really was mid-batch */

    int64_t deadline = test_now_ms() + test_ms(30000);
    while (test_count_log(log, "Redis ready") < 2) {
        if (test_now_ms() >= deadline) {
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "jobd did not reconnect");
        }
        test_pause_ms(20);
    }
    assert_batch_succeeded(pid, test_ms(30000), log, q, ids, N);
    test_private_redis_stop(dir);
    free(ids);
    free(specs);
}

/* ---- 7b. the reaper keeps running after a Redis outage ---- */

/* Makes job id (submitted with a long delay, so it sits in scheduled) look
 * like a job leased by a worker that crashed: active, under a token nobody
 * holds, its lease already expired. Written the way claim.lua writes a
 * claim. */
static void make_orphan(const char *queue, const char *id)
{
    char key[512], suffix[128], sched[512], active[512], past[32];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    test_qkey(key, sizeof key, queue, suffix);
    test_qkey(sched, sizeof sched, queue, "scheduled");
    test_qkey(active, sizeof active, queue, "active");
    redisReply *t = test_rcmd("TIME");
    ASSERT(t && t->type == REDIS_REPLY_ARRAY && t->elements == 2);
    long long now = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    snprintf(past, sizeof past, "%lld", now - 1000);
    redisReply *r = test_rcmd("ZREM %s %s", sched, id);
    ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    r = test_rcmd(
        "HSET %s state active token 1.1 worker crashed-worker started_at %s lease_until %s "
        "attempt 1 claims 1",
        key, past, past);
    ASSERT(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = test_rcmd("ZADD %s %s %s", active, past, id);
    ASSERT(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

TEST(worker_reaper_survives_redis_outage)
{
    test_install_abort_handler();
    const char *q = "wreap", *log = test_tmp_path("jobd.log");
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url);
    char before[JOBD_ID_LEN + 1], after[JOBD_ID_LEN + 1];
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = q;
    s.type = "noop";
    s.delay_ms = 3600 * 1000;

    /* lease 3 s: the reaper runs every 0.5..1 s. */
    pid_t pid = test_jobd_start(log, url, q, "state", (const char *[]){"--lease", "3", NULL}, NULL);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "Redis ready", NULL), 0);

    /* Control: a crashed worker's expired lease is reaped and the job runs. */
    jobd_client_t *c = test_client_at(url);
    ASSERT_EQ(jobd_submit(c, &s, before, NULL), 0);
    jobd_client_free(c);
    make_orphan(q, before);
    if (test_wait_field(q, before, "state", "succeeded", test_ms(10000)) < 0) {
        test_dump_log(log);
        test_fail(__FILE__, __LINE__, "the expired lease was not reaped");
    }

    /* An outage longer than the reaper's period (the outage's length is the
     * stimulus here, not a synchronisation). */
    test_private_redis_stop(dir);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "connection lost", NULL), 0);
    test_pause_ms(2500);
    test_private_redis_start(dir, url);
    int64_t deadline = test_now_ms() + test_ms(30000);
    while (test_count_log(log, "Redis ready") < 2) {
        if (test_now_ms() >= deadline) {
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "jobd did not reconnect");
        }
        test_pause_ms(20);
    }

    /* The same again after the outage: the reaper must still be running. */
    c = test_client_at(url);
    ASSERT_EQ(jobd_submit(c, &s, after, NULL), 0);
    jobd_client_free(c);
    make_orphan(q, after);
    if (test_wait_field(q, after, "state", "succeeded", test_ms(10000)) < 0) {
        char *st = test_hget(q, after, "state"), *until = test_hget(q, after, "lease_until");
        fprintf(stderr, "job %s after the outage: state %s, lease_until %s\n", after,
                st ? st : "(none)", until ? until : "(none)");
        free(st);
        free(until);
        test_dump_log(log);
        test_fail(__FILE__, __LINE__, "after a Redis outage, expired leases are never reaped");
    }
    ASSERT_FIELD(q, after, "attempt", "2"); /* the lost attempt was charged */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    test_private_redis_stop(dir);
}

/* ---- 7c. a wake-up lost while the pub/sub connection was down ---- */

static long long wake_subscribers(const char *queue)
{
    char ch[512];
    test_qkey(ch, sizeof ch, queue, "wake");
    redisReply *r = test_rcmd("PUBSUB NUMSUB %s", ch);
    long long n =
        r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

TEST(worker_claims_after_pubsub_reconnect)
{
    test_install_abort_handler();
    const char *q = "wwake", *log = test_tmp_path("jobd.log");
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url); /* CLIENT KILL below must not hit other tests */

    pid_t pid = test_jobd_start(log, url, q, "state", NULL, NULL);
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (wake_subscribers(q) < 1) {
        ASSERT(test_now_ms() < deadline);
        test_pause_ms(20);
    }
    /* Control: an idle jobd is woken by a new job. */
    jobd_client_t *c = test_client_at(url);
    char first[JOBD_ID_LEN + 1], second[JOBD_ID_LEN + 1];
    test_submit(c, q, "noop", "{}", 0, 0, first);
    ASSERT_EQ(test_wait_field(q, first, "state", "succeeded", test_ms(10000)), 0);

    /* Drop jobd's pub/sub connection and submit while it is away, so the
     * job's wake-up message reaches nobody. jobd must still find the job
     * (once it is back it cannot know what it missed, so it has to look). */
    int lost = 0;
    for (int tries = 0; tries < 20 && !lost; tries++) {
        while (wake_subscribers(q) < 1) {
            ASSERT(test_now_ms() < deadline + test_ms(20000));
            test_pause_ms(20);
        }
        redisReply *r = test_rcmd("CLIENT KILL TYPE pubsub");
        ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
        freeReplyObject(r);
        if (wake_subscribers(q) != 0) continue;
        test_submit(c, q, "noop", "{}", 0, 0, second);
        lost = wake_subscribers(q) == 0;
        if (!lost) ASSERT_EQ(test_wait_field(q, second, "state", "succeeded", test_ms(10000)), 0);
    }
    ASSERT(lost);
    if (test_wait_field(q, second, "state", "succeeded", test_ms(10000)) < 0) {
        char *st = test_hget(q, second, "state");
        fprintf(stderr, "job %s: state %s, %lld jobd subscribers now\n", second, st ? st : "(none)",
                wake_subscribers(q));
        free(st);
        test_dump_log(log);
        test_fail(__FILE__, __LINE__,
                  "a job submitted while jobd's pub/sub connection was "
                  "down is never claimed");
    }
    jobd_client_free(c);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    test_private_redis_stop(dir);
}

/* ---- 8. bad input never takes the daemon or other jobs down ---- */

static long vm_hwm_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *s = test_read_file(path);
    if (!s) return -1;
    char *p = strstr(s, "VmHWM:");
    long kb = p ? strtol(p + 6, NULL, 10) : -1;
    free(s);
    return kb;
}

TEST(worker_bad_input_is_contained)
{
    test_install_abort_handler();
    enum { NOOPS = 20 };
    const char *q = "wbad", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char garbage[JOBD_ID_LEN + 1], flood[JOBD_ID_LEN + 1], killed[JOBD_ID_LEN + 1],
        segv[JOBD_ID_LEN + 1], failed[JOBD_ID_LEN + 1], unknown[JOBD_ID_LEN + 1];
    char noops[NOOPS][JOBD_ID_LEN + 1];
    test_submit(c, q, "t.exec", "{\"mode\":\"garbage\"}", 1, 0, garbage);
    test_submit(c, q, "t.exec", "{\"mode\":\"flood\",\"mb\":32}", 1, 0, flood);
    test_submit(c, q, "t.exec", "{\"mode\":\"signal\",\"sig\":\"KILL\"}", 2, 0, killed);
    test_submit(c, q, "t.exec", "{\"mode\":\"signal\",\"sig\":\"SEGV\"}", 1, 0, segv);
    test_submit(c, q, "t.exec", "{\"mode\":\"fail\",\"message\":\"disk on fire\"}", 1, 0, failed);
    test_submit(c, q, "no.such.type", "{}", 5, 0, unknown);
    for (int i = 0; i < NOOPS; i++)
        test_submit(c, q, "noop", "{}", 0, 0, noops[i]);

    /* A malformed envelope, written the way enqueue.lua writes a job. */
    const char *bad = "01900000-0000-7000-8000-00000000bad1";
    char key[512], rkey[512], suffix[128], now[32];
    snprintf(suffix, sizeof suffix, "job:%s", bad);
    test_qkey(key, sizeof key, q, suffix);
    test_qkey(rkey, sizeof rkey, q, "ready");
    snprintf(now, sizeof now, "%lld", (long long)jobd_now_ms());
    const char *score = "40000000009999";
    freeReplyObject(test_cmd("HSET %s env %s state queued prio 5 max 5 score %s attempt 0 "
                             "claims 0 ready_at %s",
                             key, "{not json", score, now));
    freeReplyObject(test_cmd("ZADD %s %s %s", rkey, score, bad));

    const int total = 6 + NOOPS + 1;
    pid_t pid = test_jobd_start(log, NULL, q, "state",
                                (const char *[]){"--concurrency", "4", "--retry-base", "100ms",
                                                 "--retry-cap", "200ms", "--unknown-type-tries",
                                                 "2", "--unknown-type-delay", "50ms", NULL},
                                NULL);
    int64_t deadline = test_now_ms() + test_ms(60000);
    while (terminal_count(q) < total) {
        if (test_now_ms() >= deadline || waitpid(pid, NULL, WNOHANG) != 0) {
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "only %lld of %d jobs ended (jobd %s)", terminal_count(q),
                      total, waitpid(pid, NULL, WNOHANG) != 0 ? "exited" : "still up");
        }
        test_pause_ms(20);
    }
    /* jobd is still up, and reading 32 MiB of output did not buffer it. */
    ASSERT_EQ(waitpid(pid, NULL, WNOHANG), 0);
    long hwm = vm_hwm_kb(pid);
    printf("jobd peak RSS: %ld kB\n", hwm);
    ASSERT_GT(hwm, 0);
#if defined(__SANITIZE_ADDRESS__)
    ASSERT_LT(hwm, 1024 * 1024); /* ASan's quarantine keeps freed buffers resident */
#else
    ASSERT_LT(hwm, 24 * 1024); /* the flood is 32 MiB */
#endif
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);

    ASSERT_FIELD(q, garbage, "state", "succeeded");
    ASSERT_FIELD(q, flood, "state", "succeeded");
    ASSERT_FIELD(q, killed, "state", "dead");
    ASSERT_FIELD(q, killed, "attempt", "2");
    ASSERT_FIELD_CONTAINS(q, killed, "error", "signal");
    ASSERT_EQ(test_log_has_job(log, killed, "retry scheduled"), 1);
    ASSERT_FIELD(q, segv, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, segv, "error", "signal");
    ASSERT_FIELD(q, failed, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, failed, "error", "disk on fire"); /* stderr is attached */
    ASSERT_FIELD(q, unknown, "state", "dead");
    /* Passed on twice (another worker might have known it), never run. */
    ASSERT_FIELD_CONTAINS(q, unknown, "error", "no handler for job type \"no.such.type\"");
    ASSERT_FIELD_CONTAINS(q, unknown, "error", "no worker took it in 2 tries");
    ASSERT_FIELD(q, unknown, "attempt", "0"); /* never charged: it never ran */
    ASSERT_FIELD(q, unknown, "passed", "3");
    ASSERT_FIELD(q, bad, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, bad, "error", "malformed envelope");
    for (int i = 0; i < NOOPS; i++)
        ASSERT_FIELD(q, noops[i], "state", "succeeded");
    ASSERT_EQ(test_zcard(q, "succeeded"), NOOPS + 2);
    ASSERT_EQ(test_zcard(q, "dead"), 5);
    assert_nothing_pending(q);
    /* Every log line is still one JSON object, garbage or not. */
    FILE *f = fopen(log, "r");
    ASSERT(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) test_fail(__FILE__, __LINE__, "log line is not JSON: %s", line);
        json_decref(o);
    }
    free(line);
    fclose(f);
    jobd_client_free(c);
}

/* ---- 9. configuration errors and precedence ---- */

static int run_jobd(const char *const args[], const char *const env[], char **out, char **err)
{
    const char *argv[32] = {test_env("JOBD_BIN")};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return test_run(argv, env, NULL, out, err);
}

static json_t *find_worker(jobd_client_t *c, const char *id)
{
    json_t *ws = NULL;
    if (jobd_workers(c, &ws) < 0) return NULL;
    size_t i;
    json_t *w;
    json_array_foreach(ws, i, w)
    {
        const char *wid = json_string_value(json_object_get(w, "id"));
        if (wid && strcmp(wid, id) == 0) {
            json_incref(w);
            json_decref(ws);
            return w;
        }
    }
    json_decref(ws);
    return NULL;
}

static json_t *wait_worker(jobd_client_t *c, const char *id, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        json_t *w = find_worker(c, id);
        if (w || test_now_ms() >= deadline) return w;
        test_pause_ms(20);
    }
}

TEST(worker_config_errors_and_precedence)
{
    test_install_abort_handler();
    char *out = NULL, *err = NULL;
    const char *url = test_redis_url();

    ASSERT_EQ(run_jobd((const char *[]){"--no-such-flag", NULL}, NULL, &out, &err), 64);
    free(out);
    free(err);

    ASSERT_EQ(run_jobd((const char *[]){"--concurrency", "abc", "--check-config", NULL}, NULL, &out,
                       &err),
              78);
    ASSERT_CONTAINS(err, "concurrency");
    free(out);
    free(err);

    ASSERT_EQ(
        run_jobd((const char *[]){"--redis", url, "--concurrency", "abc", NULL}, NULL, &out, &err),
        78);
    ASSERT_CONTAINS(err, "concurrency");
    free(out);
    free(err);

    const char *badh = test_tmp_path("bad-handlers.json");
    test_write_file(badh, "{\"t.missing\": {\"exec\": [\"/nonexistent/jobd-handler\"]}}\n");
    ASSERT_EQ(
        run_jobd((const char *[]){"--handlers", badh, "--check-config", NULL}, NULL, &out, &err),
        78);
    free(out);
    free(err);
    ASSERT_EQ(run_jobd((const char *[]){"--redis", url, "--prefix", test_prefix(), "--handlers",
                                        badh, "--log-format", "json", NULL},
                       NULL, &out, &err),
              78);
    ASSERT_CONTAINS(err, "/nonexistent/jobd-handler");
    free(out);
    free(err);

    ASSERT_EQ(run_jobd((const char *[]){"--redis", url, "--prefix", test_prefix(), "--handlers",
                                        test_handlers_file(), "--queues", "a:3,b:1",
                                        "--check-config", NULL},
                       NULL, &out, &err),
              0);
    free(out);
    free(err);

    /* Precedence: a flag beats the environment, which beats the file. */
    const char *cfgfile = test_tmp_path("jobd.json");
    test_write_file(cfgfile, "{\"concurrency\": 2}\n");
    const char *env3[] = {"JOBD_CONCURRENCY=3", NULL};
    char cfgenv[700];
    snprintf(cfgenv, sizeof cfgenv, "JOBD_CONFIG=%s", cfgfile);
    const char *env_file[] = {cfgenv, NULL};
    const char *env_both[] = {"JOBD_CONCURRENCY=3", cfgenv, NULL};
    const char *log_a = test_tmp_path("a.log"), *log_b = test_tmp_path("b.log"),
               *log_c = test_tmp_path("c.log"), *log_d = test_tmp_path("d.log");
    pid_t a =
        test_jobd_start(log_a, NULL, "wcfg", "sa",
                        (const char *[]){"--worker-id", "A", "--concurrency", "5", NULL}, env3);
    pid_t b = test_jobd_start(log_b, NULL, "wcfg", "sb", (const char *[]){"--worker-id", "B", NULL},
                              env3);
    pid_t cc = test_jobd_start(log_c, NULL, "wcfg", "sc",
                               (const char *[]){"--worker-id", "C", NULL}, env_both);
    pid_t d = test_jobd_start(log_d, NULL, "wcfg", "sd", (const char *[]){"--worker-id", "D", NULL},
                              env_file);
    jobd_client_t *c = test_client();
    static const struct {
        const char *id;
        int want;
    } cases[] = {{"A", 5}, {"B", 3}, {"C", 3}, {"D", 2}};
    for (size_t i = 0; i < 4; i++) {
        json_t *w = wait_worker(c, cases[i].id, test_ms(10000));
        if (!w) test_fail(__FILE__, __LINE__, "worker %s never registered", cases[i].id);
        ASSERT_EQ(json_integer_value(json_object_get(w, "concurrency")), cases[i].want);
        json_decref(w);
    }
    pid_t pids[] = {a, b, cc, d};
    const char *logs[] = {log_a, log_b, log_c, log_d};
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(kill(pids[i], SIGTERM), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EXIT(pids[i], test_ms(15000), logs[i], 0);
    jobd_client_free(c);
}

/* ---- 10. SIGTERM drain: release with checkpoints, attempt not charged ---- */

static long long slept_ms(const char *q, const char *id)
{
    char *ck = test_hget(q, id, "checkpoint");
    json_t *o = ck ? json_loads(ck, JSON_DECODE_ANY, NULL) : NULL;
    long long v = json_is_integer(json_object_get(o, "slept_ms"))
                      ? (long long)json_integer_value(json_object_get(o, "slept_ms"))
                      : -1;
    json_decref(o);
    free(ck);
    return v;
}

TEST(worker_sigterm_drains_and_releases)
{
    test_install_abort_handler();
    enum { N = 4 };
    const char *q = "wdrain", *log_a = test_tmp_path("jobd-a.log"),
               *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    char ids[N][JOBD_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        test_submit(c, q, "sleep", "{\"ms\":60000}", 0, 0, ids[i]);

    /* A drains for 2 s, B for 1 s: B's checkpoint can only exceed A's by
     * 500 ms or more if B resumed from A's. */
    const char *flags_a[] = {"--concurrency",
                             "4",
                             "--drain-timeout",
                             "2",
                             "--kill-grace",
                             "2",
                             "--worker-id",
                             "A",
                             NULL};
    pid_t a = test_jobd_start(log_a, NULL, q, "state-a", flags_a, NULL);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(test_wait_field(q, ids[i], "state", "active", test_ms(10000)), 0);

    /* Exit 0 before the drain timeout plus the kill grace (4 s; generous
     * deadline for a loaded machine). */
    ASSERT_EQ(kill(a, SIGTERM), 0);
    ASSERT_EXIT(a, test_ms(8000), log_a, 0);
    ASSERT(test_count_log(log_a, "draining") > 0);
    ASSERT_EQ(test_zcard(q, "ready"), N);
    ASSERT_EQ(test_zcard(q, "active"), 0);
    long long first[N];
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "queued");
        ASSERT_FIELD(q, ids[i], "attempt", "0"); /* not charged */
        first[i] = slept_ms(q, ids[i]);          /* the checkpoint reached Redis */
        ASSERT_GE(first[i], 0);
    }

    /* A second jobd resumes them from their checkpoints. */
    const char *flags_b[] = {"--concurrency",
                             "4",
                             "--drain-timeout",
                             "1",
                             "--kill-grace",
                             "2",
                             "--worker-id",
                             "B",
                             NULL};
    pid_t b = test_jobd_start(log_b, NULL, q, "state-b", flags_b, NULL);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(test_wait_field(q, ids[i], "state", "active", test_ms(10000)), 0);
        ASSERT_FIELD(q, ids[i], "worker", "B");
        ASSERT_FIELD(q, ids[i], "attempt", "1");
    }
    ASSERT_EQ(kill(b, SIGTERM), 0);
    ASSERT_EXIT(b, test_ms(6000), log_b, 0);
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "queued");
        ASSERT_FIELD(q, ids[i], "attempt", "0");
        /* B started from A's checkpoint, not from zero. */
        ASSERT_GE(slept_ms(q, ids[i]), first[i] + 500);
    }
    for (int i = 0; i < N; i++)
        ASSERT_EQ(jobd_cancel(c, ids[i], NULL), 0);
    jobd_client_free(c);
}
