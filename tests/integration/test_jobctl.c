/* Black-box tests of jobctl: run the binary with contract flags and
 * environment, assert on its stdout, stderr and exit status, and on Redis.
 * Worker-side steps (claim, ack, fail) come from libjobd in this process,
 * so no daemon is needed. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "jobd/version.h"
#include "testlib.h"

#define MAXARGS 32

/* The environment every jobctl run gets: the test Redis and prefix. */
static const char *const *ctl_env(void)
{
    static char url[600], prefix[300];
    static const char *env[3];
    snprintf(url, sizeof url, "JOBD_REDIS_URL=%s", test_redis_url());
    snprintf(prefix, sizeof prefix, "JOBD_PREFIX=%s", test_prefix());
    env[0] = url;
    env[1] = prefix;
    env[2] = NULL;
    return env;
}

/* Builds argv: JOBCTL_BIN then the NULL-terminated arguments. */
static void build_argv(const char **argv, const char *first, va_list ap)
{
    int n = 0;
    argv[n++] = test_env("JOBCTL_BIN");
    for (const char *a = first; a && n < MAXARGS - 1; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
}

/* Runs jobctl with env (NULL: ctl_env()) and stdin; returns its status. */
static int run_env(const char *const *env, const char *in, char **out, char **err,
                   const char *first, ...)
{
    const char *argv[MAXARGS];
    va_list ap;
    va_start(ap, first);
    build_argv(argv, first, ap);
    va_end(ap);
    return test_run(argv, env ? env : ctl_env(), in, out, err);
}

#define jobctl(...) run_env(NULL, NULL, __VA_ARGS__, (const char *)NULL)

/* Starts jobctl in the background, output to log. */
static pid_t spawn(const char *log, const char *first, ...)
{
    const char *argv[MAXARGS];
    va_list ap;
    va_start(ap, first);
    build_argv(argv, first, ap);
    va_end(ap);
    return test_spawn(argv, ctl_env(), log);
}

/* Submits a job with jobctl; id receives its id. */
static void submit(char *id, const char *queue, const char *payload)
{
    char *out, *err;
    int st = jobctl(&out, &err, "submit", queue, "noop", "--payload", payload);
    if (st != 0) test_fail(__FILE__, __LINE__, "submit exited %d: %s", st, err);
    ASSERT_EQ(strlen(out), JOBD_ID_LEN + 1);
    ASSERT_EQ(out[JOBD_ID_LEN], '\n');
    memcpy(id, out, JOBD_ID_LEN);
    id[JOBD_ID_LEN] = '\0';
    free(out);
    free(err);
}

/* Runs a jobctl command that prints JSON and returns it parsed (new). */
static json_t *jobctl_json(const char *a, const char *b, const char *c)
{
    char *out, *err;
    int st = c ? jobctl(&out, &err, a, b, c) : b ? jobctl(&out, &err, a, b) : jobctl(&out, &err, a);
    if (st != 0) test_fail(__FILE__, __LINE__, "jobctl %s exited %d: %s", a, st, err);
    json_error_t je;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &je);
    if (!v) test_fail(__FILE__, __LINE__, "jobctl %s printed bad JSON (%s): %s", a, je.text, out);
    free(out);
    free(err);
    return v;
}

static json_t *status_json(const char *id)
{
    return jobctl_json("status", id, "--json");
}

static const char *str_field(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long int_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) test_fail(__FILE__, __LINE__, "field %s is not an integer", k);
    return json_integer_value(v);
}

/* Keys under this test's prefix, the schema version key aside: a command
 * that refuses its input must leave this at 0. */
static long long data_keys(void)
{
    redisReply *r = test_cmd("KEYS %s:*", test_prefix());
    char schema[300], legacy[300];
    snprintf(schema, sizeof schema, "%s:{:global}:schema", test_prefix());
    snprintf(legacy, sizeof legacy, "%s:schema", test_prefix());
    long long n = 0;
    for (size_t i = 0; i < r->elements; i++)
        n += strcmp(r->element[i]->str, schema) != 0 && strcmp(r->element[i]->str, legacy) != 0;
    freeReplyObject(r);
    return n;
}

/* Asserts status, that stderr is one "jobctl: " line containing needle, and
 * that stdout is empty. */
static void expect_error(int st, int want, char **outp, char **errp, const char *needle)
{
    char *out = *outp, *err = *errp;
    if (st != want) test_fail(__FILE__, __LINE__, "exit %d, want %d; stderr: %s", st, want, err);
    ASSERT_STR_EQ(out, "");
    ASSERT(strncmp(err, "jobctl: ", 8) == 0);
    ASSERT(strchr(err, '\n') == err + strlen(err) - 1);
    ASSERT_CONTAINS(err, needle);
    free(out);
    free(err);
}

/* Claims the next job of queue, asserting it is id. */
static void claim(jobd_client_t *c, const char *queue, const char *id, jobd_claim_t *j)
{
    ASSERT_EQ(jobd_claim(c, queue, "test-worker", 30000, j, 1), 1);
    ASSERT_STR_EQ(j->id, id);
}

