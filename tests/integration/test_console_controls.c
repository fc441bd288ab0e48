/* test_console_controls.c - the queue controls and the per-attempt history
 * against a real redis-server (and a real jobd where claims matter): pause
 * stops claims while in-flight jobs run on and resume restarts them; purge
 * and delete remove exactly what they say; every attempt's end (ack, fail,
 * release, expired lease) lands in the job's history, bounded to 20. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static void stop_jobd(pid_t pid, const char *log)
{
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
}

/* Runs jobctl with this test's Redis and prefix; returns its exit status
 * and its stdout in *out (malloc'd; may be NULL). */
static int jobctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                  const char *a5)
{
    const char *argv[] = {test_env("JOBCTL_BIN"),
                          "--redis",
                          test_redis_url(),
                          "--prefix",
                          test_prefix(),
                          a1,
                          a2,
                          a3,
                          a4,
                          a5,
                          NULL};
    char *err = NULL;
    int st = test_run(argv, NULL, NULL, out, &err);
    free(err);
    return st;
}

static long long key_exists(const char *queue, const char *suffix)
{
    char key[1024];
    test_qkey(key, sizeof key, queue, suffix);
    return test_cmd_int("EXISTS %s", key);
}

static long long hist_len(const char *queue, const char *id)
{
    char key[1024], suffix[128];
    snprintf(suffix, sizeof suffix, "hist:%s", id);
    test_qkey(key, sizeof key, queue, suffix);
    return test_cmd_int("LLEN %s", key);
}

/* Pause with a job in flight: it runs on to success, jobs submitted after
 * the pause stay queued while the same jobd serves another queue, stats
 * say paused, and resume gets them run. */
TEST(console_pause_stops_claims_resume_restarts)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, NULL, "pq,pb", "state", NULL, NULL);
    jobd_client_t *c = test_client();
    char slow[JOBD_ID_LEN + 1], a[JOBD_ID_LEN + 1], b[JOBD_ID_LEN + 1], other[JOBD_ID_LEN + 1];
    test_submit(c, "pq", "sleep", "{\"ms\":1500}", 0, 0, slow);
    CHECK_OR_DUMP(test_wait_field("pq", slow, "state", "active", test_ms(10000)) == 0, log,
                  "the sleep job did not start");

    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "pause", "pq", "--json", NULL, NULL), 0);
    ASSERT_CONTAINS(out, "\"paused\":true");
    ASSERT_CONTAINS(out, "\"changed\":true");
    free(out);
    ASSERT_EQ(jobctl(&out, "pause", "pq", NULL, NULL, NULL), 0);
    ASSERT_CONTAINS(out, "was paused already");
    free(out);

    test_submit(c, "pq", "noop", NULL, 0, 0, a);
    test_submit(c, "pq", "noop", NULL, 0, 0, b);
    /* jobd is claiming: another queue's job runs, and the in-flight one
     * finishes. */
    test_submit(c, "pb", "noop", NULL, 0, 0, other);
    CHECK_OR_DUMP(test_wait_field("pb", other, "state", "succeeded", test_ms(10000)) == 0, log,
                  "the other queue's job did not run");
    CHECK_OR_DUMP(test_wait_field("pq", slow, "state", "succeeded", test_ms(10000)) == 0, log,
                  "the in-flight job did not run on: %s", test_hget("pq", slow, "state"));
    /* Another round of claims after the slot came free: still nothing. */
    char other2[JOBD_ID_LEN + 1];
    test_submit(c, "pb", "noop", NULL, 0, 0, other2);
    ASSERT_EQ(test_wait_field("pb", other2, "state", "succeeded", test_ms(10000)), 0);
    ASSERT_FIELD("pq", a, "state", "queued");
    ASSERT_FIELD("pq", b, "state", "queued");
    ASSERT_EQ(test_zcard("pq", "ready"), 2);

    ASSERT_EQ(jobctl(&out, "stats", "--json", NULL, NULL, NULL), 0);
    json_t *st = json_loads(out, 0, NULL);
    free(out);
    ASSERT(json_is_true(json_object_get(json_object_get(st, "pq"), "paused")));
    ASSERT(json_is_false(json_object_get(json_object_get(st, "pb"), "paused")));
    json_decref(st);
    ASSERT_EQ(jobctl(&out, "stats", NULL, NULL, NULL, NULL), 0);
    ASSERT_CONTAINS(out, "PAUSED");
    free(out);

    ASSERT_EQ(jobctl(&out, "resume", "pq", NULL, NULL, NULL), 0);
    ASSERT_CONTAINS(out, "queue pq resumed");
    free(out);
    /* The resume's wake-up gets them claimed (not the 5 s safety net:
     * bounded at 4 s here would still pass, so no timing is asserted). */
    CHECK_OR_DUMP(test_wait_field("pq", a, "state", "succeeded", test_ms(10000)) == 0, log,
                  "not resumed: %s", test_hget("pq", a, "state"));
    ASSERT_EQ(test_wait_field("pq", b, "state", "succeeded", test_ms(10000)), 0);
    ASSERT_EQ(key_exists("pq", "paused"), 0);

    /* Usage errors before anything is written. */
    ASSERT_EQ(jobctl(NULL, "pause", NULL, NULL, NULL, NULL), 2);
    ASSERT_EQ(jobctl(NULL, "pause", "bad{name}", NULL, NULL, NULL), 2);
    jobd_client_free(c);
    stop_jobd(pid, log);
}

