/* Unit tests of the console's pure pieces: URL decoding and query strings
 * (http.c). No Redis, no loop. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