static void make_dead(jobd_client_t *c, const char *queue, const char *id)
{
    jobd_claim_t j;
    claim(c, queue, id, &j);
    ASSERT_EQ(jobd_fail(c, queue, j.id, j.token, "boom", -1), JOBD_FAILED_DEAD);
    jobd_claim_clear(&j);
}

/* A well-formed id that no job has. */
static const char *const NO_SUCH_ID = "01900000-0000-7000-8000-000000000000";

TEST(jobctl_submit_status_list_stats)
{
    char *out, *err;
    ASSERT_EQ(jobctl(&out, &err, "submit", "mail", "send.email", "--payload",
                     "{\"to\":\"a@example.com\",\"n\":1}", "--priority", "7", "--max-attempts", "3",
                     "--timeout", "1h"),
              0);
    ASSERT_EQ(strlen(out), JOBD_ID_LEN + 1);
    char id[JOBD_ID_LEN + 1];
    memcpy(id, out, JOBD_ID_LEN);
    id[JOBD_ID_LEN] = '\0';
    free(out);
    free(err);

    json_t *st = status_json(id);
    ASSERT_STR_EQ(str_field(st, "id"), id);
    ASSERT_STR_EQ(str_field(st, "queue"), "mail");
    ASSERT_STR_EQ(str_field(st, "type"), "send.email");
    ASSERT_STR_EQ(str_field(st, "state"), "queued");
    ASSERT_STR_EQ(str_field(json_object_get(st, "payload"), "to"), "a@example.com");
    ASSERT_EQ(int_field(json_object_get(st, "payload"), "n"), 1);
    ASSERT_EQ(int_field(st, "priority"), 7);
    ASSERT_EQ(int_field(st, "max_attempts"), 3);
    ASSERT_EQ(int_field(st, "timeout_s"), 3600);
    ASSERT_EQ(int_field(st, "attempt"), 0);
    ASSERT_EQ(int_field(st, "v"), 1);
    ASSERT_DBL_NEAR(json_number_value(json_object_get(st, "progress")), 0, 1e-9);
    ASSERT(json_is_string(json_object_get(st, "created_at")));
    ASSERT(json_is_null(json_object_get(st, "result")));
    ASSERT(json_is_null(json_object_get(st, "error")));
    json_decref(st);

    /* Text form: readable lines. */
    ASSERT_EQ(jobctl(&out, &err, "status", id), 0);
    ASSERT_CONTAINS(out, id);
    ASSERT_CONTAINS(out, "queued");
    ASSERT_CONTAINS(out, "send.email");
    free(out);
    free(err);

    char id2[JOBD_ID_LEN + 1];
    submit(id2, "mail", "null");
    json_t *list = jobctl_json("list", "mail", "--json");
    ASSERT(json_is_array(list));
    ASSERT_EQ(json_array_size(list), 2);
    /* Queued jobs list in claim order: priority 7 before the default 5. */
    ASSERT_STR_EQ(str_field(json_array_get(list, 0), "id"), id);
    ASSERT_STR_EQ(str_field(json_array_get(list, 1), "id"), id2);
    json_decref(list);
    ASSERT_EQ(jobctl(&out, &err, "list", "mail", "--state", "dead", "--json"), 0);
    ASSERT_STR_EQ(out, "[]\n");
    free(out);
    free(err);
    ASSERT_EQ(jobctl(&out, &err, "list", "mail", "--limit", "1"), 0);
    ASSERT_CONTAINS(out, "STATE");
    ASSERT_CONTAINS(out, id);
    ASSERT(strstr(out, id2) == NULL);
    free(out);
    free(err);

    json_t *stats = jobctl_json("stats", "--json", NULL);
    json_t *q = json_object_get(stats, "mail");
    ASSERT(q != NULL);
    ASSERT_EQ(int_field(q, "queued"), 2);
    ASSERT_EQ(int_field(q, "scheduled"), 0);
    ASSERT_EQ(int_field(q, "active"), 0);
    ASSERT_EQ(int_field(q, "succeeded"), 0);
    ASSERT_EQ(int_field(q, "dead"), 0);
    ASSERT_EQ(int_field(q, "canceled"), 0);
    ASSERT(json_is_number(json_object_get(q, "oldest_age_s")));
    ASSERT_GE(json_number_value(json_object_get(q, "oldest_age_s")), 0);
    ASSERT_EQ(int_field(json_object_get(q, "counters"), "enqueued"), 2);
    json_decref(stats);

    ASSERT_EQ(jobctl(&out, &err, "stats"), 0);
    ASSERT_CONTAINS(out, "QUEUED");
    ASSERT_CONTAINS(out, "mail");
    free(out);
    free(err);
}

