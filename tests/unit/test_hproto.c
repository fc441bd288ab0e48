/* Unit tests of the exec handler protocol's line parser (daemon/hproto.c,
 * schema/handler-protocol.md): messages with one or several keys, invalid
 * lines, refused values (size limit, UTF-8), cut lines, plain output. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "hproto.h"
#include "test.h"

#define LIMIT 1024

static hproto_msg_t m;

/* Parses s (a C string) with the test's limit into m. */
static hproto_kind_t parse(const char *s)
{
    hproto_clear(&m);
    hproto_parse(s, strlen(s), LIMIT, &m);
    return m.kind;
}

TEST(hproto_single_keys)
{
    ASSERT_EQ(parse("{\"progress\": 0.42}"), HPROTO_MESSAGE);
    ASSERT_EQ(m.has, HPROTO_HAS_PROGRESS);
    ASSERT_DBL_NEAR(m.progress, 0.42, 1e-9);
    ASSERT_EQ(parse("{\"progress\": 7}"), HPROTO_MESSAGE);
    ASSERT_DBL_NEAR(m.progress, 1.0, 1e-9); /* clamped */
    ASSERT_EQ(parse("  {\"progress\": -1}"), HPROTO_MESSAGE);
    ASSERT_DBL_NEAR(m.progress, 0.0, 1e-9);
    ASSERT_EQ(parse("{\"checkpoint\": {\"offset\": 10}}"), HPROTO_MESSAGE);
    ASSERT_EQ(m.has, HPROTO_HAS_CHECKPOINT);
    ASSERT_STR_EQ(m.checkpoint, "{\"offset\":10}"); /* compact */
    ASSERT_EQ(parse("{\"result\": [1, 2]}"), HPROTO_MESSAGE);
    ASSERT_EQ(m.has, HPROTO_HAS_RESULT);
    ASSERT_STR_EQ(m.result, "[1,2]");
    ASSERT_EQ(parse("{\"result\": null}"), HPROTO_MESSAGE);
    ASSERT_STR_EQ(m.result, "null");
    ASSERT_EQ(parse("{\"log\": \"h\\u00e9\"}"), HPROTO_MESSAGE);
    ASSERT_EQ(m.has, HPROTO_HAS_LOG);
    ASSERT_STR_EQ(m.log, "h\xc3\xa9");
    hproto_clear(&m);
}

TEST(hproto_several_keys_on_one_line)
{
    ASSERT_EQ(parse("{\"checkpoint\":{\"a\":1},\"progress\":0.5}"), HPROTO_MESSAGE);
    ASSERT_EQ(m.has, HPROTO_HAS_CHECKPOINT | HPROTO_HAS_PROGRESS);
    ASSERT_STR_EQ(m.checkpoint, "{\"a\":1}");
    ASSERT_DBL_NEAR(m.progress, 0.5, 1e-9);
    ASSERT_EQ(parse("{\"log\":\"x\",\"result\":{},\"checkpoint\":2,\"progress\":1}"),
              HPROTO_MESSAGE);
    ASSERT_EQ(m.has,
              HPROTO_HAS_PROGRESS | HPROTO_HAS_CHECKPOINT | HPROTO_HAS_RESULT | HPROTO_HAS_LOG);
    ASSERT_STR_EQ(m.result, "{}");
    ASSERT_STR_EQ(m.checkpoint, "2");
    ASSERT_STR_EQ(m.log, "x");
    /* The caller may take the texts; clear frees the rest. */
    char *taken = m.result;
    m.result = NULL;
    free(taken);
    hproto_clear(&m);
    ASSERT(m.checkpoint == NULL && m.log == NULL);
}

