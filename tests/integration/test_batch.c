/* test_batch.c - named batches across queues: counts and progress, and the
 * completion job enqueued exactly once, also when the worker that finished
 * the last job is killed with SIGKILL before it could complete the batch,
 * and when several workers complete it at once. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static int jobctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                  const char *a5, const char *a6, const char *a7)
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
                          a6,
                          a7,
                          NULL};
    return test_run(argv, NULL, NULL, out, NULL);
}

static json_t *batch_status(const char *name)
{
    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "batch", "status", name, "--json", NULL, NULL, NULL), 0);
    json_t *st = json_loads(out, 0, NULL);
    ASSERT(st != NULL);
    free(out);
    return st;
}

static pid_t worker(const char *id, const char *log)
{
    char state[64];
    snprintf(state, sizeof state, "state-%s", id);
    return test_jobd_start(log, NULL, "ba,bb", state, (const char *[]){"--worker-id", id, NULL},
                           NULL);
}

TEST(batch_completion_once_under_kill9)
{
    enum { NA = 15, NB = 5 };
    /* 15 jobs in ba, 5 in bb, and one in bb that ends dead. */
    char *lines = malloc(64 * 1024);
    size_t len = 0;
    for (int i = 0; i < NA; i++)
        len += (size_t)sprintf(lines + len, "{\"queue\":\"ba\",\"type\":\"noop\"}\n");
    for (int i = 0; i < NB; i++)
        len += (size_t)sprintf(lines + len, "{\"queue\":\"bb\",\"type\":\"noop\"}\n");
    len +=
        (size_t)sprintf(lines + len, "{\"queue\":\"bb\",\"type\":\"fail\",\"max_attempts\":1}\n");
    const char *file = test_tmp_path("batch.jsonl");
    test_write_file(file, lines);
    free(lines);
    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "submit", "--batch", file, "--name", "nightly", "--on-complete",
                     "batch.done:bdone"),
              0);
    free(out);
    /* The name is used once. */
    ASSERT_EQ(jobctl(NULL, "submit", "--batch", file, "--name", "nightly", NULL, NULL), 1);
    json_t *st = batch_status("nightly");
    ASSERT_EQ(json_integer_value(json_object_get(st, "total")), NA + NB + 1);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "counts"), "queued")),
              NA + NB + 1);
    ASSERT(json_is_false(json_object_get(st, "done")));
    json_decref(st);

    /* Worker A runs the whole batch and is killed as soon as the last job
     * ended: its next batch round (every 5 s) never comes. */
    const char *log_a = test_tmp_path("a.log");
    pid_t a = worker("a", log_a);
    int64_t deadline = test_now_ms() + test_ms(30000);
    for (;;) {
        st = batch_status("nightly");
        int done = json_is_true(json_object_get(st, "done"));
        json_decref(st);
        if (done) break;
        CHECK_OR_DUMP(test_now_ms() < deadline, log_a, "batch did not end");
        test_pause_ms(20);
    }
    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);

    /* Two workers come up at once; both find the batch done. */
    const char *log_b = test_tmp_path("b.log"), *log_c = test_tmp_path("c.log");
    pid_t b = worker("b", log_b), c = worker("c", log_c);
    CHECK_OR_DUMP(test_wait_zcard_ge("bdone", "ready", 1, test_ms(30000)) == 0, log_b,
                  "no completion job");
    /* A completion that was made but not forgotten (a worker killed right
     * after complete.lua): put the name back and wait for a round to find
     * it again. */
    char key[512];
    test_qkey(key, sizeof key, "bb", "batches:done");
    freeReplyObject(test_cmd("SADD %s nightly", key));
    deadline = test_now_ms() + test_ms(30000);
    while (test_cmd_int("SISMEMBER %s nightly", key) == 1) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log_b, "the batch was not looked at again");
        test_pause_ms(50);
    }
    ASSERT_EQ(test_zcard("bdone", "ready"), 1); /* exactly once */

    st = batch_status("nightly");
    ASSERT(json_is_true(json_object_get(st, "done")));
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "counts"), "succeeded")),
              NA + NB);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "counts"), "dead")), 1);
    const char *cid = json_string_value(json_object_get(st, "completion"));
    ASSERT(cid != NULL);
    /* Its payload is the summary: counts by state and every id. */
    char *env = test_hget("bdone", cid, "env");
    json_t *e = json_loads(env, 0, NULL);
    json_t *p = json_object_get(e, "payload");
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "type")), "batch.done");
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "batch")), "nightly");
    ASSERT_EQ(json_integer_value(json_object_get(p, "total")), NA + NB + 1);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(p, "counts"), "dead")), 1);
    ASSERT_EQ(json_array_size(json_object_get(p, "ids")), NA + NB + 1);
    json_decref(e);
    free(env);
    json_decref(st);

    /* wait: a dead job makes it exit 1, as `jobctl wait` does. */
    ASSERT_EQ(jobctl(NULL, "batch", "wait", "nightly", NULL, NULL, NULL, NULL), 1);
    kill(b, SIGTERM);
    kill(c, SIGTERM);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);
    ASSERT_EXIT(c, test_ms(15000), log_c, 0);
}

TEST(batch_status_wait_exit_codes)
{
    const char *file = test_tmp_path("b.jsonl");
    test_write_file(file, "{\"queue\":\"nobody\",\"type\":\"noop\"}\n");
    ASSERT_EQ(jobctl(NULL, "submit", "--batch", file, "--name", "idle", NULL, NULL), 0);
    ASSERT_EQ(jobctl(NULL, "batch", "wait", "idle", "--timeout", "300ms", NULL, NULL), 4);
    ASSERT_EQ(jobctl(NULL, "batch", "status", "nosuch", NULL, NULL, NULL, NULL), 3);
    ASSERT_EQ(jobctl(NULL, "submit", "--batch", file, "--on-complete", "x", NULL, NULL), 2);
    char *out = NULL;
    ASSERT_EQ(jobctl(&out, "batch", "status", "idle", NULL, NULL, NULL, NULL), 0);
    ASSERT_CONTAINS(out, "0/1 ended");
    free(out);
}