/* Claims one job of queue (no jobd running) and returns its token. */
static void claim_one(jobd_client_t *c, const char *queue, const char *worker, int64_t lease_ms,
                      char *id, char *token)
{
    jobd_claim_t cl;
    memset(&cl, 0, sizeof cl);
    ASSERT_EQ(jobd_claim(c, queue, worker, lease_ms, &cl, 1), 1);
    snprintf(id, JOBD_ID_LEN + 1, "%s", cl.id);
    snprintf(token, 48, "%s", cl.token);
    jobd_claim_clear(&cl);
}

TEST(console_purge_and_delete_exact)
{
    jobd_client_t *c = test_client();
    const char *q = "pg";
    char dead[3][JOBD_ID_LEN + 1], ok[2][JOBD_ID_LEN + 1], queued[2][JOBD_ID_LEN + 1];
    char id[JOBD_ID_LEN + 1], token[48];
    /* Three dead (one with an idempotency key), two succeeded, two queued,
     * one active. */
    for (int i = 0; i < 3; i++) {
        jobd_job_spec_t s;
        jobd_job_spec_init(&s);
        s.queue = q;
        s.type = "x";
        if (i == 0) s.idempotency_key = "dead-key";
        ASSERT_EQ(jobd_submit(c, &s, dead[i], NULL), 0);
        claim_one(c, q, "w-test", 60000, id, token);
        ASSERT_STR_EQ(id, dead[i]);
        ASSERT_EQ(jobd_fail(c, q, id, token, "boom", -1), JOBD_FAILED_DEAD);
    }
    for (int i = 0; i < 2; i++) {
        test_submit(c, q, "x", NULL, 0, 0, ok[i]);
        claim_one(c, q, "w-test", 60000, id, token);
        ASSERT_EQ(jobd_ack(c, q, id, token, "{\"n\":1}"), 0);
    }
    char active[JOBD_ID_LEN + 1];
    test_submit(c, q, "x", NULL, 0, 0, active);
    claim_one(c, q, "w-test", 60000, id, token);
    for (int i = 0; i < 2; i++)
        test_submit(c, q, "x", NULL, 0, 0, queued[i]);
    char ik[256];
    snprintf(ik, sizeof ik, "idem:%s", "dead-key");
    ASSERT_EQ(key_exists(q, ik), 1);
    ASSERT_EQ(hist_len(q, dead[0]), 1);

    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "purge", q, "--state", "dead", "--json"), 0);
    ASSERT_CONTAINS(out, "\"deleted\":3");
    free(out);
    ASSERT_EQ(test_zcard(q, "dead"), 0);
    for (int i = 0; i < 3; i++) {
        char suffix[128];
        snprintf(suffix, sizeof suffix, "job:%s", dead[i]);
        ASSERT_EQ(key_exists(q, suffix), 0);
        ASSERT_EQ(hist_len(q, dead[i]), 0);
    }
    ASSERT_EQ(key_exists(q, ik), 0);
    /* Nothing else moved. */
    ASSERT_EQ(test_zcard(q, "succeeded"), 2);
    ASSERT_EQ(test_zcard(q, "ready"), 2);
    ASSERT_EQ(test_zcard(q, "active"), 1);
    ASSERT_FIELD(q, ok[0], "state", "succeeded");
    ASSERT_FIELD(q, queued[1], "state", "queued");

    ASSERT_EQ(jobd_purge(c, q, JOBD_QUEUED), 2);
    ASSERT_EQ(test_zcard(q, "ready"), 0);
    ASSERT_EQ(test_zcard(q, "succeeded"), 2);
    ASSERT_EQ(jobctl(&out, "purge", q, "--state", "succeeded", NULL), 0);
    ASSERT_CONTAINS(out, "2 succeeded jobs of pg deleted");
    free(out);
    ASSERT_EQ(test_zcard(q, "succeeded"), 0);
    ASSERT_EQ(test_stat_counter(q, "purged"), 7);
    /* Active jobs are not purged; a bad state is a usage error. */
    ASSERT_EQ(jobctl(NULL, "purge", q, "--state", "active", NULL), 2);
    ASSERT_EQ(jobctl(NULL, "purge", q, "--state", "nope", NULL), 2);
    ASSERT_EQ(jobctl(NULL, "purge", q, NULL, NULL, NULL), 2);
    ASSERT_EQ(test_zcard(q, "active"), 1);

    /* delete: an active job is refused (exit 1), a missing one is 3, a
     * queued one goes with its record and history. */
    ASSERT_EQ(jobctl(NULL, "delete", active, NULL, NULL, NULL), 1);
    ASSERT_FIELD(q, active, "state", "active");
    ASSERT_EQ(jobd_release(c, q, active, token, NULL), 0);
    ASSERT_EQ(hist_len(q, active), 1);
    ASSERT_EQ(jobctl(&out, "delete", active, "--json", NULL, NULL), 0);
    ASSERT_CONTAINS(out, "\"deleted\":true");
    free(out);
    ASSERT_EQ(test_zcard(q, "ready"), 0);
    ASSERT_EQ(hist_len(q, active), 0);
    char suffix[128];
    snprintf(suffix, sizeof suffix, "job:%s", active);
    ASSERT_EQ(key_exists(q, suffix), 0);
    ASSERT_EQ(jobctl(NULL, "delete", active, NULL, NULL, NULL), 3);
    ASSERT_EQ(jobctl(NULL, "delete", "no/such", NULL, NULL, NULL), 2);
    jobd_client_free(c);
}