TEST(jobctl_idempotency_key)
{
    char *out1, *out2, *err;
    ASSERT_EQ(jobctl(&out1, &err, "submit", "q", "noop", "--key", "order-42"), 0);
    free(err);
    ASSERT_EQ(jobctl(&out2, &err, "submit", "q", "noop", "--key", "order-42", "--payload", "1"), 0);
    free(err);
    ASSERT_EQ(strlen(out1), JOBD_ID_LEN + 1);
    ASSERT_STR_EQ(out1, out2);
    ASSERT_EQ(test_zcard("q", "ready"), 1);
    redisReply *r = test_cmd("KEYS %s:{q}:job:*", test_prefix());
    ASSERT_EQ(r->elements, 1);
    freeReplyObject(r);
    free(out1);
    free(out2);
}

TEST(jobctl_delay_and_at_schedule)
{
    char *out, *err, id[JOBD_ID_LEN + 1];
    ASSERT_EQ(jobctl(&out, &err, "submit", "later", "noop", "--delay", "1h30m"), 0);
    memcpy(id, out, JOBD_ID_LEN);
    id[JOBD_ID_LEN] = '\0';
    free(out);
    free(err);
    json_t *st = status_json(id);
    ASSERT_STR_EQ(str_field(st, "state"), "scheduled");
    ASSERT(json_is_string(json_object_get(st, "run_at")));
    json_decref(st);
    ASSERT_EQ(test_zcard("later", "scheduled"), 1);
    ASSERT_EQ(test_zcard("later", "ready"), 0);

    ASSERT_EQ(jobctl(&out, &err, "submit", "later", "noop", "--at", "2999-01-01T00:00:00Z"), 0);
    free(out);
    free(err);
    ASSERT_EQ(test_zcard("later", "scheduled"), 2);
    /* A time in the past runs at once. */
    ASSERT_EQ(jobctl(&out, &err, "submit", "later", "noop", "--at", "2001-01-01T00:00:00+02:00"),
              0);
    free(out);
    free(err);
    ASSERT_EQ(test_zcard("later", "ready"), 1);
    json_t *stats = jobctl_json("stats", "--json", NULL);
    ASSERT_EQ(int_field(json_object_get(stats, "later"), "scheduled"), 2);
    ASSERT_EQ(int_field(json_object_get(stats, "later"), "queued"), 1);
    json_decref(stats);
}

TEST(jobctl_batch_in_order)
{
    char path[600];
    snprintf(path, sizeof path, "%s/jobs.jsonl", test_tmpdir());
    test_write_file(path,
                    "{\"queue\":\"b1\",\"type\":\"noop\",\"payload\":{\"n\":0}}\n"
                    "\n"
                    "{\"queue\":\"b1\",\"type\":\"noop\",\"payload\":{\"n\":1},\"priority\":9}\n"
                    "{\"queue\":\"b2\",\"type\":\"index\",\"payload\":{\"n\":2},"
                    "\"max_attempts\":2}\n"
                    "   \n"
                    "{\"queue\":\"b1\",\"type\":\"noop\",\"payload\":{\"n\":3},\"delay_s\":3600}\n"
                    "{\"queue\":\"b1\",\"type\":\"noop\",\"payload\":{\"n\":4},"
                    "\"idempotency_key\":\"k\"}\n");
    char *out, *err;
    ASSERT_EQ(jobctl(&out, &err, "submit", "--batch", path), 0);
    free(err);
    /* Five ids, one a line, in input order: payload n says which line. */
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        ASSERT_EQ(strlen(line), JOBD_ID_LEN);
        json_t *st = status_json(line);
        ASSERT_EQ(int_field(json_object_get(st, "payload"), "n"), n);
        ASSERT_STR_EQ(str_field(st, "queue"), n == 2 ? "b2" : "b1");
        if (n == 1) ASSERT_EQ(int_field(st, "priority"), 9);
        if (n == 2) ASSERT_EQ(int_field(st, "max_attempts"), 2);
        ASSERT_STR_EQ(str_field(st, "state"), n == 3 ? "scheduled" : "queued");
        json_decref(st);
    }
    ASSERT_EQ(n, 5);
    free(out);
    ASSERT_EQ(test_zcard("b1", "ready"), 3);
    ASSERT_EQ(test_zcard("b1", "scheduled"), 1);
    ASSERT_EQ(test_zcard("b2", "ready"), 1);

    /* From stdin with '-'. */
    ASSERT_EQ(run_env(NULL,
                      "{\"queue\":\"b3\",\"type\":\"noop\"}\n{\"queue\":\"b3\",\"type\":\"noop\"}",
                      &out, &err, "submit", "--batch", "-", (const char *)NULL),
              0);
    ASSERT_EQ(strlen(out), 2 * (JOBD_ID_LEN + 1));
    free(out);
    free(err);
    ASSERT_EQ(test_zcard("b3", "ready"), 2);
}

/* Lines of every shape: batch.c scans the plain ones in place and hands
 * the rest (escapes, unusual fields) to jansson; both must agree. */
