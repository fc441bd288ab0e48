/* test_numbers.c - absurd numbers from outside, black box: envelopes
 * written straight into Redis with numbers outside the schema's ranges go
 * dead with a reason naming the field while jobd keeps running and
 * finishes the good jobs beside them (Guarantee 7; in the sanitizer build,
 * timeout_s 9223372036854775807 used to abort jobd on the overflow of
 * timeout_s * 1000); jobctl refuses such numbers, and lines that are not
 * JSON, with nothing written; jobd refuses them in its config file. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testlib.h"

/* Replaces field k of job id's envelope with v (steals v). */
static void set_env_field(const char *queue, const char *id, const char *k, json_t *v)
{
    char *text = test_hget(queue, id, "env");
    ASSERT(text != NULL);
    json_t *env = json_loads(text, 0, NULL);
    ASSERT(env != NULL);
    free(text);
    json_object_set_new(env, k, v);
    char *out = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(env);
    char key[512], suffix[128];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    test_qkey(key, sizeof key, queue, suffix);
    freeReplyObject(test_rcmd("HSET %s env %s", key, out));
    free(out);
}

static long long terminal_count(const char *queue)
{
    return test_zcard(queue, "succeeded") + test_zcard(queue, "dead") +
           test_zcard(queue, "canceled");
}

TEST(numbers_absurd_envelope_goes_dead_naming_the_field)
{
    test_install_abort_handler();
    enum { NGOOD = 20 };
    const char *q = "nums", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char good[NGOOD][JOBD_ID_LEN + 1], timeout[JOBD_ID_LEN + 1], attempts[JOBD_ID_LEN + 1],
        prio[JOBD_ID_LEN + 1], backoff[JOBD_ID_LEN + 1], longest[JOBD_ID_LEN + 1],
        negative[JOBD_ID_LEN + 1], probe[JOBD_ID_LEN + 1];
    for (int i = 0; i < NGOOD / 2; i++)
        test_submit(c, q, "noop", "{}", 0, 0, good[i]);
    test_submit(c, q, "noop", "{}", 0, 0, timeout);
    test_submit(c, q, "noop", "{}", 0, 0, attempts);
    test_submit(c, q, "noop", "{}", 0, 0, prio);
    test_submit(c, q, "noop", "{}", 0, 0, backoff);
    test_submit(c, q, "noop", "{}", 0, 0, longest);
    test_submit(c, q, "noop", "{}", 0, 0, negative);
    /* A payload number that sizes a built-in's allocation (8 * 2^61 wraps
     * to 0 bytes). */
    test_submit(c, q, "checkpoint.probe", "{\"count\":2305843009213693952}", 1, 0, probe);
    for (int i = NGOOD / 2; i < NGOOD; i++)
        test_submit(c, q, "noop", "{}", 0, 0, good[i]);
    /* Each fits JSON; none fits the schema, but the backoffs: the schema
     * sets them no maximum, so they are valid and must simply not overflow. */
    set_env_field(q, timeout, "timeout_s", json_integer(9223372036854775807LL));
    set_env_field(q, attempts, "max_attempts", json_integer(4294967295LL));
    set_env_field(q, prio, "priority", json_integer(4294967297LL));
    set_env_field(q, negative, "timeout_s", json_integer(-1));
    set_env_field(q, backoff, "retry_base_s", json_real(1e90));
    set_env_field(q, backoff, "retry_cap_s", json_real(1e300));
    set_env_field(q, longest, "timeout_s", json_integer(3153600000LL)); /* 100 years: valid */

    const int total = NGOOD + 7;
    pid_t pid =
        test_jobd_start(log, NULL, q, "state", (const char *[]){"--concurrency", "4", NULL}, NULL);
    int64_t deadline = test_now_ms() + test_ms(20000);
    while (terminal_count(q) < total) {
        if (test_now_ms() >= deadline || waitpid(pid, NULL, WNOHANG) != 0) {
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "only %lld of %d jobs ended (jobd %s)", terminal_count(q),
                      total, waitpid(pid, NULL, WNOHANG) != 0 ? "exited" : "still up");
        }
        test_pause_ms(20);
    }
    ASSERT_EQ(waitpid(pid, NULL, WNOHANG), 0); /* still up */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);

    ASSERT_FIELD(q, timeout, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, timeout, "error",
                          "malformed envelope: \"timeout_s\" must be an integer in 1..3153600000 "
                          "(got 9223372036854775807)");
    ASSERT_FIELD(q, timeout, "attempt", "1"); /* no retries: they cannot help */
    ASSERT_FIELD(q, attempts, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, attempts, "error", "\"max_attempts\"");
    ASSERT_FIELD_CONTAINS(q, attempts, "error", "4294967295");
    ASSERT_FIELD(q, prio, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, prio, "error", "\"priority\"");
    ASSERT_FIELD(q, negative, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, negative, "error", "\"timeout_s\"");
    ASSERT_FIELD(q, probe, "state", "dead");
    ASSERT_FIELD_CONTAINS(q, probe, "error", "\"count\" must be an integer in 1..10000000");
    ASSERT_FIELD(q, backoff, "state", "succeeded");
    ASSERT_FIELD(q, longest, "state", "succeeded");
    for (int i = 0; i < NGOOD; i++)
        ASSERT_FIELD(q, good[i], "state", "succeeded");
    ASSERT_EQ(test_zcard(q, "dead"), 5);
    ASSERT_EQ(test_zcard(q, "succeeded"), NGOOD + 2);
    /* The log says which job and why. */
    ASSERT_GE(test_log_has_job(log, timeout, "timeout_s"), 1);
    jobd_client_free(c);
}

