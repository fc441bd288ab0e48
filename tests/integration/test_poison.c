/* test_poison.c - poison detection by missing progress, and jobs of a type
 * a worker has no handler for (rolling deploys).
 *
 * A job with a checkpoint whose last N attempts (--no-progress-attempts,
 * default 3) each ended without a new one goes dead with "no progress in N
 * attempts" instead of burning all its attempts; one that checkpoints
 * something new every attempt keeps them all. Both failure paths count:
 * fail.lua (the handler failed) and reap.lua (its lease expired). A worker
 * that claims a job of a type it does not know hands it back uncharged, so
 * that a worker that knows the type runs it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static pid_t start(const char *q, const char *log, const char *const extra[])
{
    return test_jobd_start(log, NULL, q, "state", extra, NULL);
}

TEST(poison_no_progress_goes_dead)
{
    const char *q = "pq", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    /* The same checkpoint every attempt: attempt 1 made progress (it wrote
     * the first), attempts 2, 3 and 4 did not. */
    test_submit(c, q, "t.exec", "{\"mode\":\"ckfail\"}", 10, 0, id);
    pid_t pid =
        start(q, log, (const char *[]){"--retry-base", "10ms", "--retry-cap", "20ms", NULL});
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "dead", test_ms(30000)) == 0, log, "not dead");
    ASSERT_FIELD(q, id, "attempt", "4");
    ASSERT_FIELD_CONTAINS(q, id, "error", "no progress in 3 attempts");
    ASSERT_FIELD_CONTAINS(q, id, "error", "status 3"); /* the last failure says why */
    ASSERT_FIELD(q, id, "checkpoint", "{\"n\":1}");
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

TEST(poison_progress_keeps_attempts)
{
    const char *q = "pq2", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], off[JOBD_ID_LEN + 1];
    /* A new checkpoint every attempt: all 6 attempts are used. */
    test_submit(c, q, "t.exec", "{\"mode\":\"ckfail\",\"advance\":true}", 6, 0, id);
    pid_t pid =
        start(q, log, (const char *[]){"--retry-base", "10ms", "--retry-cap", "20ms", NULL});
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "dead", test_ms(30000)) == 0, log, "not dead");
    ASSERT_FIELD(q, id, "attempt", "6");
    char *e = test_hget(q, id, "error");
    ASSERT(e && !strstr(e, "no progress"));
    free(e);
    ASSERT_FIELD(q, id, "checkpoint", "{\"attempt\":6}");
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);

    /* --no-progress-attempts 0 turns it off: the same job as in the test
     * above burns all its attempts. */
    test_submit(c, q, "t.exec", "{\"mode\":\"ckfail\"}", 5, 0, off);
    pid = start(q, log,
                (const char *[]){"--retry-base", "10ms", "--retry-cap", "20ms",
                                 "--no-progress-attempts", "0", NULL});
    CHECK_OR_DUMP(test_wait_field(q, off, "state", "dead", test_ms(30000)) == 0, log, "not dead");
    ASSERT_FIELD(q, off, "attempt", "5");
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* Claims the job with a lease of 1 ms, optionally checkpoints, lets the
 * lease expire and reaps it. Returns the job's state afterwards. */
static char *claim_and_expire(jobd_client_t *c, const char *q, const char *id, const char *ckpt)
{
    jobd_claim_t cl[1];
    ASSERT_EQ(jobd_claim(c, q, "w-poison", 1000, cl, 1), 1);
    ASSERT_STR_EQ(cl[0].id, id);
    if (ckpt) ASSERT_EQ(jobd_checkpoint(c, q, id, cl[0].token, ckpt, -1), 0);
    jobd_claim_clear(&cl[0]);
    /* Expire the lease now instead of waiting for it. */
    char key[512];
    test_qkey(key, sizeof key, q, "active");
    freeReplyObject(test_cmd("ZADD %s 1 %s", key, id));
    jobd_reap_t r;
    ASSERT_EQ(jobd_reap(c, q, &r), 0);
    return test_hget(q, id, "state");
}

TEST(poison_counts_expired_leases)
{
    const char *q = "pq3";
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "t.exec", "{}", 10, 0, id);
    char *st = claim_and_expire(c, q, id, "{\"n\":1}"); /* progress */
    ASSERT_STR_EQ(st, "queued");
    free(st);
    for (int i = 0; i < 2; i++) { /* no progress, twice */
        st = claim_and_expire(c, q, id, NULL);
        ASSERT_STR_EQ(st, "queued");
        free(st);
    }
    st = claim_and_expire(c, q, id, "{\"n\":1}"); /* the same checkpoint again: none either */
    ASSERT_STR_EQ(st, "dead");
    free(st);
    ASSERT_FIELD(q, id, "attempt", "4");
    ASSERT_FIELD_CONTAINS(q, id, "error", "no progress in 3 attempts");
    jobd_client_free(c);
}

TEST(passon_unknown_type_reaches_a_worker_that_knows_it)
{
    const char *q = "mixed", *log_old = test_tmp_path("old.log"),
               *log_new = test_tmp_path("new.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "t.new", "{}", 0, 0, id);
    /* The old worker does not know t.new: it passes the job on, uncharged. */
    pid_t old = test_jobd_start(log_old, NULL, q, "old",
                                (const char *[]){"--worker-id", "old", "--unknown-type-tries", "50",
                                                 "--unknown-type-delay", "100ms", NULL},
                                NULL);
    /* (It may be passed on again meanwhile: once is what counts here.) */
    CHECK_OR_DUMP(test_wait_field_set(q, id, "passed", test_ms(20000)) == 0, log_old,
                  "not passed on");
    ASSERT_FIELD(q, id, "waiting", "no handler for job type \"t.new\"");
    /* The new one does (a deploy in progress: both run). */
    const char *h = test_tmp_path("new.json");
    test_write_file(h, "{\"t.new\": {\"builtin\": \"noop\"}}");
    pid_t nw = test_jobd_start(log_new, NULL, q, "new",
                               (const char *[]){"--worker-id", "new", "--handlers", h, NULL}, NULL);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(20000)) == 0, log_new,
                  "not run by the worker that knows the type");
    ASSERT_FIELD(q, id, "worker", "new");
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_GE(test_log_has_job(log_old, id, "no handler for job type"), 1);
    kill(old, SIGTERM);
    kill(nw, SIGTERM);
    ASSERT_EXIT(old, test_ms(15000), log_old, 0);
    ASSERT_EXIT(nw, test_ms(15000), log_new, 0);
    jobd_client_free(c);
}

TEST(passon_waiting_job_shows_why)
{
    const char *q = "mixed2", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "t.later", "{}", 0, 0, id);
    pid_t pid = test_jobd_start(log, NULL, q, "state",
                                (const char *[]){"--unknown-type-delay", "1h", NULL}, NULL);
    CHECK_OR_DUMP(test_wait_field(q, id, "passed", "1", test_ms(20000)) == 0, log, "not passed on");
    json_t *st = NULL;
    ASSERT_EQ(jobd_status(c, id, &st), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "state")), "scheduled");
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "waiting")),
                  "no handler for job type \"t.later\"");
    ASSERT_EQ(json_integer_value(json_object_get(st, "attempt")), 0);
    json_decref(st);
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}
