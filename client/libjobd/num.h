/* num.h - checked conversions of outside numbers into C integers and
 * durations, shared by libjobd, jobctl and jobd. Not installed.
 *
 * DESIGN: every JSON number (envelope, batch line, config and handlers
 * files) and every decimal string (a flag, a variable) that becomes an
 * integer or a duration goes through here. Casting a double outside the
 * target type's range is undefined behaviour, and a json_int_t stored in an
 * int loses its high bits (4294967295 becomes -1), so nothing is cast before
 * its range is known. Failures are values: a message naming the field and
 * the allowed range, for the caller to prefix ("malformed envelope: ",
 * "config key ..."). Pure: no I/O. */
#ifndef JOBD_NUM_H
#define JOBD_NUM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* 100 years: the schema's maximum timeout_s, and the ceiling of every
 * duration a job or a handler may set. */
#define NUM_100Y_S 3153600000LL
#define NUM_100Y_MS (NUM_100Y_S * 1000)

/* Sets *out to d if d is a whole number in [lo, hi]. Returns 0, or -1 for a
 * fraction, NaN, an infinity or a value out of range (*out untouched). */
int num_double_to_int(double d, int64_t lo, int64_t hi, int64_t *out);

/* Sets *out to the JSON integer v if it lies in [lo, hi]. A real with a
 * whole value (7.0, 1e3) counts as an integer, as in JSON Schema. Returns 0,
 * or JOBD_EINVAL with "\"FIELD\" must be an integer in LO..HI (got V)" in
 * err; v NULL or not a number is refused the same way. */
int num_json_int(const json_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out,
                 char *err, size_t errlen);

/* Sets *out to the JSON number of seconds v (integer or real) in
 * milliseconds, rounded to the nearest, if that lies in [lo_ms, hi_ms].
 * Returns 0, or JOBD_EINVAL with "\"FIELD\" must be a number of seconds in
 * LO..HI (got V)" in err (the range in seconds). */
int num_json_seconds_ms(const json_t *v, const char *field, int64_t lo_ms, int64_t hi_ms,
                        int64_t *out, char *err, size_t errlen);

/* Parses a whole decimal string (an optional '-', then digits only) in
 * [lo, hi] into *out. Returns 0, or -1 (*out untouched). */
int num_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Returns a * b, or INT64_MAX / INT64_MIN where the product would not fit. */
int64_t num_mul_sat(int64_t a, int64_t b);

/* Returns a + b, or INT64_MAX / INT64_MIN where the sum would not fit. */
int64_t num_add_sat(int64_t a, int64_t b);

#endif
