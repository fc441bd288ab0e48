/* Tests of the Redis layout version: a layout 1 Redis is refused by jobd
 * and jobctl with a message that names `jobctl migrate`; migrate refuses
 * while old workers live, moves the global keys, keeps the jobs, and is
 * idempotent; a prefix with a hash tag is refused by both binaries. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static int ctl(char **out, char **err, const char *a, const char *b)
{
    char url[600], prefix[300];
    snprintf(url, sizeof url, "JOBD_REDIS_URL=%s", test_redis_url());
    snprintf(prefix, sizeof prefix, "JOBD_PREFIX=%s", test_prefix());
    const char *env[] = {url, prefix, NULL};
    const char *argv[] = {test_env("JOBCTL_BIN"), a, b, NULL};
    return test_run(argv, env, NULL, out, err);
}

/* Turns this prefix's layout 2 keys back into layout 1's, as a layout 1
 * build left them. */
static void make_layout1(void)
{
    const char *p = test_prefix();
    freeReplyObject(test_cmd("RENAME %s:{:global}:queues %s:queues", p, p));
    freeReplyObject(test_cmd("DEL %s:{:global}:schema", p));
    freeReplyObject(test_cmd("SET %s:schema 1", p));
}

TEST(layout_migrate_from_1)
{
    jobd_client_t *c = test_client();
    char id1[JOBD_ID_LEN + 1], id2[JOBD_ID_LEN + 1];
    test_submit(c, "lm-a", "noop", "{}", 0, 0, id1);
    test_submit(c, "lm-b", "noop", "{}", 0, 0, id2);
    jobd_client_free(c);
    make_layout1();
    const char *p = test_prefix();

    /* Both binaries refuse it and say what to do. */
    char *out, *err;
    ASSERT_EQ(ctl(&out, &err, "stats", "--json"), 1);
    ASSERT_CONTAINS(err, "version 1");
    ASSERT_CONTAINS(err, "jobctl migrate");
    free(out);
    free(err);
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, NULL, "lm-a", "state", NULL, NULL);
    ASSERT_EXIT(pid, test_ms(10000), log, 78);
    ASSERT_GE(test_count_log(log, "jobctl migrate"), 1);

    /* A layout 1 worker that still heartbeats blocks the migration. */
    freeReplyObject(test_cmd("SET %s:worker:w-old {} PX 60000", p));
    test_cmd_int("ZADD %s:workers %lld w-old", p, (long long)jobd_now_ms());
    ASSERT_EQ(ctl(&out, &err, "migrate", NULL), 1);
    ASSERT_CONTAINS(err, "w-old");
    ASSERT_CONTAINS(err, "--force");
    free(out);
    free(err);
    redisReply *r = test_cmd("GET %s:schema", p);
    ASSERT_STR_EQ(r->str, "1"); /* untouched */
    freeReplyObject(r);

    ASSERT_EQ(ctl(&out, &err, "migrate", "--force"), 0);
    ASSERT_CONTAINS(out, "from layout 1 to 2");
    ASSERT_CONTAINS(out, "2 queues");
    free(out);
    free(err);
    /* Old registry keys gone; the old version key fences layout 1 binaries. */
    ASSERT_EQ(test_cmd_int("EXISTS %s:queues %s:workers %s:worker:w-old", p, p, p), 0);
    r = test_cmd("GET %s:schema", p);
    ASSERT_STR_EQ(r->str, "2");
    freeReplyObject(r);
    ASSERT_EQ(test_cmd_int("SCARD %s:{:global}:queues", p), 2);

    /* The jobs are there and served. */
    json_t *st = NULL;
    c = test_client();
    ASSERT_EQ(jobd_stats(c, &st), 0);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "lm-b"), "queued")), 1);
    json_decref(st);
    jobd_client_free(c);
    const char *const once[] = {"--once", NULL};
    pid = test_jobd_start(log, NULL, "lm-a,lm-b", "state", once, NULL);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    ASSERT_FIELD("lm-a", id1, "state", "succeeded");
    ASSERT_FIELD("lm-b", id2, "state", "succeeded");

    /* Again: nothing to do. */
    ASSERT_EQ(ctl(&out, &err, "migrate", NULL), 0);
    ASSERT_CONTAINS(out, "already in place");
    free(out);
    free(err);
}

TEST(layout_prefix_with_hash_tag_refused)
{
    char *out, *err;
    const char *argv[] = {
        test_env("JOBCTL_BIN"), "--redis", test_redis_url(), "--prefix", "app{x}", "stats", NULL};
    ASSERT_EQ(test_run(argv, NULL, NULL, &out, &err), 2);
    ASSERT_CONTAINS(err, "braces");
    free(out);
    free(err);
    const char *jargv[] = {test_env("JOBD_BIN"), "--redis", test_redis_url(), "--prefix", "app{x}",
                           "--check-config",     NULL};
    ASSERT_EQ(test_run(jargv, NULL, NULL, &out, &err), 78);
    ASSERT_CONTAINS(err, "braces");
    free(out);
    free(err);
}

TEST(layout_rediss_not_built_with_tls)
{
    /* jobd: a configuration error (78); jobctl: a usage error (2). */
    char *out, *err;
    const char *jargv[] = {test_env("JOBD_BIN"), "--redis", "rediss://h:6380/0", "--check-config",
                           NULL};
    ASSERT_EQ(test_run(jargv, NULL, NULL, &out, &err), 78);
    ASSERT_CONTAINS(err, "not built with TLS");
    ASSERT_CONTAINS(err, "stunnel");
    free(out);
    free(err);
    const char *argv[] = {test_env("JOBCTL_BIN"), "--redis", "rediss://h:6380/0", "stats", NULL};
    ASSERT_EQ(test_run(argv, NULL, NULL, &out, &err), 2);
    ASSERT_CONTAINS(err, "not built with TLS");
    free(out);
    free(err);
}
