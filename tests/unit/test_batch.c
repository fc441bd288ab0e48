/* Unit tests of `jobctl submit --batch`'s line reader (client/jobctl/batch.c)
 * against the JSON parser: over a corpus of tricky lines, the batch path
 * accepts exactly the lines that jansson (json_loadb with
 * JSON_REJECT_DUPLICATES) + jobd_job_spec_from_json + jobd_job_spec_check
 * accept, and makes the same envelope from each. No Redis. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "envelope.h"
#include "test.h"

typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text); set for lines that hold a NUL byte */
} line_t;

#define L(s)                                                                                       \
    {                                                                                              \
        s, 0                                                                                       \
    }
#define LN(s)                                                                                      \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }

static const line_t corpus[] = {
    /* Values glued to a null: not JSON. */
    L("{\"queue\":\"b\",\"type\":null\"p\",\"priority\":null7}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":null7}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":null1}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"v\":null}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":null}"),
    L("{\"queue\":\"b\",\"type\":null}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":nul}"),
    /* NUL bytes and \u0000 escapes. */
    LN("{\"queue\":\"b\",\"type\":\"p\",\"payload\":1\0x}"),
    LN("{\"queue\":\"b\",\"type\":\"p\",\"payload\":12\0}"),
    LN("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"a\0b\"}"),
    LN("{\"queue\":\"b\",\"type\":\"p\",\"payload\":[1,\0 2]}"),
    LN("{\"queue\":\"b\0\",\"type\":\"p\"}"),
    LN("{\"queue\":\"b\",\"type\":\"p\"}\0"),
    LN("\0{\"queue\":\"b\",\"type\":\"p\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"a\\u0000b\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"k\\u0000\":1}}"),
    L("{\"queue\":\"b\\u0000\",\"type\":\"p\"}"),
    /* Duplicate keys, at the top and inside the payload. */
    L("{\"queue\":\"b\",\"queue\":\"c\",\"type\":\"p\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":1,\"priority\":2}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":1,\"payload\":2}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"a\":1,\"a\":2}}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"qu\\u0065ue\":\"c\"}"),
    /* Trailing garbage and broken structure. */
    L("{\"queue\":\"b\",\"type\":\"p\"} x"),
    L("{\"queue\":\"b\",\"type\":\"p\"}{}"),
    L("{\"queue\":\"b\",\"type\":\"p\"}}"),
    L("{\"queue\":\"b\",\"type\":\"p\",}"),
    L("{\"queue\":\"b\",\"type\":\"p\""),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":[1,2}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"a\":1]}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"unterminated}"),
    L("{\"queue\":\"b\" \"type\":\"p\"}"),
    L("{\"queue\" \"b\",\"type\":\"p\"}"),
    L("{'queue':'b','type':'p'}"),
    L("[\"queue\",\"b\"]"),
    L("\"just a string\""),
    L("{}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":tru}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":true}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":false,\"unknown\":1}"),
    /* Nested payloads, with delimiters inside strings. */
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"x\":[1,{\"y\":[]}],\"z\":\"}]\\\",\"}}"),
    L("{\"payload\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
      "\"queue\":\"b\",\"type\":\"p\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"a\":{\"b\":{\"c\":null}}}}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"\\\\\\\"\"}"),
    /* Unicode escapes and non-ASCII text. */
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"\\u00e9\\ud83d\\ude00 caf\xc3\xa9\"}"),
    L("{\"qu\\u0065ue\":\"b\",\"type\":\"p\"}"),
    L("{\"queue\":\"\\u0062\",\"type\":\"\\u0070\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"pay\\u006coad\":[1]}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"idempotency_key\":\"k\\u00e9\\n\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"\\ud83d\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"\xff\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"\xc3\"}"),
    L("{\"queue\":\"caf\xc3\xa9\",\"type\":\"p\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\"tab\there\"}"),
    /* Numbers: huge, negative, fractional, exponents, leading zeros. */
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":99999999999999999999}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":4294967303}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":-1}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":-0}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":7.0}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":7.5}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":07}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":+7}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"priority\":1e0}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"max_attempts\":4294967295}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"max_attempts\":2147483648}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"max_attempts\":1000}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"timeout_s\":9223372036854775807}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"timeout_s\":9223372036854775808}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"timeout_s\":3153600000}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":1e300}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":1e400}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":-0.0}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":.5}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":0.5}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":5e-1}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"delay_s\":1.}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"retry_base_s\":1e90}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"retry_base_s\":0.25,\"retry_cap_s\":60}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":123456789012345678901234567890}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":1.5e400}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":[1.0e2,-0,0.000,1E+3]}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":-}"),
    /* Whitespace variants (JSON's four; others are not JSON). */
    L("  { \"queue\" : \"b\" ,\t\"type\":\"p\" , \"payload\" : [ 1 , \"a b\" ] }  \r"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":\r{ \"k\" :\t1 }\r}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":1\f}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":1\v}"),
    L("\xc2\xa0{\"queue\":\"b\",\"type\":\"p\"}"),
    /* Other fields. */
    L("{\"queue\":\"b\",\"type\":\"p\",\"id\":\"my-id-1\",\"run_at\":\"2030-01-01T00:00:00Z\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"run_at\":\"2030-13-01T00:00:00Z\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"run_at\":5}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"traceparent\":"
      "\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"v\":1,\"created_at\":\"2020-01-01T00:00:00.000Z\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"v\":2}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"queue_x\":1}"),
    L("{\"queue\":\"a{b}\",\"type\":\"p\"}"),
    L("{\"queue\":\"b\",\"type\":\"p\",\"payload\":{\"path\":\"/data/a\",\"n\":[1,2,3]}}"),
};