TEST(jobctl_batch_line_shapes)
{
    static const struct {
        const char *line, *payload, *state, *queue;
    } cases[] = {
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"payload\":{\"s\":\"a}b]c\\\"d\\\\\","
         "\"arr\":[1,{\"x\":[]}],\"u\":\"\\u00e9\"}}",
         "{\"s\":\"a}b]c\\\"d\\\\\",\"arr\":[1,{\"x\":[]}],\"u\":\"\\u00e9\"}", "queued", "bf"},
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"payload\":\"caf\\u00e9 {\"}", "\"caf\\u00e9 {\"",
         "queued", "bf"},
        {" { \"type\" : \"noop\" , \"queue\" : \"bf\" , \"payload\" : [ 1 , 2 ] , \"priority\" : "
         "0 , \"max_attempts\" : 7 , \"timeout_s\" : 60 , \"v\" : 1 } \r",
         "[1,2]", "queued", "bf"},
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"payload\":1.5e3,\"delay_s\":3600.5}", "1500.0",
         "scheduled", "bf"},
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"idempotency_key\":\"kl\\u00f6\","
         "\"created_at\":\"2020-01-01T00:00:00Z\",\"payload\":null}",
         "null", "queued", "bf"},
        {"{\"queue\":\"b\\u0066\",\"type\":\"noop\",\"payload\":true}", "true", "queued", "bf"},
        {"{\"queue\":\"bf2\",\"type\":\"noop\",\"run_at\":\"2999-01-01T00:00:00Z\","
         "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\","
         "\"id\":\"custom-id-1\"}",
         "null", "scheduled", "bf2"},
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"priority\":null,\"payload\":{}}", "{}", "queued",
         "bf"},
        {"{\"queue\":\"bf\",\"type\":\"noop\",\"payload\":\"h\\u00e9llo\", \"v\":null}",
         "\"h\\u00e9llo\"", "queued", "bf"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    char *in = calloc(1, 16384), *out, *err;
    for (size_t i = 0; i < n; i++) {
        strcat(in, cases[i].line);
        strcat(in, "\n");
    }
    ASSERT_EQ(run_env(NULL, in, &out, &err, "submit", "--batch", "-", (const char *)NULL), 0);
    free(in);
    free(err);
    char *save = NULL;
    size_t k = 0;
    for (char *id = strtok_r(out, "\n", &save); id; id = strtok_r(NULL, "\n", &save), k++) {
        ASSERT_LT(k, n);
        json_t *st = status_json(id);
        json_t *want = json_loads(cases[k].payload, JSON_DECODE_ANY, NULL);
        ASSERT(want != NULL);
        if (!json_equal(want, json_object_get(st, "payload"))) {
            char *got = json_dumps(json_object_get(st, "payload"), JSON_ENCODE_ANY);
            test_fail(__FILE__, __LINE__, "line %zu: payload %s, want %s", k + 1, got,
                      cases[k].payload);
        }
        ASSERT_STR_EQ(str_field(st, "state"), cases[k].state);
        ASSERT_STR_EQ(str_field(st, "queue"), cases[k].queue);
        if (k == 2) {
            ASSERT_EQ(int_field(st, "priority"), 0);
            ASSERT_EQ(int_field(st, "max_attempts"), 7);
            ASSERT_EQ(int_field(st, "timeout_s"), 60);
        }
        if (k == 4) ASSERT_STR_EQ(str_field(st, "idempotency_key"), "kl\xc3\xb6");
        if (k == 6) {
            ASSERT_STR_EQ(id, "custom-id-1");
            ASSERT_STR_EQ(str_field(st, "traceparent"),
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        }
        json_decref(want);
        json_decref(st);
    }
    ASSERT_EQ(k, n);
    free(out);
}

TEST(jobctl_batch_bad_line_submits_nothing)
{
    char path[600], *out, *err;
    snprintf(path, sizeof path, "%s/bad.jsonl", test_tmpdir());
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\"}\n"
                          "\n"
                          "{\"queue\":\"q\",\"type\":\"noop\",\"payload\":{bad}\n"
                          "{\"queue\":\"q\",\"type\":\"noop\"}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 3");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\"}\n"
                          "{\"queue\":\"q\",\"type\":\"noop\",\"priority\":12}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 2");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\"}\n"
                          "{\"queue\":\"q\",\"type\":\"noop\",\"colour\":\"red\"}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "colour");
    test_write_file(path, "[1,2]\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 1");
    /* Lines whose payload or values do not parse (the whole line is JSON
     * or it is refused as a whole). */
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\"}\n"
                          "{\"queue\":\"q\",\"type\":\"noop\",\"payload\":{bad}}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err,
                 "line 2: malformed JSON");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\",\"priority\":1.5}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 1");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\",\"queue\":\"r\"}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 1");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"noop\"} trailing\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 1");
    test_write_file(path, "{\"queue\":\"q\",\"type\":\"no op\"}\n");
    expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err, "line 1: type");
    {
        /* A payload over 1 MiB on line 2. */
        size_t big = 1100 * 1024;
        char *text = malloc(big + 200);
        strcpy(text, "{\"queue\":\"q\",\"type\":\"noop\"}\n{\"queue\":\"q\",\"type\":\"noop\","
                     "\"payload\":\"");
        size_t len = strlen(text);
        memset(text + len, 'a', big);
        strcpy(text + len + big, "\"}\n");
        test_write_file(path, text);
        free(text);
        expect_error(jobctl(&out, &err, "submit", "--batch", path), 2, &out, &err,
                     "line 2: payload is");
    }
    expect_error(jobctl(&out, &err, "submit", "--batch", "/nonexistent/jobs.jsonl"), 2, &out, &err,
                 "/nonexistent/jobs.jsonl");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--batch", path), 2, &out, &err,
                 "--batch");
    ASSERT_EQ(data_keys(), 0);
}