/* Every way an attempt ends is recorded, with worker, times, outcome and
 * the error's tail; the history is bounded and goes with the job. */
TEST(console_history_records_each_attempt)
{
    jobd_client_t *c = test_client();
    const char *q = "hy";
    char job[JOBD_ID_LEN + 1], id[JOBD_ID_LEN + 1], token[48];
    test_submit(c, q, "x", NULL, 5, 0, job);
    /* 1: fails (retry), with a 5,000-byte error whose end matters. */
    claim_one(c, q, "w-one", 60000, id, token);
    char *err = malloc(5001);
    memset(err, 'e', 5000);
    memcpy(err + 4990, "THE-END-42", 10);
    err[5000] = '\0';
    ASSERT_EQ(jobd_fail(c, q, id, token, err, 0), JOBD_FAILED_RETRY);
    free(err);
    /* Wait for the retry to fall due (delay 0), then 2: released. */
    int64_t deadline = test_now_ms() + test_ms(5000);
    jobd_claim_t cl;
    int n;
    while ((n = jobd_claim(c, q, "w-two", 60000, &cl, 1)) == 0 && test_now_ms() < deadline)
        test_pause_ms(10);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(jobd_release(c, q, cl.id, cl.token, "{\"at\":3}"), 0);
    jobd_claim_clear(&cl);
    /* 3: its lease expires (a 1 ms lease) and the reaper takes it. */
    claim_one(c, q, "w-three", 1, id, token);
    jobd_reap_t rp = {0};
    deadline = test_now_ms() + test_ms(5000);
    while (rp.requeued == 0 && test_now_ms() < deadline) {
        ASSERT_EQ(jobd_reap(c, q, &rp), 0);
        if (!rp.requeued) test_pause_ms(10);
    }
    ASSERT_EQ(rp.requeued, 1);
    /* 4: succeeds. */
    claim_one(c, q, "w-four", 60000, id, token);
    ASSERT_EQ(jobd_ack(c, q, id, token, NULL), 0);

    json_t *h = NULL;
    ASSERT_EQ(jobd_history(c, job, &h), 0);
    ASSERT_EQ(json_array_size(h), 4);
    static const char *const outcomes[] = {"failed", "released", "lease_expired", "succeeded"};
    static const char *const workers[] = {"w-one", "w-two", "w-three", "w-four"};
    static const int attempts[] = {1, 2, 2, 3}; /* a release gives its attempt back */
    for (int i = 0; i < 4; i++) {
        const json_t *e = json_array_get(h, (size_t)i);
        ASSERT_STR_EQ(json_string_value(json_object_get(e, "outcome")), outcomes[i]);
        ASSERT_STR_EQ(json_string_value(json_object_get(e, "worker")), workers[i]);
        ASSERT_EQ(json_integer_value(json_object_get(e, "attempt")), attempts[i]);
        ASSERT(json_is_string(json_object_get(e, "started_at")));
        ASSERT(json_is_string(json_object_get(e, "ended_at")));
        ASSERT(json_number_value(json_object_get(e, "duration_s")) >= 0);
    }
    const char *e0 = json_string_value(json_object_get(json_array_get(h, 0), "error"));
    ASSERT_EQ(strlen(e0), 2048);
    ASSERT_CONTAINS(e0, "THE-END-42");
    ASSERT_CONTAINS(json_string_value(json_object_get(json_array_get(h, 2), "error")),
                    "lease expired");
    ASSERT(json_is_null(json_object_get(json_array_get(h, 3), "error")));
    json_decref(h);

    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "history", job, NULL, NULL, NULL), 0);
    ASSERT_CONTAINS(out, "lease_expired");
    ASSERT_CONTAINS(out, "w-three");
    free(out);
    ASSERT_EQ(jobctl(NULL, "history", "nosuchjob", NULL, NULL, NULL), 3);

    /* Bounded: 25 more releases keep the last 20. */
    char many[JOBD_ID_LEN + 1];
    test_submit(c, q, "x", NULL, 0, 0, many);
    for (int i = 0; i < 25; i++) {
        claim_one(c, q, "w-loop", 60000, id, token);
        ASSERT_EQ(jobd_release(c, q, id, token, NULL), 0);
    }
    ASSERT_EQ(hist_len(q, many), 20);

    /* A finished job's history goes with its record (retention trim). */
    ASSERT_EQ(jobd_delete(c, job), 0);
    ASSERT_EQ(hist_len(q, job), 0);
    jobd_client_free(c);
}