/* Line i, printable, for a failure message. */
static const char *show_line(const line_t *l)
{
    static char buf[600];
    size_t n = l->len ? l->len : strlen(l->text), k = 0;
    for (size_t i = 0; i < n && k < sizeof buf - 8; i++) {
        unsigned char ch = (unsigned char)l->text[i];
        k += (size_t)snprintf(buf + k, sizeof buf - k, ch >= 0x20 && ch < 0x7f ? "%c" : "\\x%02x",
                              ch);
    }
    buf[k] = '\0';
    return buf;
}

#define ID "01900000-0000-7000-8000-000000000001"
#define CREATED 1700000000000LL

/* The reference: jansson, then libjobd's own reading of a job object.
 * Returns 1 and sets *env (malloc'd) if the line makes a job. */
static int reference(const line_t *l, char **env, char *why, size_t whylen)
{
    size_t n = l->len ? l->len : strlen(l->text);
    /* RFC 8259: a raw NUL byte is never JSON. jansson 2.14 takes one after
     * a number for the end of its token and goes on ("[1\0,2]" is [1,2]). */
    if (memchr(l->text, '\0', n)) {
        snprintf(why, whylen, "a NUL byte");
        return 0;
    }
    json_error_t je;
    json_t *obj = json_loadb(l->text, n, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        snprintf(why, whylen, "jansson: %s", je.text);
        return 0;
    }
    jobd_job_spec_t s;
    size_t len;
    int ok = jobd_job_spec_from_json(&s, obj, why, whylen) == 0 &&
             envelope_encode(&s, ID, CREATED, 0, env, &len, why, whylen) == 0;
    json_decref(obj);
    return ok;
}

/* The batch path over the line alone. Returns 1 and sets *env if it makes
 * a job. */
static int batch_path(const line_t *l, char **env, char *why, size_t whylen)
{
    size_t n = l->len ? l->len : strlen(l->text);
    FILE *f = fmemopen((void *)l->text, n, "r");
    ASSERT(f != NULL);
    batch_t b = {0};
    int rc = batch_read(&b, f, why, whylen);
    fclose(f);
    int ok = 0;
    if (rc == 0) {
        size_t len;
        if (b.n != 1)
            snprintf(why, whylen, "%zu jobs from one line", b.n);
        else
            ok = envelope_encode(&b.specs[0], ID, CREATED, 0, env, &len, why, whylen) == 0;
    }
    batch_free(&b);
    return ok;
}