TEST(jobctl_bad_input_writes_nothing)
{
    char *out, *err;
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--payload", "{\"a\":"), 2, &out, &err,
                 "payload is not valid JSON");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--payload", "{\"a\":1,\"a\":2}"), 2,
                 &out, &err, "payload");

    /* A 1.1 MiB JSON string: valid JSON, over the 1 MiB limit. */
    size_t big = 1100 * 1024;
    char *text = malloc(big + 4);
    text[0] = '"';
    memset(text + 1, 'a', big);
    strcpy(text + 1 + big, "\"");
    char path[600];
    snprintf(path, sizeof path, "%s/big.json", test_tmpdir());
    test_write_file(path, text);
    free(text);
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--payload-file", path), 2, &out, &err,
                 "over the limit");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--payload-file", "/nonexistent.json"),
                 2, &out, &err, "/nonexistent.json");

    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--bogus"), 2, &out, &err,
                 "unknown option '--bogus'");
    expect_error(jobctl(&out, &err, "frobnicate", "q"), 2, &out, &err,
                 "unknown command 'frobnicate'");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--delay", "5 minutes"), 2, &out, &err,
                 "--delay");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--timeout", "x"), 2, &out, &err,
                 "--timeout");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--at", "tomorrow"), 2, &out, &err,
                 "--at");
    expect_error(
        jobctl(&out, &err, "submit", "q", "noop", "--delay", "1m", "--at", "2999-01-01T00:00:00Z"),
        2, &out, &err, "not both");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--priority", "10"), 2, &out, &err,
                 "--priority");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--max-attempts", "0"), 2, &out, &err,
                 "--max-attempts");
    expect_error(jobctl(&out, &err, "submit", "q", "noop", "--priority"), 2, &out, &err,
                 "needs a value");
    expect_error(jobctl(&out, &err, "submit", "q"), 2, &out, &err, "QUEUE and TYPE");
    expect_error(jobctl(&out, &err, "submit", "bad{queue}", "noop"), 2, &out, &err, "queue");
    expect_error(jobctl(&out, &err, "wait", "some-id", "--timeout", "soon"), 2, &out, &err,
                 "--timeout");
    expect_error(jobctl(&out, &err, "list", "q", "--state", "sleeping"), 2, &out, &err, "--state");
    expect_error(jobctl(&out, &err, "list", "q", "--limit", "-1"), 2, &out, &err, "--limit");
    expect_error(jobctl(&out, &err, "retry"), 2, &out, &err, "--dead");
    expect_error(jobctl(&out, &err, "status"), 2, &out, &err, "ID");
    expect_error(jobctl(&out, &err, "--frob", "stats"), 2, &out, &err, "--frob");
    ASSERT_EQ(jobctl(&out, &err), 2); /* no command: usage on stderr */
    ASSERT_CONTAINS(err, "Usage: jobctl");
    free(out);
    free(err);
    ASSERT_EQ(data_keys(), 0);
}

TEST(jobctl_unknown_job_exits_3)
{
    char *out, *err;
    ASSERT_EQ(data_keys(), 0);
    expect_error(jobctl(&out, &err, "status", NO_SUCH_ID), 3, &out, &err, "no such job");
    expect_error(jobctl(&out, &err, "status", NO_SUCH_ID, "--json"), 3, &out, &err, NO_SUCH_ID);
    expect_error(jobctl(&out, &err, "cancel", NO_SUCH_ID), 3, &out, &err, "no such job");
    expect_error(jobctl(&out, &err, "retry", NO_SUCH_ID), 3, &out, &err, "no such job");
    expect_error(jobctl(&out, &err, "wait", NO_SUCH_ID, "--timeout", "5s"), 3, &out, &err,
                 "no such job");
    ASSERT_EQ(data_keys(), 0);
    /* One unknown id among known ones still fails the wait, naming it,
     * before the known job is even marked watched. */
    char id[JOBD_ID_LEN + 1];
    submit(id, "q", "{}");
    long long keys = data_keys();
    expect_error(jobctl(&out, &err, "wait", id, NO_SUCH_ID, "--timeout", "5s"), 3, &out, &err,
                 NO_SUCH_ID);
    ASSERT_EQ(data_keys(), keys);
    ASSERT_EQ(test_cmd_int("HEXISTS %s:{q}:job:%s watch", test_prefix(), id), 0);
}