TEST(hproto_invalid_lines)
{
    static const char *const invalid[] = {
        "{\"progress\":\"half\"}",             /* wrong type */
        "{\"progress\":null}",                 /* wrong type */
        "{\"log\":42}",                        /* wrong type */
        "{\"checkpoint\":{},\"extra\":1}",     /* unknown key beside a known one */
        "{\"result\":",                        /* bad JSON naming a key */
        "{\"result\" :1,}",                    /* bad JSON, blanks before ':' */
        "{\"result\":{\"a\":1},\"result\":2}", /* duplicate key */
        "{\"progress\":0.1} trailing",         /* not one JSON value */
        "{\"log\":\"\xff\xfe bad \xc3\"}",     /* not UTF-8, log only */
        "{\"log\":\"\\ud800\"}",               /* a lone surrogate */
        "{\"progress\":0.5,\"log\":[\"x\"]}",  /* one good key, one bad */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (parse(invalid[i]) != HPROTO_INVALID)
            test_fail(__FILE__, __LINE__, "line %zu (%s): kind %d, want invalid", i, invalid[i],
                      (int)m.kind);
        ASSERT(m.err[0] != '\0');
        ASSERT_EQ(m.has, 0);
        ASSERT(m.checkpoint == NULL && m.result == NULL && m.log == NULL);
    }
    ASSERT_EQ(parse("{\"progress\":\"half\"}"), HPROTO_INVALID);
    ASSERT_CONTAINS(m.err, "progress must be a number");
    ASSERT_EQ(parse("{\"checkpoint\":{},\"extra\":1}"), HPROTO_INVALID);
    ASSERT_CONTAINS(m.err, "unknown key \"extra\"");
    ASSERT_EQ(parse("{\"result\":"), HPROTO_INVALID);
    ASSERT_CONTAINS(m.err, "not valid JSON");
    hproto_clear(&m);
}

TEST(hproto_refused_values)
{
    char line[4096];
    /* Exactly at the limit: taken. One byte over: refused, with both sizes. */
    memset(line, 0, sizeof line);
    strcpy(line, "{\"result\":\"");
    memset(line + 11, 'x', LIMIT - 2);
    strcat(line, "\"}");
    ASSERT_EQ(parse(line), HPROTO_MESSAGE);
    ASSERT_EQ(strlen(m.result), LIMIT);
    strcpy(line, "{\"progress\":0.5,\"checkpoint\":\"");
    memset(line + strlen(line), 'y', LIMIT - 1);
    strcat(line, "\"}");
    ASSERT_EQ(parse(line), HPROTO_REFUSED);
    ASSERT_STR_EQ(m.err, "checkpoint is 1025 bytes, over the 1024-byte limit");
    ASSERT(m.checkpoint == NULL);
    /* A line that carries a result and is not UTF-8 fails the attempt. */
    ASSERT_EQ(parse("{\"result\":\"caf\xe9\"}"), HPROTO_REFUSED);
    ASSERT_STR_EQ(m.err, "result is not valid UTF-8 (byte 14 of its line)");
    ASSERT_EQ(parse("{\"checkpoint\":{\"k\":\"\xc0\xaf\"}}"), HPROTO_REFUSED); /* overlong */
    ASSERT_CONTAINS(m.err, "checkpoint is not valid UTF-8");
    hproto_clear(&m);
}

TEST(hproto_cut_lines)
{
    const char *p = "{\"progress\":0.1,\"result\":\"xxxxxxxx";
    hproto_parse_cut(p, strlen(p), 5000000, LIMIT, &m);
    ASSERT_EQ(m.kind, HPROTO_REFUSED);
    ASSERT_STR_EQ(m.err, "result is over the 1024-byte limit (its line is 5000000 bytes)");
    p = "{\"log\":\"aaaaaaaaa";
    hproto_parse_cut(p, strlen(p), 5000000, LIMIT, &m);
    ASSERT_EQ(m.kind, HPROTO_INVALID);
    p = "{{{{{{{{{{{{{{{{";
    hproto_parse_cut(p, strlen(p), 5000000, LIMIT, &m);
    ASSERT_EQ(m.kind, HPROTO_OUTPUT);
    p = "xxxx \"result\": 1";
    hproto_parse_cut(p, strlen(p), 5000000, LIMIT, &m);
    ASSERT_EQ(m.kind, HPROTO_OUTPUT);
    hproto_clear(&m);
}