TEST(batch_accepts_exactly_what_jansson_accepts)
{
    int accepted = 0, refused = 0, differ = 0;
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        const line_t *l = &corpus[i];
        char *want = NULL, *got = NULL, wwhy[600] = "", gwhy[600] = "";
        int w = reference(l, &want, wwhy, sizeof wwhy);
        int g = batch_path(l, &got, gwhy, sizeof gwhy);
        if (w != g) {
            printf("line %zu %s: jansson %s (%s), batch %s (%s)\n", i, show_line(l),
                   w ? "accepts" : "refuses", wwhy, g ? "accepts" : "refuses", gwhy);
            differ++;
        } else if (w) {
            /* Same envelope: the same fields and values. The payload text
             * may differ in form only (the reference re-encodes a parsed
             * tree; the batch path keeps the text as written). */
            json_t *a = json_loads(want, 0, NULL), *b = json_loads(got, 0, NULL);
            if (!a || !b || !json_equal(a, b)) {
                printf("line %zu %s: envelopes differ:\n  jansson %s\n  batch   %s\n", i,
                       show_line(l), want, got);
                differ++;
            }
            json_decref(a);
            json_decref(b);
            accepted++;
        } else {
            refused++;
        }
        free(want);
        free(got);
    }
    printf("%d lines accepted, %d refused, %d differ from jansson\n", accepted, refused, differ);
    ASSERT_EQ(differ, 0);
    ASSERT_GT(accepted, 10);
    ASSERT_GT(refused, 10);
}

/* The payload is stored as written (whitespace removed): numbers and
 * escapes keep their form, on every line, whatever else the line holds. */
TEST(batch_keeps_payload_text_as_written)
{
    static const char text[] =
        "{\"queue\":\"b\",\"type\":\"p\",\"payload\": {\"n\" : 1.0e2, \"s\":\"\\u00e9 x\"} }\n"
        "{\"qu\\u0065ue\":\"b\",\"type\":\"p\",\"payload\":[1.0e2, -0, \"\\u00e9\"]}\n"
        "{\"queue\":\"b\",\"type\":\"p\",\"pay\\u006coad\":[1.0e2,\"\\/\"]}\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    ASSERT(f != NULL);
    batch_t b = {0};
    char err[600];
    ASSERT_EQ(batch_read(&b, f, err, sizeof err), 0);
    fclose(f);
    ASSERT_EQ(b.n, 3);
    static const char *const want[] = {
        "\"payload\":{\"n\":1.0e2,\"s\":\"\\u00e9 x\"},",
        "\"payload\":[1.0e2,-0,\"\\u00e9\"],",
        "\"payload\":[1.0e2,\"\\/\"],",
    };
    for (size_t i = 0; i < b.n; i++) {
        char *env;
        size_t len;
        ASSERT_EQ(envelope_encode(&b.specs[i], ID, CREATED, 0, &env, &len, err, sizeof err), 0);
        ASSERT_CONTAINS(env, want[i]);
        free(env);
    }
    batch_free(&b);
}

/* A bad line is reported by its number, and nothing else is kept. */
TEST(batch_names_the_bad_line)
{
    static const char text[] = "{\"queue\":\"b\",\"type\":\"p\"}\n"
                               "\n"
                               "{\"queue\":\"b\",\"type\":null\"p\",\"priority\":null7}\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    ASSERT(f != NULL);
    batch_t b = {0};
    char err[600];
    ASSERT_EQ(batch_read(&b, f, err, sizeof err), JOBD_EJSON);
    fclose(f);
    ASSERT_CONTAINS(err, "line 3: malformed JSON");
    batch_free(&b);
}