TEST(jobctl_redis_unreachable_exits_69)
{
    char url[700], envurl[720], *out, *err;
    snprintf(url, sizeof url, "unix://%s/no-such-redis.sock", test_tmpdir());
    snprintf(envurl, sizeof envurl, "JOBD_REDIS_URL=%s", url);
    const char *env[] = {envurl, "JOBD_PREFIX=x", NULL};
    expect_error(run_env(env, NULL, &out, &err, "submit", "q", "noop", (const char *)NULL), 69,
                 &out, &err, "Redis unreachable");
    expect_error(run_env(env, NULL, &out, &err, "status", NO_SUCH_ID, (const char *)NULL), 69, &out,
                 &err, "no-such-redis.sock");
    expect_error(run_env(env, NULL, &out, &err, "stats", "--json", (const char *)NULL), 69, &out,
                 &err, "Redis unreachable");
    /* Bad input is reported as such even when Redis is down: checked first. */
    expect_error(
        run_env(env, NULL, &out, &err, "submit", "q", "noop", "--payload", "{", (const char *)NULL),
        2, &out, &err, "payload");
    /* --redis beats the environment. */
    ASSERT_EQ(run_env(env, NULL, &out, &err, "--redis", test_redis_url(), "--prefix", test_prefix(),
                      "stats", "--json", (const char *)NULL),
              0);
    ASSERT_STR_EQ(out, "{}\n");
    free(out);
    free(err);
}

TEST(jobctl_global_options_anywhere)
{
    char *out, *err;
    const char *noenv[] = {"JOBD_REDIS_URL=unix:///nonexistent/redis.sock", NULL};
    ASSERT_EQ(run_env(noenv, NULL, &out, &err, "--redis", test_redis_url(), "--prefix",
                      test_prefix(), "submit", "g", "noop", (const char *)NULL),
              0);
    free(out);
    free(err);
    expect_error(
        run_env(noenv, NULL, &out, &err, "list", "g", "--json", "--redis=", (const char *)NULL), 2,
        &out, &err, "--redis");
    char redis_opt[700], prefix_opt[300];
    snprintf(redis_opt, sizeof redis_opt, "--redis=%s", test_redis_url());
    snprintf(prefix_opt, sizeof prefix_opt, "--prefix=%s", test_prefix());
    ASSERT_EQ(run_env(noenv, NULL, &out, &err, "stats", "--json", redis_opt, prefix_opt,
                      (const char *)NULL),
              0);
    json_t *stats = json_loads(out, 0, NULL);
    ASSERT_EQ(int_field(json_object_get(stats, "g"), "queued"), 1);
    json_decref(stats);
    free(out);
    free(err);
}

TEST(jobctl_cancel)
{
    jobd_client_t *c = test_client();
    char *out, *err, id[JOBD_ID_LEN + 1], want[64];
    submit(id, "cq", "{}");
    ASSERT_EQ(jobctl(&out, &err, "cancel", id), 0);
    snprintf(want, sizeof want, "%s canceled\n", id);
    ASSERT_STR_EQ(out, want);
    free(out);
    free(err);
    json_t *st = status_json(id);
    ASSERT_STR_EQ(str_field(st, "state"), "canceled");
    json_decref(st);
    ASSERT_EQ(test_zcard("cq", "ready"), 0);
    ASSERT_EQ(test_zcard("cq", "canceled"), 1);
    /* Again: still canceled, still fine. */
    ASSERT_EQ(jobctl(&out, &err, "cancel", id), 0);
    free(out);
    free(err);

    /* An active job: the cancel is requested of its worker. */
    submit(id, "cq", "{}");
    jobd_claim_t j;
    claim(c, "cq", id, &j);
    ASSERT_EQ(jobctl(&out, &err, "cancel", id), 0);
    ASSERT_CONTAINS(out, "cancel-requested");
    free(out);
    free(err);
    ASSERT_EQ(jobd_extend(c, "cq", j.id, j.token, 30000), 1);
    /* A finished job cannot be canceled. */
    submit(id, "cq2", "{}");
    jobd_claim_t k;
    claim(c, "cq2", id, &k);
    ASSERT_EQ(jobd_ack(c, "cq2", k.id, k.token, NULL), 0);
    expect_error(jobctl(&out, &err, "cancel", id), 1, &out, &err, "finished");
    jobd_claim_clear(&j);
    jobd_claim_clear(&k);
    jobd_client_free(c);
}

