/* test.h - the test harness: assertions that print both sides, and test
 * registration.
 *
 * A test is `TEST(name) { ... }` in any file linked into a test binary; it
 * registers itself at startup. The binary runs the test named on its command
 * line (CMake registers each TEST as its own ctest test, so each runs in its
 * own process with its own timeout). A failed assertion prints file:line,
 * the expression and both values, then aborts. */
#ifndef JOBD_TEST_H
#define JOBD_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_reg_##name(void)                                 \
    {                                                                                              \
        test_register(#name, test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (!(expr)) test_fail(__FILE__, __LINE__, "ASSERT(%s)", #expr);                           \
    } while (0)

#define ASSERT_CMP(a, op, b, fmt, type)                                                            \
    do {                                                                                           \
        type a_ = (a), b_ = (b);                                                                   \
        if (!(a_ op b_))                                                                           \
            test_fail(__FILE__, __LINE__, "%s %s %s: " fmt " vs " fmt, #a, #op, #b, a_, b_);       \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b, "%" PRId64, int64_t)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b, "%" PRId64, int64_t)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b, "%" PRId64, int64_t)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b, "%" PRId64, int64_t)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b, "%" PRId64, int64_t)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b, "%" PRId64, int64_t)
#define ASSERT_DBL_NEAR(a, b, eps)                                                                 \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (a_ - b_ > (eps) || b_ - a_ > (eps))                                                    \
            test_fail(__FILE__, __LINE__, "%s ~= %s: %g vs %g", #a, #b, a_, b_);                   \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,                    \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            test_fail(__FILE__, __LINE__, "%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle,    \
                      h_ ? h_ : "(null)", n_);                                                     \
    } while (0)

/* Deadlines: ms scaled by $JOBD_TEST_TIMEOUT_MULTIPLIER (sanitizer builds). */
int64_t test_ms(int64_t ms);
int64_t test_now_ms(void);

/* A fresh directory under $TMPDIR, removed (recursively) at exit. */
const char *test_tmpdir(void);
/* A key prefix unique to this test process: "jt-<test>-<pid>". */
const char *test_prefix(void);
/* The name of the running test. */
const char *test_name(void);

#endif
