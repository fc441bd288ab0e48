/* Unit tests of the queue protocol's pure parts: the envelope as stored,
 * command encoding, ids under threads, times and durations. No Redis. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "proto.h"
#include "redis_url.h"
#include "test.h"

static char *encode(const jobd_job_spec_t *s, int64_t created, size_t max, int *rc)
{
    char *json = NULL, err[256];
    size_t len = 0;
    *rc = envelope_encode(s, "0190c2b4-0000-7000-8000-000000000001", created, max, &json, &len, err,
                          sizeof err);
    if (*rc == 0) ASSERT_EQ(strlen(json), len);
    return json;
}

TEST(envelope_exact_encoding)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "q";
    s.type = "index.docs";
    int rc;
    /* Defaults: null payload, priority 5, optional fields (max_attempts too) absent. */
    char *json = encode(&s, 1700000000123LL, 0, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(json, "{\"v\":1,\"id\":\"0190c2b4-0000-7000-8000-000000000001\",\"queue\":\"q\","
                        "\"type\":\"index.docs\",\"payload\":null,\"priority\":5,"
                        "\"created_at\":\"2023-11-14T22:13:20.123Z\"}");
    free(json);

    /* Every field; the payload text loses only its insignificant blanks. */
    s.payload_json = " { \"a\" : [1, 2.50, -0],\n\t\"s\": \"x y \\\" }\" } ";
    s.priority = 9;
    s.max_attempts = 10;
    s.timeout_s = 3600;
    s.delay_ms = 1000;
    s.idempotency_key = "k \"1\"\n\\";
    s.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    json = encode(&s, 1700000000123LL, 0, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(json,
                  "{\"v\":1,\"id\":\"0190c2b4-0000-7000-8000-000000000001\",\"queue\":\"q\","
                  "\"type\":\"index.docs\",\"payload\":{\"a\":[1,2.50,-0],\"s\":\"x y \\\" }\"},"
                  "\"priority\":9,\"max_attempts\":10,\"created_at\":\"2023-11-14T22:13:20.123Z\","
                  "\"timeout_s\":3600,\"run_at\":\"2023-11-14T22:13:21.123Z\","
                  "\"idempotency_key\":\"k \\\"1\\\"\\u000a\\\\\","
                  "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}");
    /* It is valid JSON that decodes to the same values. */
    envelope_t e;
    char err[256];
    ASSERT_EQ(envelope_decode(json, strlen(json), &e, err, sizeof err), 0);
    ASSERT_EQ(e.priority, 9);
    ASSERT_EQ(e.max_attempts, 10);
    ASSERT_EQ(e.timeout_s, 3600);
    ASSERT_STR_EQ(e.idempotency_key, "k \"1\"\n\\");
    ASSERT_STR_EQ(json_string_value(json_object_get(e.payload, "s")), "x y \" }");
    envelope_clear(&e);
    free(json);

    /* A parsed payload is dumped compactly, in its key order. */
    jobd_job_spec_init(&s);
    s.queue = "q";
    s.type = "t";
    s.payload = json_pack("{s:i, s:s}", "z", 1, "a", "b");
    s.run_at_ms = 1700000000000LL;
    json = encode(&s, 1700000000123LL, 0, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_CONTAINS(json, "\"payload\":{\"z\":1,\"a\":\"b\"},");
    ASSERT_CONTAINS(json, "\"run_at\":\"2023-11-14T22:13:20.000Z\"}");
    json_decref(s.payload);
    free(json);
}

TEST(envelope_payload_limits)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "q";
    s.type = "t";
    char err[256];
    /* The limit applies to the stored (compact) text: blanks are free. */
    s.payload_json = "[1,      2]";
    ASSERT_EQ(jobd_job_spec_check(&s, 5, err, sizeof err), 0);
    ASSERT_EQ(jobd_job_spec_check(&s, 4, err, sizeof err), JOBD_ETOOBIG);
    ASSERT_CONTAINS(err, "5 bytes, over the limit of 4");
    s.payload_json = "{\"a\":1,\"a\":2}";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EJSON);
    s.payload_json = "[1] x";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EJSON);
    s.payload_json = "\"unterminated";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EJSON);
    s.payload_json = "42";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), 0);
    /* Idempotency keys are text. */
    s.idempotency_key = "bad \xff utf-8";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "UTF-8");
    s.idempotency_key = "caf\xc3\xa9";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), 0);
    s.idempotency_key = "\xc3";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    s.idempotency_key = NULL;
    /* Names are ASCII whatever the locale. */
    s.queue = "qu\xc3\xa9ue";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    s.queue = "q";
    s.traceparent = "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    s.traceparent = NULL;
    s.run_at_ms = 300000000000000LL; /* year 11476 */
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
}