TEST(jobctl_retry_dead)
{
    jobd_client_t *c = test_client();
    char ids[3][JOBD_ID_LEN + 1], *out, *err;
    for (int i = 0; i < 3; i++) {
        submit(ids[i], "rq", "{}");
        make_dead(c, "rq", ids[i]);
    }
    json_t *stats = jobctl_json("stats", "--json", NULL);
    ASSERT_EQ(int_field(json_object_get(stats, "rq"), "dead"), 3);
    json_decref(stats);
    json_t *st = status_json(ids[0]);
    ASSERT_STR_EQ(str_field(st, "error"), "boom");
    json_decref(st);

    ASSERT_EQ(jobctl(&out, &err, "retry", ids[0]), 0);
    free(out);
    free(err);
    st = status_json(ids[0]);
    ASSERT_STR_EQ(str_field(st, "state"), "queued");
    ASSERT_EQ(int_field(st, "attempt"), 0);
    json_decref(st);
    /* Not dead any more: refused. */
    expect_error(jobctl(&out, &err, "retry", ids[0]), 1, &out, &err, "not dead");

    ASSERT_EQ(jobctl(&out, &err, "retry", "--dead", "rq"), 0);
    ASSERT_CONTAINS(out, "2 dead jobs");
    free(out);
    free(err);
    stats = jobctl_json("stats", "--json", NULL);
    ASSERT_EQ(int_field(json_object_get(stats, "rq"), "dead"), 0);
    ASSERT_EQ(int_field(json_object_get(stats, "rq"), "queued"), 3);
    json_decref(stats);
    ASSERT_EQ(jobctl(&out, &err, "list", "rq", "--state=dead", "--json"), 0);
    ASSERT_STR_EQ(out, "[]\n");
    free(out);
    free(err);
    jobd_client_free(c);
}

TEST(jobctl_wait_succeeds)
{
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], log[600], want[80];
    submit(id, "wq", "{}");
    snprintf(log, sizeof log, "%s/wait.log", test_tmpdir());
    pid_t pid = spawn(log, "wait", id, "--timeout", "30s", (const char *)NULL);
    /* Not a terminal: one plain line per change, the first once subscribed. */
    ASSERT_EQ(test_wait_log(log, test_ms(10000), id, "queued", NULL), 0);
    jobd_claim_t j;
    claim(c, "wq", id, &j);
    ASSERT_EQ(jobd_checkpoint(c, "wq", j.id, j.token, "{\"page\":5}", 0.5), 0);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), id, "active", "50%", NULL), 0);
    ASSERT_EQ(jobd_ack(c, "wq", j.id, j.token, "{\"ok\":true}"), 0);
    ASSERT_EQ(test_waitpid(pid, test_ms(30000)), 0);
    snprintf(want, sizeof want, "%s succeeded", id);
    ASSERT_GE(test_count_log(log, want), 1);
    jobd_claim_clear(&j);
    jobd_client_free(c);
}

TEST(jobctl_wait_dead_exits_1)
{
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], id2[JOBD_ID_LEN + 1], log[600];
    submit(id, "wd", "{}");
    submit(id2, "wd", "{}");
    snprintf(log, sizeof log, "%s/wait.log", test_tmpdir());
    pid_t pid = spawn(log, "wait", id, id2, "--timeout", "30s", (const char *)NULL);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), id2, "queued", NULL), 0);
    make_dead(c, "wd", id);
    jobd_claim_t j;
    claim(c, "wd", id2, &j);
    ASSERT_EQ(jobd_ack(c, "wd", j.id, j.token, NULL), 0);
    ASSERT_EQ(test_waitpid(pid, test_ms(30000)), 1);
    ASSERT_EQ(test_wait_log(log, 0, "jobctl: job", id, "dead: boom", NULL), 0);
    jobd_claim_clear(&j);

    /* Canceled counts as failed too. */
    submit(id, "wd", "{}");
    pid = spawn(log, "wait", id, (const char *)NULL);
    char *out, *err;
    ASSERT_EQ(jobctl(&out, &err, "cancel", id), 0);
    free(out);
    free(err);
    ASSERT_EQ(test_waitpid(pid, test_ms(30000)), 1);
    jobd_client_free(c);
}

TEST(jobctl_wait_timeout_exits_4)
{
    char id[JOBD_ID_LEN + 1], *out, *err;
    submit(id, "wt", "{}");
    int64_t t0 = test_now_ms();
    ASSERT_EQ(jobctl(&out, &err, "wait", id, "--timeout", "200ms"), 4);
    ASSERT_GE(test_now_ms() - t0, 200);
    /* Not a terminal: the progress line first, then the error. */
    char first[80];
    snprintf(first, sizeof first, "%s queued 0%%\njobctl: ", id);
    ASSERT(strncmp(err, first, strlen(first)) == 0);
    ASSERT_CONTAINS(err, "timed out");
    ASSERT_STR_EQ(out, "");
    free(out);
    free(err);
}