TEST(hproto_output_lines)
{
    /* Text, other JSON, objects without a protocol key, a key's name that
     * is not a key, garbage: output, never a message or invalid. */
    static const char *const other[] = {
        "plain text",
        "[1,2]",
        "{\"other\": 1}",
        "{}",
        "{",
        "\xff\xfe{",
        "",
        "{\"say\": \"result\"}",
        "null",
        "  not {\"result\":1}",
        "{\"results\":1}",
        "{\"x\":\"\\\"log\\\":1\"}",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (parse(other[i]) != HPROTO_OUTPUT)
            test_fail(__FILE__, __LINE__, "line %zu (%s): kind %d, want output", i, other[i],
                      (int)m.kind);
    /* A NUL inside: the line's length counts, not strlen. */
    hproto_clear(&m);
    hproto_parse("{\"result\":1}\0x", 14, LIMIT, &m);
    ASSERT_EQ(m.kind, HPROTO_INVALID);
    hproto_clear(&m);
}

TEST(hproto_utf8_check)
{
    ASSERT_EQ(hproto_utf8_check("abc", 3), 3);
    ASSERT_EQ(hproto_utf8_check("a\xc3\xa9z", 4), 4);
    ASSERT_EQ(hproto_utf8_check("\xf0\x9f\x98\x80", 4), 4); /* U+1F600 */
    ASSERT_EQ(hproto_utf8_check("ab\xc3", 3), 2);           /* cut short */
    ASSERT_EQ(hproto_utf8_check("\xed\xa0\x80", 3), 0);     /* a surrogate */
    ASSERT_EQ(hproto_utf8_check("\xf4\x90\x80\x80", 4), 0); /* over U+10FFFF */
    ASSERT_EQ(hproto_utf8_check("\xe0\x80\xaf", 3), 0);     /* overlong */
    ASSERT_EQ(hproto_utf8_check("x\x80", 2), 1);
}

/* ---- protocol v2 (persistent handlers) ---- */

static hproto_line_t l2;

static hproto_line_kind_t parse2(const char *s)
{
    hproto_line_clear(&l2);
    hproto_parse_v2(s, strlen(s), LIMIT, &l2);
    return l2.kind;
}

TEST(hproto_v2_ready_and_untagged)
{
    ASSERT_EQ(parse2("{\"ready\": true}"), HPROTO_READY);
    ASSERT_EQ(parse2("{\"ready\": false}"), HPROTO_BAD_READY);
    ASSERT_EQ(parse2("{\"ready\": true, \"log\": \"x\"}"), HPROTO_BAD_READY);
    /* Plain output stays output; a v1 message without an id is invalid. */
    ASSERT_EQ(parse2("hello"), HPROTO_UNTAGGED);
    ASSERT(l2.has_msg);
    ASSERT_EQ(l2.msg.kind, HPROTO_OUTPUT);
    ASSERT_EQ(parse2("{\"progress\": 0.5}"), HPROTO_UNTAGGED);
    ASSERT_EQ(l2.msg.kind, HPROTO_INVALID);
    ASSERT(strstr(l2.msg.err, "\"id\"") != NULL);
    hproto_line_clear(&l2);
}

TEST(hproto_v2_tagged_lines)
{
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"progress\": 0.5, \"result\": 7}"), HPROTO_TAGGED);
    ASSERT_STR_EQ(l2.id, "j1");
    ASSERT_EQ(l2.done, HPROTO_NOT_DONE);
    ASSERT(l2.has_msg);
    ASSERT_EQ(l2.msg.kind, HPROTO_MESSAGE);
    ASSERT_EQ(l2.msg.has, HPROTO_HAS_PROGRESS | HPROTO_HAS_RESULT);
    ASSERT_STR_EQ(l2.msg.result, "7");
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"done\": \"succeeded\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_DONE_SUCCEEDED);
    ASSERT(!l2.has_msg);
    ASSERT(l2.error == NULL);
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"done\": \"failed\", \"error\": \"boom\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_DONE_FAILED);
    ASSERT_STR_EQ(l2.error, "boom");
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"done\": \"stopped\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_DONE_STOPPED);
    /* Not a job's line when the id is no string. */
    ASSERT_EQ(parse2("{\"id\": 7, \"done\": \"succeeded\"}"), HPROTO_TAGGED);
    ASSERT(l2.id == NULL);
    hproto_line_clear(&l2);
}

TEST(hproto_v2_invalid_tagged_lines)
{
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"done\": \"maybe\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_NOT_DONE);
    ASSERT_EQ(l2.msg.kind, HPROTO_INVALID);
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"error\": \"no done\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_NOT_DONE);
    ASSERT_EQ(l2.msg.kind, HPROTO_INVALID);
    /* A done line with an error that is no string still ends the job. */
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"done\": \"failed\", \"error\": 3}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.done, HPROTO_DONE_FAILED);
    ASSERT(l2.error == NULL);
    ASSERT_EQ(l2.msg.kind, HPROTO_INVALID);
    ASSERT_EQ(parse2("{\"id\": \"j1\", \"color\": \"red\"}"), HPROTO_TAGGED);
    ASSERT_EQ(l2.msg.kind, HPROTO_INVALID);
    ASSERT(strstr(l2.msg.err, "unknown keys") != NULL);
    hproto_line_clear(&l2);
}