/* A real jobd writes the history too: the built-in `fail` handler with
 * max_attempts 2 leaves a failed and a dead attempt, with jobd's worker id
 * and the handler's message. */
TEST(console_history_from_jobd)
{
    const char *log = test_tmp_path("jobd.log");
    const char *extra[] = {"--worker-id", "w-hist", NULL};
    pid_t pid = test_jobd_start(log, NULL, "hj", "state", extra, NULL);
    jobd_client_t *c = test_client();
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "hj";
    s.type = "fail";
    s.payload_json = "{\"message\":\"disk on fire\"}";
    s.max_attempts = 2;
    s.retry_base_ms = 10;
    s.retry_cap_ms = 10;
    char id[JOBD_ID_LEN + 1];
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
    CHECK_OR_DUMP(test_wait_field("hj", id, "state", "dead", test_ms(15000)) == 0, log,
                  "not dead: %s", test_hget("hj", id, "state"));
    json_t *h = NULL;
    ASSERT_EQ(jobd_history(c, id, &h), 0);
    ASSERT_EQ(json_array_size(h), 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 0), "outcome")), "failed");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 1), "outcome")), "dead");
    for (size_t i = 0; i < 2; i++) {
        const json_t *e = json_array_get(h, i);
        ASSERT_STR_EQ(json_string_value(json_object_get(e, "worker")), "w-hist");
        ASSERT_EQ(json_integer_value(json_object_get(e, "attempt")), (int64_t)i + 1);
        ASSERT_CONTAINS(json_string_value(json_object_get(e, "error")), "disk on fire");
    }
    json_decref(h);
    jobd_client_free(c);
    stop_jobd(pid, log);
}
