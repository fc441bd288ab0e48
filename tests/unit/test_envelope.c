/* Unit tests of the pure libjobd modules: envelope, ids, durations, URLs. */
#define _GNU_SOURCE
#include <string.h>

#include "envelope.h"
#include "redis_url.h"
#include "test.h"

TEST(envelope_roundtrip)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "q1";
    s.type = "index.docs";
    s.payload_json = "{\"a\":[1,2]}";
    s.priority = 7;
    char *json;
    size_t len;
    char err[256];
    ASSERT_EQ(envelope_encode(&s, "id-1", 1700000000000LL, 0, &json, &len, err, sizeof err), 0);
    envelope_t e;
    ASSERT_EQ(envelope_decode(json, len, &e, err, sizeof err), 0);
    ASSERT_STR_EQ(e.id, "id-1");
    ASSERT_STR_EQ(e.queue, "q1");
    ASSERT_STR_EQ(e.type, "index.docs");
    ASSERT_EQ(e.priority, 7);
    ASSERT_EQ(e.max_attempts, 0); /* not set by the job: the handler's or the default applies */
    ASSERT_EQ(json_array_size(json_object_get(e.payload, "a")), 2);
    envelope_clear(&e);
    free(json);
}

TEST(envelope_rejects_bad_input)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    char err[256];
    s.queue = "q";
    s.type = "t";
    s.payload_json = "{bad";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EJSON);
    ASSERT_CONTAINS(err, "payload is not valid JSON");
    s.payload_json = "[1]";
    s.priority = 10;
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    s.priority = 3;
    s.queue = "a{b}";
    ASSERT_EQ(jobd_job_spec_check(&s, 0, err, sizeof err), JOBD_EINVAL);
    s.queue = "q";
    s.payload_json = "\"0123456789\"";
    ASSERT_EQ(jobd_job_spec_check(&s, 5, err, sizeof err), JOBD_ETOOBIG);
    ASSERT_CONTAINS(err, "over the limit");
    envelope_t e;
    ASSERT_EQ(envelope_decode("{\"v\":2}", 7, &e, err, sizeof err), JOBD_EJSON);
    ASSERT_EQ(envelope_decode("not json", 8, &e, err, sizeof err), JOBD_EJSON);
    ASSERT_CONTAINS(err, "malformed envelope");
}

TEST(id_time_ordered)
{
    char prev[JOBD_ID_LEN + 1] = "", id[JOBD_ID_LEN + 1];
    for (int i = 0; i < 10000; i++) {
        jobd_id_new(id);
        ASSERT_EQ(strlen(id), JOBD_ID_LEN);
        ASSERT_EQ(id[14], '7');
        ASSERT_LT(strcmp(prev, id), 0);
        memcpy(prev, id, sizeof id);
    }
}

TEST(durations_and_times)
{
    ASSERT_EQ(jobd_parse_duration_ms("30s"), 30000);
    ASSERT_EQ(jobd_parse_duration_ms("5m"), 300000);
    ASSERT_EQ(jobd_parse_duration_ms("2h"), 7200000);
    ASSERT_EQ(jobd_parse_duration_ms("1h30m"), 5400000);
    ASSERT_EQ(jobd_parse_duration_ms("250ms"), 250);
    ASSERT_EQ(jobd_parse_duration_ms("12"), 12000);
    ASSERT_EQ(jobd_parse_duration_ms("x"), -1);
    ASSERT_EQ(jobd_parse_duration_ms("5y"), -1);
    ASSERT_EQ(jobd_parse_rfc3339_ms("1970-01-01T00:00:01Z"), 1000);
    ASSERT_EQ(jobd_parse_rfc3339_ms("2026-11-24T10:00:00.5+01:00"), 1795510800500LL);
    ASSERT_EQ(jobd_parse_rfc3339_ms("yesterday"), -1);
    char b[40];
    jobd_format_rfc3339(1795510800500LL, b, sizeof b);
    ASSERT_STR_EQ(b, "2026-11-24T09:00:00.500Z");
}

TEST(redis_urls)
{
    redis_url_t u;
    char err[256];
    ASSERT_EQ(redis_url_parse(NULL, &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 6379);
    ASSERT_EQ(redis_url_parse("redis://:s3cret@db.local:6380/2", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.password, "s3cret");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 2);
    char d[256];
    redis_url_describe(&u, d, sizeof d);
    ASSERT(strstr(d, "s3cret") == NULL);
    ASSERT_EQ(redis_url_parse("unix:///tmp/r.sock?db=3", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.path, "/tmp/r.sock");
    ASSERT_EQ(u.db, 3);
    ASSERT_EQ(redis_url_parse("http://x", &u, err, sizeof err), JOBD_EINVAL);
    ASSERT_EQ(redis_url_parse("redis://:pw@h:99999", &u, err, sizeof err), JOBD_EINVAL);
    ASSERT(strstr(err, "pw") == NULL);
}
