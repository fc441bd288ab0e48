/* Unit tests of the console's pure pieces: URL decoding and query strings
 * (http.c), SHA-256 and the digest comparison (admin.c). No Redis, no loop. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "http.h"
#include "test.h"

TEST(console_percent_decode)
{
    char out[64];
    ASSERT_EQ(http_percent_decode("/a%3Ab", 6, out, sizeof out), 4);
    ASSERT_STR_EQ(out, "/a:b");
    ASSERT_EQ(http_percent_decode("%41%6a", 6, out, sizeof out), 2);
    ASSERT_STR_EQ(out, "Aj");
    ASSERT_EQ(http_percent_decode("%4", 2, out, sizeof out), -1);  /* cut short */
    ASSERT_EQ(http_percent_decode("%zz", 3, out, sizeof out), -1); /* not hex */
    ASSERT_EQ(http_percent_decode("a%00b", 5, out, sizeof out), -1);
    ASSERT_EQ(http_percent_decode("abcdef", 6, out, 6), -1); /* no room for the NUL */
    ASSERT_EQ(http_percent_decode("abcdef", 3, out, 6), 3);  /* only n bytes */
    ASSERT_STR_EQ(out, "abc");
}

TEST(console_query_get)
{
    char out[64];
    const char *q = "state=dead&offset=20&q=a%3Ab+c&flag&limit=";
    ASSERT_EQ(http_query_get(q, "state", out, sizeof out), 4);
    ASSERT_STR_EQ(out, "dead");
    ASSERT_EQ(http_query_get(q, "q", out, sizeof out), 5);
    ASSERT_STR_EQ(out, "a:b c");
    ASSERT_EQ(http_query_get(q, "flag", out, sizeof out), 0);
    ASSERT_EQ(http_query_get(q, "limit", out, sizeof out), 0);
    ASSERT_EQ(http_query_get(q, "stat", out, sizeof out), -1); /* no prefix match */
    ASSERT_EQ(http_query_get(q, "offset", out, 2), -1);        /* does not fit */
    ASSERT_EQ(http_query_get("", "a", out, sizeof out), -1);
}

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(console_sha256_and_compare)
{
    uint8_t d[32], e[32];
    char x[65];
    admin_sha256("", 0, d);
    hex(d, x);
    ASSERT_STR_EQ(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    admin_sha256("abc", 3, d);
    hex(d, x);
    ASSERT_STR_EQ(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* 56 bytes: the padding needs a second block. */
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    admin_sha256(two, strlen(two), d);
    hex(d, x);
    ASSERT_STR_EQ(x, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char many[1000];
    memset(many, 'a', sizeof many);
    admin_sha256(many, sizeof many, e);
    hex(e, x);
    ASSERT_STR_EQ(x, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    ASSERT(admin_digest_eq(e, e));
    ASSERT(!admin_digest_eq(d, e));
}
