/* Tests against real Redis Sentinel (tests/harness/sentinel-fixture.sh: a
 * primary on JOBD_TEST_SENTINEL_BASE, its replica on +1, three Sentinels on
 * +2..+4 watching "mymaster"): the primary is killed in the middle of a
 * batch; jobd and jobctl follow the new primary and no job is lost. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static int base(void)
{
    return atoi(test_env("JOBD_TEST_SENTINEL_BASE"));
}

static const char *sentinel_url(void)
{
    static char url[200];
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/mymaster",
             base() + 2, base() + 3, base() + 4);
    return url;
}

/* The port of the primary the Sentinels name now (0: none). */
static int primary_port(void)
{
    for (int i = 2; i <= 4; i++) {
        redisContext *rc = redisConnect("127.0.0.1", base() + i);
        if (!rc || rc->err) {
            if (rc) redisFree(rc);
            continue;
        }
        redisReply *r = redisCommand(rc, "SENTINEL get-master-addr-by-name mymaster");
        int port =
            r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atoi(r->element[1]->str) : 0;
        if (r) freeReplyObject(r);
        redisFree(rc);
        if (port) return port;
    }
    return 0;
}

/* A command on the node at port; NULL if it is down. */
static redisReply *on(int port, const char *fmt, const char *arg)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    if (!rc || rc->err) {
        if (rc) redisFree(rc);
        return NULL;
    }
    redisReply *r = redisCommand(rc, fmt, arg);
    redisFree(rc);
    return r;
}

static long long zcard_at(int port, const char *set)
{
    char key[300];
    snprintf(key, sizeof key, "%s:{sq}:%s", test_prefix(), set);
    redisReply *r = on(port, "ZCARD %s", key);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return v;
}

static int ctl(char **out, char **err, const char *stdin_text, const char *a, const char *b,
               const char *c)
{
    const char *argv[] = {test_env("JOBCTL_BIN"),
                          "--redis",
                          sentinel_url(),
                          "--prefix",
                          test_prefix(),
                          a,
                          b,
                          c,
                          NULL};
    return test_run(argv, NULL, stdin_text, out, err);
}

TEST(sentinel_primary_killed_mid_batch)
{
    int old = primary_port();
    ASSERT_EQ(old, base());
    size_t cap = 800 * 80 + 1, len = 0;
    char *batch = malloc(cap);
    for (int i = 0; i < 800; i++)
        len += (size_t)snprintf(batch + len, cap - len,
                                "{\"queue\":\"sq\",\"type\":\"sleep\",\"payload\":{\"ms\":10}}\n");
    char *out, *err;
    ASSERT_EQ(ctl(&out, &err, batch, "submit", "--batch", "-"), 0);
    free(batch);
    free(out);
    free(err);
    /* Every job on the replica too: the kill below loses no submission. */
    redisReply *r = on(old, "WAIT 1 %s", "5000");
    ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);

    const char *log = test_tmp_path("jobd.log");
    const char *const flags[] = {"--concurrency", "4", "--lease", "3", NULL};
    pid_t pid = test_jobd_start(log, sentinel_url(), "sq", "st", flags, NULL);
    int64_t end = test_now_ms() + test_ms(30000);
    while (zcard_at(old, "succeeded") < 100 && test_now_ms() < end)
        test_pause_ms(20);
    ASSERT_GE(zcard_at(old, "succeeded"), 100);

    /* Kill the primary (SIGKILL, by its pid). */
    char pidfile[600];
    snprintf(pidfile, sizeof pidfile, "%s/%d/redis.pid", test_env("JOBD_TEST_SENTINEL_DIR"), old);
    char *pids = test_read_file(pidfile);
    ASSERT(pids != NULL);
    ASSERT_EQ(kill((pid_t)atoi(pids), SIGKILL), 0);
    free(pids);

    /* The Sentinels promote the replica; jobd follows it. */
    int now = 0;
    end = test_now_ms() + test_ms(30000);
    while (((now = primary_port()) == old || now == 0) && test_now_ms() < end)
        test_pause_ms(50);
    ASSERT_EQ(now, base() + 1);
    char want[128];
    snprintf(want, sizeof want, "Redis ready at 127.0.0.1:%d", now);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(30000), want, NULL) == 0, log,
                  "jobd did not follow the new primary");
    ASSERT_GE(test_count_log(log, "moved from"), 1);

    /* No job lost: all 800 end succeeded on the new primary (a lease whose
     * ack was lost with the old primary is reaped and run again). */
    end = test_now_ms() + test_ms(60000);
    while (zcard_at(now, "succeeded") < 800 && test_now_ms() < end)
        test_pause_ms(50);
    CHECK_OR_DUMP(zcard_at(now, "succeeded") == 800, log, "%lld of 800 succeeded",
                  zcard_at(now, "succeeded"));
    ASSERT_EQ(zcard_at(now, "dead"), 0);
    ASSERT_EQ(zcard_at(now, "ready") + zcard_at(now, "active"), 0);

    /* jobctl follows too. */
    ASSERT_EQ(ctl(&out, &err, NULL, "stats", "--json", NULL), 0);
    ASSERT_CONTAINS(out, "\"succeeded\":800");
    free(out);
    free(err);
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(30000), log, 0);
}
