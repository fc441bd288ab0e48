/* Unit tests of numbers from outside: an envelope read back from Redis, a
 * job object (batch line), the config file and the handlers file, each
 * given absurd values. Every number that becomes an integer or a duration
 * must be range- and sign-checked with a message naming the field; none may
 * reach a cast it does not fit (undefined behaviour, caught by the
 * sanitizer build) or be truncated to an int. No Redis. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "envelope.h"
#include "handlers.h"
#include "num.h"
#include "test.h"

#define HUNDRED_YEARS_MS (3153600000LL * 1000)

/* ---- the shared helper (client/libjobd/num.c) ---- */

TEST(num_double_to_int_refuses_what_does_not_fit)
{
    int64_t v = 42;
    ASSERT_EQ(num_double_to_int(1e90, INT64_MIN, INT64_MAX, &v), -1);
    ASSERT_EQ(num_double_to_int(-1e300, INT64_MIN, INT64_MAX, &v), -1);
    ASSERT_EQ(num_double_to_int(9223372036854775808.0, INT64_MIN, INT64_MAX, &v), -1); /* 2^63 */
    ASSERT_EQ(num_double_to_int(1.0 / 0.0, INT64_MIN, INT64_MAX, &v), -1);
    ASSERT_EQ(num_double_to_int(0.0 / 0.0, INT64_MIN, INT64_MAX, &v), -1);
    ASSERT_EQ(num_double_to_int(1.5, 0, 10, &v), -1);
    ASSERT_EQ(num_double_to_int(4294967295.0, 0, 2147483647, &v), -1);
    ASSERT_EQ(v, 42); /* untouched on failure */
    ASSERT_EQ(num_double_to_int(-0.0, 0, 9, &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(num_double_to_int(9223372036854774784.0, 0, INT64_MAX, &v), 0);
    ASSERT_EQ(v, 9223372036854774784LL);
    ASSERT_EQ(num_double_to_int(-7.0, -10, 10, &v), 0);
    ASSERT_EQ(v, -7);
}

TEST(num_json_conversions_name_the_field)
{
    char err[256];
    int64_t v = 0;
    json_t *j = json_integer(4294967295LL);
    ASSERT_EQ(num_json_int(j, "limit", 0, 1000000, &v, err, sizeof err), JOBD_EINVAL);
    ASSERT_STR_EQ(err, "\"limit\" must be an integer in 0..1000000 (got 4294967295)");
    json_decref(j);
    j = json_real(1e90);
    ASSERT_EQ(num_json_int(j, "x", 0, 9, &v, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "(got 1e+90)");
    ASSERT_EQ(num_json_seconds_ms(j, "retry_base_s", 0, 3153600000000LL, &v, err, sizeof err),
              JOBD_EINVAL);
    ASSERT_STR_EQ(err, "\"retry_base_s\" must be a number of seconds in 0..3153600000 "
                       "(got 1e+90)");
    json_decref(j);
    j = json_real(1.5);
    ASSERT_EQ(num_json_int(j, "max_attempts", 1, 1000, &v, err, sizeof err), JOBD_EINVAL);
    ASSERT_EQ(num_json_seconds_ms(j, "delay_s", 0, 10000, &v, err, sizeof err), 0);
    ASSERT_EQ(v, 1500);
    json_decref(j);
    j = json_real(-0.0);
    ASSERT_EQ(num_json_seconds_ms(j, "delay_s", 0, 10000, &v, err, sizeof err), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(num_json_int(j, "priority", 0, 9, &v, err, sizeof err), 0);
    ASSERT_EQ(v, 0);
    json_decref(j);
    j = json_real(0.0015); /* rounded to the nearest ms, as everywhere */
    ASSERT_EQ(num_json_seconds_ms(j, "delay_s", 0, 10000, &v, err, sizeof err), 0);
    ASSERT_EQ(v, 2);
    json_decref(j);
    j = json_real(-5);
    ASSERT_EQ(num_json_seconds_ms(j, "retention.dead", 0, 10000, &v, err, sizeof err), JOBD_EINVAL);
    ASSERT_STR_EQ(err, "\"retention.dead\" must be a number of seconds in 0..10 (got -5)");
    json_decref(j);
    j = json_string("60");
    ASSERT_EQ(num_json_int(j, "timeout_s", 1, 10, &v, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "(got a string)");
    json_decref(j);
    ASSERT_EQ(num_json_int(NULL, "timeout_s", 1, 10, &v, err, sizeof err), JOBD_EINVAL);
}

TEST(num_strings_and_saturation)
{
    int64_t v = 7;
    ASSERT_EQ(num_parse_int("65535", 0, 65535, &v), 0);
    ASSERT_EQ(v, 65535);
    ASSERT_EQ(num_parse_int("-0", 0, 65535, &v), 0);
    ASSERT_EQ(v, 0);
    static const char *const bad[] = {
        "65536", "4294967296", "99999999999999999999", "", "x", " 1", "+1", "0x10", "1 ", "-",
        "1.0",   NULL};
    for (int i = 0; bad[i]; i++)
        if (num_parse_int(bad[i], 0, 65535, &v) == 0)
            test_fail(__FILE__, __LINE__, "num_parse_int(\"%s\") accepted", bad[i]);
    ASSERT_EQ(num_parse_int(NULL, 0, 1, &v), -1);
    ASSERT_EQ(num_mul_sat(9223372036854775807LL, 1000), INT64_MAX);
    ASSERT_EQ(num_mul_sat(-9223372036854775807LL, 1000), INT64_MIN);
    ASSERT_EQ(num_mul_sat(3153600000LL, 1000), 3153600000000LL);
    ASSERT_EQ(num_add_sat(INT64_MAX - 5, 10), INT64_MAX);
    ASSERT_EQ(num_add_sat(INT64_MIN + 5, -10), INT64_MIN);
    ASSERT_EQ(num_add_sat(1, 2), 3);
}

/* ---- envelope_decode: the schema's ranges ---- */

/* Decodes a v1 envelope with extra (",\"k\":v..." or "") appended. */
static int decode_with(const char *extra, envelope_t *e, char *err, size_t errlen)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"v\":1,\"id\":\"id-1\",\"queue\":\"q\",\"type\":\"noop\",\"payload\":null,"
             "\"created_at\":\"2026-01-01T00:00:00.000Z\"%s}",
             extra);
    return envelope_decode(text, strlen(text), e, err, errlen);
}

/* The envelope is refused, and the reason names field. */
static void refused(const char *extra, const char *field)
{
    envelope_t e;
    char err[512] = "";
    int rc = decode_with(extra, &e, err, sizeof err);
    if (rc != JOBD_EJSON) {
        if (rc == 0) envelope_clear(&e);
        test_fail(__FILE__, __LINE__, "envelope with %s: decode returned %d, want JOBD_EJSON",
                  extra, rc);
    }
    if (!strstr(err, field))
        test_fail(__FILE__, __LINE__, "envelope with %s: \"%s\" does not name %s", extra, err,
                  field);
    ASSERT(e.root == NULL);
}

TEST(envelope_decode_refuses_out_of_range_numbers)
{
    /* timeout_s: integer 1..3153600000 (100 years). */
    refused(",\"timeout_s\":9223372036854775807", "\"timeout_s\"");
    refused(",\"timeout_s\":3153600001", "\"timeout_s\"");
    refused(",\"timeout_s\":-1", "\"timeout_s\"");
    refused(",\"timeout_s\":0", "\"timeout_s\"");
    refused(",\"timeout_s\":1e300", "\"timeout_s\"");
    refused(",\"timeout_s\":1.5", "\"timeout_s\"");
    refused(",\"timeout_s\":\"60\"", "\"timeout_s\"");
    /* max_attempts: integer 1..1000 (4294967295 was -1 as an int). */
    refused(",\"max_attempts\":4294967295", "\"max_attempts\"");
    refused(",\"max_attempts\":2147483648", "\"max_attempts\"");
    refused(",\"max_attempts\":1001", "\"max_attempts\"");
    refused(",\"max_attempts\":0", "\"max_attempts\"");
    refused(",\"max_attempts\":-1", "\"max_attempts\"");
    refused(",\"max_attempts\":2.5", "\"max_attempts\"");
    /* priority: integer 0..9 (4294967297 was 1 as an int). */
    refused(",\"priority\":4294967297", "\"priority\"");
    refused(",\"priority\":10", "\"priority\"");
    refused(",\"priority\":-1", "\"priority\"");
    refused(",\"priority\":1e90", "\"priority\"");
    /* retry_base_s, retry_cap_s: numbers > 0. */
    refused(",\"retry_base_s\":-1", "\"retry_base_s\"");
    refused(",\"retry_base_s\":0", "\"retry_base_s\"");
    refused(",\"retry_cap_s\":-1e300", "\"retry_cap_s\"");
    refused(",\"retry_cap_s\":\"1h\"", "\"retry_cap_s\"");
    /* v: the constant 1. */
    refused(",\"v\":4294967297", "\"v\"");
}

TEST(envelope_decode_keeps_in_range_numbers)
{
    envelope_t e;
    char err[512];
    ASSERT_EQ(decode_with(",\"timeout_s\":3153600000,\"max_attempts\":1000", &e, err, sizeof err),
              0);
    ASSERT_EQ(e.timeout_s, 3153600000LL);
    ASSERT_EQ(e.max_attempts, 1000);
    envelope_clear(&e);
    ASSERT_EQ(decode_with(",\"timeout_s\":1,\"max_attempts\":1", &e, err, sizeof err), 0);
    ASSERT_EQ(e.timeout_s, 1);
    ASSERT_EQ(e.max_attempts, 1);
    envelope_clear(&e);
    /* -0 is 0 (an integer, in range); 7.0 is a whole number, as JSON Schema
     * counts integers. */
    ASSERT_EQ(decode_with(",\"priority\":-0", &e, err, sizeof err), 0);
    ASSERT_EQ(e.priority, 0);
    envelope_clear(&e);
    ASSERT_EQ(decode_with(",\"priority\":9,\"max_attempts\":7.0", &e, err, sizeof err), 0);
    ASSERT_EQ(e.priority, 9);
    ASSERT_EQ(e.max_attempts, 7);
    envelope_clear(&e);
    /* The schema sets no maximum backoff: a huge one is the 100-year
     * ceiling, not an undefined cast; a tiny positive one is 1 ms, not
     * "unset". */
    ASSERT_EQ(decode_with(",\"retry_base_s\":1e90,\"retry_cap_s\":1e300", &e, err, sizeof err), 0);
    ASSERT_EQ(e.retry_base_ms, HUNDRED_YEARS_MS);
    ASSERT_EQ(e.retry_cap_ms, HUNDRED_YEARS_MS);
    envelope_clear(&e);
    ASSERT_EQ(decode_with(",\"retry_base_s\":0.0001,\"retry_cap_s\":1.5", &e, err, sizeof err), 0);
    ASSERT_EQ(e.retry_base_ms, 1);
    ASSERT_EQ(e.retry_cap_ms, 1500);
    envelope_clear(&e);
    /* Absent: not set. */
    ASSERT_EQ(decode_with("", &e, err, sizeof err), 0);
    ASSERT_EQ(e.timeout_s, 0);
    ASSERT_EQ(e.max_attempts, 0);
    ASSERT_EQ(e.retry_base_ms, 0);
    envelope_clear(&e);
}

/* ---- jobd_job_spec_from_json (batch lines) and the submit check ---- */

/* The job object {"queue":"q","type":"t"EXTRA} is refused by
 * jobd_job_spec_from_json or, failing that, by jobd_job_spec_check, with a
 * message naming field. */
static void job_refused(const char *extra, const char *field)
{
    char text[512], err[512] = "";
    snprintf(text, sizeof text, "{\"queue\":\"q\",\"type\":\"t\"%s}", extra);
    json_t *o = json_loads(text, 0, NULL);
    ASSERT(o != NULL);
    jobd_job_spec_t s;
    int rc = jobd_job_spec_from_json(&s, o, err, sizeof err);
    if (rc == 0) rc = jobd_job_spec_check(&s, 0, err, sizeof err);
    json_decref(o);
    if (rc != JOBD_EINVAL)
        test_fail(__FILE__, __LINE__, "job %s: returned %d, want JOBD_EINVAL", text, rc);
    if (!strstr(err, field))
        test_fail(__FILE__, __LINE__, "job %s: \"%s\" does not name %s", text, err, field);
}

TEST(job_from_json_refuses_out_of_range_numbers)
{
    job_refused(",\"delay_s\":1e300", "delay_s");
    job_refused(",\"delay_s\":-1", "delay_s");
    job_refused(",\"delay_s\":3153600001", "delay_s");
    job_refused(",\"retry_base_s\":1e90", "retry_base_s");
    job_refused(",\"retry_cap_s\":-0.5", "retry_cap_s");
    job_refused(",\"timeout_s\":9223372036854775807", "timeout_s");
    job_refused(",\"timeout_s\":-1", "timeout_s");
    job_refused(",\"timeout_s\":1.5", "timeout_s");
    job_refused(",\"max_attempts\":4294967295", "max_attempts");
    job_refused(",\"max_attempts\":2147483648", "max_attempts");
    job_refused(",\"priority\":4294967296", "priority");
    job_refused(",\"priority\":1e300", "priority");
    job_refused(",\"v\":4294967297", "version");

    /* In range: kept, -0 included. */
    json_t *o = json_loads("{\"queue\":\"q\",\"type\":\"t\",\"delay_s\":-0,\"priority\":-0,"
                           "\"timeout_s\":3153600000,\"retry_base_s\":0.25,\"max_attempts\":1000}",
                           0, NULL);
    ASSERT(o != NULL);
    jobd_job_spec_t s;
    char err[512];
    ASSERT_EQ(jobd_job_spec_from_json(&s, o, err, sizeof err), 0);
    ASSERT_EQ(s.delay_ms, 0);
    ASSERT_EQ(s.priority, 0);
    ASSERT_EQ(s.timeout_s, 3153600000LL);
    ASSERT_EQ(s.retry_base_ms, 250);
    ASSERT_EQ(s.max_attempts, 1000);
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), 0);
    json_decref(o);
}

TEST(job_spec_check_names_the_field)
{
    jobd_job_spec_t s;
    char err[512];
    jobd_job_spec_init(&s);
    s.queue = "q";
    s.type = "t";
    s.timeout_s = 9223372036854775807LL;
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "timeout");
    s.timeout_s = 0;
    s.delay_ms = -1;
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "delay");
    s.delay_ms = 0;
    s.retry_cap_ms = HUNDRED_YEARS_MS + 1;
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "retry_cap");
}

