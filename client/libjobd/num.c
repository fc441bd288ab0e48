/* num.c - see num.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "jobd/client.h"
#include "num.h"

/* Every int64_t lies within +-2^63; doubles inside these bounds convert
 * exactly and without undefined behaviour (2^63 itself would not). */
#define I64_BOUND 9223372036854774784.0 /* the largest double below 2^63 */

int num_double_to_int(double d, int64_t lo, int64_t hi, int64_t *out)
{
    /* Written so that NaN fails every comparison and is refused. */
    if (!(d >= -I64_BOUND && d <= I64_BOUND)) return -1;
    int64_t i = (int64_t)d;
    if ((double)i != d || i < lo || i > hi) return -1;
    *out = i;
    return 0;
}

/* Writes v as it reads in JSON text: 4294967295, 1e+90, 1.5. */
static void show(const json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) {
        /* The shortest form that reads back the same: 1e+90, not
         * 9.9999999999999997e+89. */
        double d = json_real_value(v);
        snprintf(buf, len, "%.15g", d);
        if (strtod(buf, NULL) != d) snprintf(buf, len, "%.17g", d);
    } else if (json_is_string(v))
        snprintf(buf, len, "a string");
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_null(v))
        snprintf(buf, len, "null");
    else
        snprintf(buf, len, "%s", v ? (json_is_object(v) ? "an object" : "an array") : "nothing");
}

int num_json_int(const json_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out,
                 char *err, size_t errlen)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= lo && i <= hi) {
            *out = i;
            return 0;
        }
    } else if (json_is_real(v) && num_double_to_int(json_real_value(v), lo, hi, out) == 0) {
        return 0;
    }
    char got[64];
    show(v, got, sizeof got);
    snprintf(err, errlen, "\"%s\" must be an integer in %lld..%lld (got %s)", field, (long long)lo,
             (long long)hi, got);
    return JOBD_EINVAL;
}

/* Writes ms as seconds, without trailing zeros: 1500 -> 1.5. */
static void show_seconds(int64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%lld", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%g", (double)ms / 1000);
}

int num_json_seconds_ms(const json_t *v, const char *field, int64_t lo_ms, int64_t hi_ms,
                        int64_t *out, char *err, size_t errlen)
{
    if (json_is_number(v)) {
        double ms = json_number_value(v) * 1000.0;
        /* Round to the nearest millisecond only once the value is known to
         * fit: the cast itself must never see an out-of-range double. */
        if (ms >= -I64_BOUND / 2 && ms <= I64_BOUND / 2) {
            int64_t r = (int64_t)(ms < 0 ? ms - 0.5 : ms + 0.5);
            if (r >= lo_ms && r <= hi_ms) {
                *out = r;
                return 0;
            }
        }
    }
    char got[64], lo[32], hi[32];
    show(v, got, sizeof got);
    show_seconds(lo_ms, lo, sizeof lo);
    show_seconds(hi_ms, hi, sizeof hi);
    snprintf(err, errlen, "\"%s\" must be a number of seconds in %s..%s (got %s)", field, lo, hi,
             got);
    return JOBD_EINVAL;
}

int num_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s) return -1;
    const char *p = s + (*s == '-');
    /* strtoll alone would also take leading blanks, a '+' and "0x". */
    if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int64_t num_mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

int64_t num_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b < 0 ? INT64_MIN : INT64_MAX;
    return r;
}