TEST(envelope_status_fields)
{
    const char *f[] = {"env", "state", "progress", "checkpoint", "started_at"};
    const char *v[] = {"[1,2]", "queued", "0.25", "{\"i\":1}", "1700000000123"};
    size_t l[5];
    for (int i = 0; i < 5; i++)
        l[i] = strlen(v[i]);
    /* An envelope that is not an object still gives an object. */
    json_t *st = envelope_status(f, v, l, 5);
    ASSERT(json_is_object(st));
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "raw_envelope")), "[1,2]");
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "state")), "queued");
    ASSERT_EQ(json_integer_value(json_object_get(st, "attempt")), 0); /* not claimed yet */
    ASSERT_DBL_NEAR(json_real_value(json_object_get(st, "progress")), 0.25, 1e-12);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "checkpoint"), "i")), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "started_at")), "2023-11-14T22:13:20.123Z");
    json_decref(st);
    ASSERT(envelope_status(f + 1, v + 1, l + 1, 4) == NULL); /* no envelope: no job */
}

TEST(proto_resp_matches_hiredis)
{
    proto_argv_t a;
    proto_argv_init(&a);
    for (int round = 0; round < 2; round++) {
        proto_argv_reset(&a);
        proto_argv_script(&a, "0123456789012345678901234567890123456789", "p:{q}:");
        proto_argv_add(&a, "bin\0ary", 7);
        proto_argv_adds(&a, NULL);
        proto_argv_addll(&a, -9223372036854775807LL - 1);
        proto_argv_addll(&a, 0);
        proto_argv_addll(&a, 1234567890123LL);
        proto_argv_addd(&a, 0.5);
        for (int i = 0; i < 300; i++)
            proto_argv_adds(&a, "x");
        size_t len;
        const char *resp = proto_argv_resp(&a, &len);
        const size_t *lens;
        const char **argv = proto_argv_finish(&a, &lens);
        ASSERT(resp && argv);
        ASSERT_STR_EQ(argv[6], "-9223372036854775808");
        ASSERT_STR_EQ(argv[7], "0");
        ASSERT_STR_EQ(argv[9], "0.5");
        char *want;
        long long wl = redisFormatCommandArgv(&want, a.argc, argv, lens);
        ASSERT_EQ(wl, (long long)len);
        ASSERT(memcmp(want, resp, len) == 0);
        redisFreeCommand(want);
    }
    proto_argv_free(&a);
}

#define ID_THREADS 4
#define ID_PER_THREAD 20000