/* Runs jobctl on the test Redis and prefix with stdin; returns its status
 * and its stderr in *err. */
static int jobctl_stdin(const char *in, char **err, const char *first, ...)
{
    static char url[600], prefix[300];
    snprintf(url, sizeof url, "JOBD_REDIS_URL=%s", test_redis_url());
    snprintf(prefix, sizeof prefix, "JOBD_PREFIX=%s", test_prefix());
    const char *env[] = {url, prefix, NULL}, *argv[16] = {test_env("JOBCTL_BIN")};
    va_list ap;
    va_start(ap, first);
    int n = 1;
    for (const char *a = first; a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *out = NULL;
    int st = test_run(argv, env, in, &out, err);
    free(out);
    return st;
}

/* How many keys this test's prefix holds. */
static long long prefix_keys(void)
{
    char pattern[400];
    snprintf(pattern, sizeof pattern, "%s:{*", test_prefix());
    redisReply *r = test_rcmd("KEYS %s", pattern);
    ASSERT(r && r->type == REDIS_REPLY_ARRAY);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

TEST(numbers_jobctl_refuses_with_nothing_written)
{
    static const struct {
        const char *in, *say;
    } cases[] = {
        /* A value glued to a null once made type "p", priority 7. */
        {"{\"queue\":\"nb\",\"type\":\"noop\"}\n"
         "{\"queue\":\"nb\",\"type\":null\"p\",\"priority\":null7}\n",
         "line 2: malformed JSON"},
        {"{\"queue\":\"nb\",\"type\":\"noop\",\"delay_s\":1e300}\n", "line 1: \"delay_s\""},
        {"{\"queue\":\"nb\",\"type\":\"noop\",\"max_attempts\":4294967295}\n",
         "line 1: \"max_attempts\""},
        {"{\"queue\":\"nb\",\"type\":\"noop\",\"timeout_s\":9223372036854775807}\n",
         "line 1: \"timeout_s\""},
        {"{\"queue\":\"nb\",\"type\":\"noop\",\"retry_base_s\":1e90}\n",
         "line 1: \"retry_base_s\""},
        {"{\"queue\":\"nb\",\"type\":\"noop\",\"payload\":\"a\\u0000b\"}\n", "line 1: a string "
                                                                             "holds \\u0000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int st = jobctl_stdin(cases[i].in, &err, "submit", "--batch", "-", (const char *)NULL);
        if (st != 2 || !strstr(err, cases[i].say))
            test_fail(__FILE__, __LINE__, "case %zu: exit %d, stderr \"%s\", want 2 and \"%s\"", i,
                      st, err, cases[i].say);
        free(err);
    }
    /* A NUL byte inside a scalar payload once cut it short: "1\0x" became 1. */
    char path[600];
    snprintf(path, sizeof path, "%s/nul.jsonl", test_tmpdir());
    static const char nul_line[] = "{\"queue\":\"nb\",\"type\":\"noop\",\"payload\":1\0x}\n";
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(nul_line, 1, sizeof nul_line - 1, f), sizeof nul_line - 1);
    fclose(f);
    char *err = NULL;
    ASSERT_EQ(jobctl_stdin(NULL, &err, "submit", "--batch", path, (const char *)NULL), 2);
    ASSERT_CONTAINS(err, "line 1: a NUL byte at column 40");
    free(err);
    /* The single-job flags too. */
    ASSERT_EQ(jobctl_stdin(NULL, &err, "submit", "nb", "noop", "--timeout", "40000000d",
                           (const char *)NULL),
              2);
    ASSERT_CONTAINS(err, "timeout_s");
    free(err);
    ASSERT_EQ(prefix_keys(), 0);
}

TEST(numbers_jobd_refuses_absurd_config)
{
    static const struct {
        const char *config, *say;
    } cases[] = {
        {"{\"retention\": {\"succeeded\": 1e81}}", "\"retention.succeeded\""},
        {"{\"retention\": {\"dead\": -5}}", "\"retention.dead\""},
        {"{\"queues\": {\"a\": {\"limit\": 4294967295}}}", "\"queues.a\": \"limit\""},
        {"{\"queues\": {\"a\": {\"weight\": 4294967296}}}", "\"queues.a\": \"weight\""},
    };
    const char *cfg = test_tmp_path("config.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_write_file(cfg, cases[i].config);
        /* --check-config: a jobd that took the file would exit 0, not run. */
        const char *argv[] = {test_env("JOBD_BIN"), "--check-config",       "--config", cfg,
                              "--state-dir",        test_tmp_path("state"), NULL};
        char *err = NULL;
        int st = test_run(argv, NULL, NULL, NULL, &err);
        if (st != 78 || !strstr(err, cases[i].say))
            test_fail(__FILE__, __LINE__, "case %zu: exit %d, stderr \"%s\", want 78 and \"%s\"", i,
                      st, err, cases[i].say);
        free(err);
    }
}