TEST(jobctl_submit_wait)
{
    jobd_client_t *c = test_client();
    char log[600];
    snprintf(log, sizeof log, "%s/submit.log", test_tmpdir());
    pid_t pid = spawn(log, "submit", "sw", "noop", "--wait", (const char *)NULL);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "queued", NULL), 0);
    char *text = test_read_file(log);
    ASSERT(text != NULL);
    char id[JOBD_ID_LEN + 1];
    ASSERT_GE(strlen(text), JOBD_ID_LEN);
    memcpy(id, text, JOBD_ID_LEN); /* the first line is the id */
    id[JOBD_ID_LEN] = '\0';
    free(text);
    jobd_claim_t j;
    claim(c, "sw", id, &j);
    ASSERT_EQ(jobd_ack(c, "sw", j.id, j.token, NULL), 0);
    ASSERT_EQ(test_waitpid(pid, test_ms(30000)), 0);
    jobd_claim_clear(&j);
    jobd_client_free(c);
}

TEST(jobctl_batch_wait)
{
    jobd_client_t *c = test_client();
    char path[600], log[600];
    snprintf(path, sizeof path, "%s/jobs.jsonl", test_tmpdir());
    snprintf(log, sizeof log, "%s/batch.log", test_tmpdir());
    test_write_file(path, "{\"queue\":\"bw\",\"type\":\"noop\"}\n"
                          "{\"queue\":\"bw\",\"type\":\"noop\",\"idempotency_key\":\"same\"}\n"
                          "{\"queue\":\"bw\",\"type\":\"noop\",\"idempotency_key\":\"same\"}\n");
    pid_t pid = spawn(log, "submit", "--batch", path, "--wait", (const char *)NULL);
    /* Two distinct jobs (the key repeats), each reported queued once watched. */
    for (int i = 0; i < 2; i++) {
        jobd_claim_t j;
        ASSERT_EQ(test_wait_log(log, test_ms(10000), "queued", NULL), 0);
        ASSERT_EQ(jobd_claim(c, "bw", "test-worker", 30000, &j, 1), 1);
        ASSERT_EQ(jobd_ack(c, "bw", j.id, j.token, NULL), 0);
        jobd_claim_clear(&j);
    }
    ASSERT_EQ(test_waitpid(pid, test_ms(30000)), 0);
    ASSERT_EQ(test_count_log(log, "succeeded"), 2);
    jobd_client_free(c);
}

TEST(jobctl_workers)
{
    char *out, *err;
    ASSERT_EQ(jobctl(&out, &err, "workers", "--json"), 0);
    ASSERT_STR_EQ(out, "[]\n");
    free(out);
    free(err);
    /* A registry entry as jobd publishes it (SET with a TTL, plus the set). */
    char now[40];
    jobd_format_rfc3339(jobd_now_ms(), now, sizeof now);
    redisReply *r =
        test_cmd("SET %s:{:global}:worker:w-1 {\"id\":\"w-1\",\"host\":\"node-a\",\"pid\":4242,"
                 "\"started_at\":\"%s\",\"last_seen\":\"%s\",\"in_flight\":3,\"concurrency\":4,"
                 "\"draining\":true,\"queues\":[\"default\",\"mail\"]} PX 60000",
                 test_prefix(), now, now);
    freeReplyObject(r);
    test_cmd_int("ZADD %s:{:global}:workers %lld w-1", test_prefix(), (long long)jobd_now_ms());
    json_t *ws = jobctl_json("workers", "--json", NULL);
    ASSERT_EQ(json_array_size(ws), 1);
    json_t *w = json_array_get(ws, 0);
    ASSERT_STR_EQ(str_field(w, "id"), "w-1");
    ASSERT_EQ(int_field(w, "in_flight"), 3);
    ASSERT(json_is_true(json_object_get(w, "draining")));
    json_decref(ws);
    ASSERT_EQ(jobctl(&out, &err, "workers"), 0);
    ASSERT_CONTAINS(out, "IN_FLIGHT");
    ASSERT_CONTAINS(out, "node-a");
    ASSERT_CONTAINS(out, "default,mail");
    ASSERT_CONTAINS(out, "yes");
    free(out);
    free(err);
}

TEST(jobctl_help_and_version)
{
    static const char *const cmds[] = {"submit", "status", "wait",    "cancel", "list",
                                       "stats",  "retry",  "workers", "migrate"};
    char *out, *err, want[64];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(want, sizeof want, "Usage: jobctl %s", cmds[i]);
        ASSERT_EQ(jobctl(&out, &err, cmds[i], "--help"), 0);
        ASSERT_CONTAINS(out, want);
        ASSERT_STR_EQ(err, "");
        free(out);
        free(err);
        ASSERT_EQ(jobctl(&out, &err, cmds[i], "-h"), 0);
        ASSERT_CONTAINS(out, want);
        free(out);
        free(err);
        ASSERT_EQ(jobctl(&out, &err, "help", cmds[i]), 0);
        ASSERT_CONTAINS(out, want);
        free(out);
        free(err);
    }
    ASSERT_EQ(jobctl(&out, &err, "--help"), 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        ASSERT_CONTAINS(out, cmds[i]);
    free(out);
    free(err);
    ASSERT_EQ(jobctl(&out, &err, "--version"), 0);
    ASSERT_STR_EQ(out, "jobctl " JOBD_VERSION "\n");
    free(out);
    free(err);
    ASSERT_EQ(data_keys(), 0);
}
