/* test_retention.c - finished records go once past their retention, black
 * box: jobd's reaper deletes succeeded job records (and their ids in the
 * succeeded set) older than the configured retention, and keeps younger
 * ones and unfinished ones. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static long long job_exists(const char *queue, const char *id)
{
    char key[2600], suffix[2000];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    test_qkey(key, sizeof key, queue, suffix);
    redisReply *r = test_rcmd("EXISTS %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

TEST(retention_reaper_deletes_old_succeeded_records)
{
    enum { N = 50 };
    const char *q = "rt", *log = test_tmp_path("jobd.log"), *cfg = test_tmp_path("config.json");
    /* Retention 1 s for succeeded records, a week for dead ones. */
    test_write_file(cfg, "{\"retention\": {\"succeeded\": 1, \"dead\": 604800}}");
    jobd_client_t *c = test_client();
    char ids[N][JOBD_ID_LEN + 1], dead[JOBD_ID_LEN + 1], later[JOBD_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        test_submit(c, q, "noop", "{}", 0, 0, ids[i]);
    test_submit(c, q, "fail", "{\"message\":\"kept\"}", 1, 0, dead);

    const char *flags[] = {"--config", cfg, "--lease", "3", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, "state", flags, NULL);
    CHECK_OR_DUMP(test_wait_zcard_ge(q, "succeeded", N, test_ms(10000)) == 0, log,
                  "jobs did not run");
    /* The reaper runs every ~1 s (lease/3): the records go once 1 s old. */
    int64_t deadline = test_now_ms() + test_ms(15000);
    while (test_zcard(q, "succeeded") != 0) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "succeeded records were never trimmed");
        test_pause_ms(50);
    }
    for (int i = 0; i < N; i++)
        ASSERT_EQ(job_exists(q, ids[i]), 0);
    /* A dead record stays (its retention is a week). */
    ASSERT_EQ(job_exists(q, dead), 1);
    ASSERT_FIELD(q, dead, "state", "dead");
    ASSERT_EQ(test_zcard(q, "dead"), 1);
    /* A job finished just now is still there to be read. */
    test_submit(c, q, "noop", "{}", 0, 0, later);
    CHECK_OR_DUMP(test_wait_field(q, later, "state", "succeeded", test_ms(10000)) == 0, log,
                  "the later job did not run");
    ASSERT_EQ(job_exists(q, later), 1);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}