/* ---- the config file ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Loads a config file holding text (and the flags in args, NULL-terminated
 * or NULL); returns config_load's code, with its message in err. */
static int load_config(const char *text, const char *const *args, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/c.json", test_tmpdir());
    write_file(path, text);
    unsetenv("JOBD_HTTP");
    unsetenv("JOBD_CONFIG");
    char *argv[16] = {"jobd", "--config", path};
    int argc = 3;
    for (; args && *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    config_t c;
    int rc = config_load(&c, argc, argv, err, errlen);
    config_free(&c); /* whatever it returned, as main.c does */
    return rc;
}

static void config_refused(const char *text, const char *const *args, const char *key)
{
    char err[512] = "";
    int rc = load_config(text, args, err, sizeof err);
    if (rc != CONFIG_INVALID)
        test_fail(__FILE__, __LINE__, "config %s: returned %d, want %d", text, rc, CONFIG_INVALID);
    if (!strstr(err, key))
        test_fail(__FILE__, __LINE__, "config %s: \"%s\" does not name %s", text, err, key);
}

TEST(config_refuses_out_of_range_numbers)
{
    config_refused("{\"retention\": {\"succeeded\": 1e81}}", NULL, "retention.succeeded");
    config_refused("{\"retention\": {\"dead\": -5}}", NULL, "retention.dead");
    config_refused("{\"retention\": {\"dead\": \"1d\"}}", NULL, "retention.dead");
    config_refused("{\"queues\": {\"a\": {\"limit\": 4294967295}}}", NULL, "queues.a");
    config_refused("{\"queues\": {\"a\": {\"limit\": -1}}}", NULL, "queues.a");
    config_refused("{\"queues\": {\"a\": 4294967296}}", NULL, "queues.a");
    config_refused("{\"queues\": {\"a\": {\"weight\": 2147483648}}}", NULL, "queues.a");
    config_refused("{\"queues\": {\"a\": {\"weight\": 1.5}}}", NULL, "queues.a");
    config_refused("{\"concurrency\": 4294967297}", NULL, "concurrency");
    config_refused("{\"lease\": 1e81}", NULL, "lease");
    config_refused("{\"http\": \"127.0.0.1:4294967296\"}", NULL, "http");
    config_refused("{}", (const char *[]){"--http", "127.0.0.1:65536", NULL}, "http");
    config_refused("{}", (const char *[]){"--http", "127.0.0.1:x", NULL}, "http");

    char err[512];
    ASSERT_EQ(load_config("{\"retention\": {\"succeeded\": 0.5, \"dead\": 0},"
                          " \"queues\": {\"a\": {\"weight\": 1000, \"limit\": 1000000}},"
                          " \"http\": \"127.0.0.1:0\"}",
                          NULL, err, sizeof err),
              CONFIG_OK);
}

TEST(config_keeps_in_range_numbers)
{
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/c.json", test_tmpdir());
    write_file(path, "{\"retention\": {\"succeeded\": 0.5, \"dead\": 3153600000},"
                     " \"queues\": {\"a\": {\"weight\": 1000, \"limit\": 1000000}, \"b\": 3}}");
    unsetenv("JOBD_HTTP");
    unsetenv("JOBD_CONFIG");
    unsetenv("JOBD_QUEUES");
    char *argv[] = {"jobd", "--config", path, NULL};
    config_t c;
    ASSERT_EQ(config_load(&c, 3, argv, err, sizeof err), CONFIG_OK);
    ASSERT_EQ(c.ttl_succeeded_ms, 500);
    ASSERT_EQ(c.ttl_dead_ms, HUNDRED_YEARS_MS);
    ASSERT_EQ(c.nqueues, 2);
    ASSERT_EQ(c.queues[0].weight, 1000);
    ASSERT_EQ(c.queues[0].limit, 1000000);
    ASSERT_EQ(c.queues[1].weight, 3);
    config_free(&c);
}

/* ---- the handlers file ---- */

static void handler_refused(const char *spec, const char *key)
{
    char path[600], text[512], err[512] = "";
    snprintf(path, sizeof path, "%s/h.json", test_tmpdir());
    snprintf(text, sizeof text, "{\"t\": {\"builtin\": \"noop\", %s}}", spec);
    write_file(path, text);
    handlers_t h;
    int rc = handlers_load(&h, path, err, sizeof err);
    handlers_free(&h);
    if (rc != -1) test_fail(__FILE__, __LINE__, "handler %s: returned %d, want -1", text, rc);
    if (!strstr(err, key))
        test_fail(__FILE__, __LINE__, "handler %s: \"%s\" does not name %s", text, err, key);
}

TEST(handlers_refuse_out_of_range_numbers)
{
    handler_refused("\"timeout_s\": 1e300", "timeout_s");
    handler_refused("\"timeout_s\": -1", "timeout_s");
    handler_refused("\"timeout_s\": \"1h\"", "timeout_s");
    handler_refused("\"timeout_s\": 3153600001", "timeout_s");
    handler_refused("\"retry_base_s\": 1e90", "retry_base_s");
    handler_refused("\"retry_cap_s\": -2", "retry_cap_s");
    handler_refused("\"max_attempts\": 2147483648", "max_attempts");
    handler_refused("\"max_attempts\": 4294967297", "max_attempts");
    handler_refused("\"max_attempts\": 1001", "max_attempts");

    char path[600], err[512];
    snprintf(path, sizeof path, "%s/h.json", test_tmpdir());
    write_file(path, "{\"t\": {\"builtin\": \"noop\", \"timeout_s\": 3153600000,"
                     " \"retry_base_s\": 0.25, \"retry_cap_s\": 60, \"max_attempts\": 1000}}");
    handlers_t h;
    ASSERT_EQ(handlers_load(&h, path, err, sizeof err), 0);
    const handler_t *t = handlers_find(&h, "t");
    ASSERT(t != NULL);
    ASSERT_EQ(t->timeout_ms, HUNDRED_YEARS_MS);
    ASSERT_EQ(t->retry_base_ms, 250);
    ASSERT_EQ(t->retry_cap_ms, 60000);
    ASSERT_EQ(t->max_attempts, 1000);
    handlers_free(&h);
}