static void *make_ids(void *arg)
{
    char *out = arg;
    for (int i = 0; i < ID_PER_THREAD; i++)
        jobd_id_new(out + (size_t)i * (JOBD_ID_LEN + 1));
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

TEST(id_unique_across_threads)
{
    size_t n = (size_t)ID_THREADS * ID_PER_THREAD, sz = JOBD_ID_LEN + 1;
    char *ids = calloc(n, sz);
    pthread_t th[ID_THREADS];
    for (int i = 0; i < ID_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, make_ids, ids + (size_t)i * ID_PER_THREAD * sz), 0);
    for (int i = 0; i < ID_THREADS; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    /* Each thread's ids are in order; all are distinct. */
    for (int t = 0; t < ID_THREADS; t++)
        for (int i = 1; i < ID_PER_THREAD; i++) {
            char *p = ids + ((size_t)t * ID_PER_THREAD + i) * sz;
            ASSERT_LT(strcmp(p - sz, p), 0);
        }
    qsort(ids, n, sz, cmp_id);
    for (size_t i = 1; i < n; i++)
        ASSERT(strcmp(ids + (i - 1) * sz, ids + i * sz) != 0);
    free(ids);
}

TEST(times_format_and_parse)
{
    char b[40];
    jobd_format_rfc3339(0, b, sizeof b);
    ASSERT_STR_EQ(b, "1970-01-01T00:00:00.000Z");
    jobd_format_rfc3339(-1, b, sizeof b);
    ASSERT_STR_EQ(b, "1969-12-31T23:59:59.999Z");
    jobd_format_rfc3339(951782400000LL, b, sizeof b); /* leap day */
    ASSERT_STR_EQ(b, "2000-02-29T00:00:00.000Z");
    jobd_format_rfc3339(1700000000123LL, b, 11); /* truncated, still a string */
    ASSERT_STR_EQ(b, "2023-11-14");
    /* Agrees with gmtime_r and round-trips, across the years. */
    for (int64_t ms = -2208988800000LL; ms < 4102444800000LL; ms += 86400000LL * 37 + 3661001) {
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[96];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        if (ms >= 0) {
            jobd_format_rfc3339(ms, b, sizeof b);
            ASSERT_STR_EQ(b, want);
        }
        jobd_format_rfc3339(ms, b, sizeof b);
        ASSERT_EQ(jobd_parse_rfc3339_ms(b), ms);
    }
    ASSERT_EQ(jobd_parse_rfc3339_ms("2026-11-24T10:00:00-05:30"), 1795514400000LL + 19800000LL);
    /* A short offset must not be read past the end of the string. */
    ASSERT_EQ(jobd_parse_rfc3339_ms("2026-11-24T10:00:00+1:00"), -1);
    ASSERT_EQ(jobd_parse_rfc3339_ms("2026-11-24T10:00:00+01"), -1);
    ASSERT_EQ(jobd_parse_rfc3339_ms("2026-11-24T10:00:00+01:00x"), -1);
}

TEST(durations_strict)
{
    ASSERT_EQ(jobd_parse_duration_ms("1.5h"), 5400000);
    ASSERT_EQ(jobd_parse_duration_ms("0.25s"), 250);
    ASSERT_EQ(jobd_parse_duration_ms("1d2h"), 93600000);
    ASSERT_EQ(jobd_parse_duration_ms("0x10s"), -1);
    ASSERT_EQ(jobd_parse_duration_ms("1e3s"), -1);
    ASSERT_EQ(jobd_parse_duration_ms("inf"), -1);
    ASSERT_EQ(jobd_parse_duration_ms("1.s"), -1);
    ASSERT_EQ(jobd_parse_duration_ms("-5s"), -1);
    ASSERT_EQ(jobd_parse_duration_ms(""), -1);
    ASSERT_EQ(jobd_parse_duration_ms("99999999999999d"), -1);
}

/* The envelope as encoded against schema/job.v1.schema.json: the same field
 * set, required fields always present, string fields matching the schema's
 * patterns (POSIX ERE understands them) and integers within its bounds. */
static void check_against_schema(json_t *schema, const char *json)
{
    json_t *env = json_loads(json, 0, NULL), *props = json_object_get(schema, "properties");
    ASSERT(env && props);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        json_t *p = json_object_get(props, k);
        if (!p) test_fail(__FILE__, __LINE__, "field %s is not in the schema", k);
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *pattern = json_string_value(json_object_get(p, "pattern"));
        if (type && strcmp(type, "string") == 0) ASSERT(json_is_string(v));
        if (type && strcmp(type, "integer") == 0) {
            ASSERT(json_is_integer(v));
            ASSERT_GE(json_integer_value(v), json_integer_value(json_object_get(p, "minimum")));
            ASSERT_LE(json_integer_value(v), json_integer_value(json_object_get(p, "maximum")));
        }
        if (json_object_get(p, "const")) ASSERT(json_equal(v, json_object_get(p, "const")));
        if (pattern) {
            regex_t re;
            ASSERT_EQ(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
            if (regexec(&re, json_string_value(v), 0, NULL, 0) != 0)
                test_fail(__FILE__, __LINE__, "%s \"%s\" does not match %s", k,
                          json_string_value(v), pattern);
            regfree(&re);
        }
    }
    size_t i;
    json_array_foreach(json_object_get(schema, "required"), i, v)
        ASSERT(json_object_get(env, json_string_value(v)) != NULL);
    json_decref(env);
}

TEST(envelope_matches_json_schema)
{
    char path[1024];
    const char *src = getenv("JOBD_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/schema/job.v1.schema.json", src ? src : ".");
    json_error_t je;
    json_t *schema = json_load_file(path, 0, &je);
    if (!schema) test_fail(__FILE__, __LINE__, "%s: %s", path, je.text);
    ASSERT(json_is_false(json_object_get(schema, "additionalProperties")));

    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "default";
    s.type = "index.docs";
    int rc;
    char *json = encode(&s, 1700000000123LL, 0, &rc);
    ASSERT_EQ(rc, 0);
    check_against_schema(schema, json);
    free(json);

    s.payload_json = "{\"a\": [1, {\"b\": null}]}";
    s.priority = 0;
    s.max_attempts = 1000;
    s.timeout_s = 1;
    s.run_at_ms = 1800000000000LL;
    s.idempotency_key = "key: caf\xc3\xa9";
    s.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    s.id = "client.chosen:id-1";
    s.retry_base_ms = 1500;
    s.retry_cap_ms = 600000;
    json = encode(&s, 1700000000123LL, 0, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_CONTAINS(json, "\"retry_base_s\":1.5,\"retry_cap_s\":600");
    check_against_schema(schema, json);
    /* Every property of the schema is one the encoder writes. */
    json_t *env = json_loads(json, 0, NULL);
    ASSERT_EQ(json_object_size(env), json_object_size(json_object_get(schema, "properties")));
    json_decref(env);
    free(json);
    json_decref(schema);
}

TEST(redis_url_userinfo)
{
    redis_url_t u;
    char err[256];
    ASSERT_EQ(redis_url_parse("redis://:p@ss/w:rd@db.local:6380/1", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.password, "p@ss/w:rd");
    ASSERT_STR_EQ(u.host, "db.local");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 1);
    ASSERT_EQ(redis_url_parse("redis://app:p%40ss%3a%zz@h", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "app");
    ASSERT_STR_EQ(u.password, "p@ss:%zz");
    ASSERT_STR_EQ(u.host, "h");
    ASSERT_EQ(redis_url_parse("unix://:pw@/tmp/a@b/redis.sock?db=2", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.password, "pw");
    ASSERT_STR_EQ(u.path, "/tmp/a@b/redis.sock");
    ASSERT_EQ(u.db, 2);
    ASSERT_EQ(redis_url_parse("unix:///tmp/a@b.sock", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.password, "");
    ASSERT_STR_EQ(u.path, "/tmp/a@b.sock");
}

/* The enum and the embedded table come from the one PROTO_SCRIPTS list:
 * every id names its own file, in order, and has a text. */
TEST(protocol_script_list)
{
    static const char *const want[] = {
#define WANT_NAME(id, name) #name,
        PROTO_SCRIPTS(WANT_NAME)
#undef WANT_NAME
    };
    ASSERT_EQ(sizeof want / sizeof want[0], PROTO_NSCRIPTS);
    for (int s = 0; s < PROTO_NSCRIPTS; s++) {
        size_t len = 0;
        ASSERT_STR_EQ(proto_script_name((proto_script_t)s), want[s]);
        ASSERT(proto_script_text((proto_script_t)s, &len) != NULL);
        ASSERT_GT(len, 0);
    }
    ASSERT_STR_EQ(proto_script_name(PROTO_CLAIM), "claim");
    ASSERT_STR_EQ(proto_script_name(PROTO_UNACQUIRE), "unacquire");
}
