/* util.c - error strings, state names, durations and times. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobd/client.h"

const char *jobd_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case JOBD_EINVAL:
        return "invalid argument";
    case JOBD_EJSON:
        return "malformed JSON";
    case JOBD_ETOOBIG:
        return "payload too large";
    case JOBD_ENOTFOUND:
        return "no such job";
    case JOBD_ECONN:
        return "Redis unreachable";
    case JOBD_ESCHEMA:
        return "incompatible Redis layout version";
    case JOBD_ESTALE:
        return "lease token rejected (lease lost)";
    case JOBD_EREDIS:
        return "Redis error";
    case JOBD_ENOMEM:
        return "out of memory";
    case JOBD_ESTATE:
        return "job is not in a state that allows this";
    case JOBD_ETIMEDOUT:
        return "timed out";
    default:
        return "unknown error";
    }
}

static const char *const state_names[JOBD_NSTATES] = {
    "queued", "scheduled", "active", "succeeded", "dead", "canceled",
};

const char *jobd_state_name(jobd_state_t s)
{
    return (s >= 0 && s < JOBD_NSTATES) ? state_names[s] : NULL;
}

int jobd_state_parse(const char *s)
{
    for (int i = 0; s && i < JOBD_NSTATES; i++)
        if (strcmp(s, state_names[i]) == 0) return i;
    return -1;
}

int64_t jobd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jobd_parse_duration_ms(const char *s)
{
    if (!s || !*s) return -1;
    int64_t total = 0;
    const char *p = s;
    /* Sums parts like "1h30m"; a bare number is seconds. Each part is
     * digits with an optional fraction: strtod alone would also take hex,
     * exponents and "inf". */
    while (*p) {
        const char *q = p;
        while (isdigit((unsigned char)*q))
            q++;
        if (q == p) return -1;
        if (*q == '.') {
            q++;
            if (!isdigit((unsigned char)*q)) return -1;
            while (isdigit((unsigned char)*q))
                q++;
        }
        char *end;
        double v = strtod(p, &end);
        if (end != q) return -1;
        double mult;
        if (strncmp(end, "ms", 2) == 0) {
            mult = 1;
            end += 2;
        } else if (*end == 's') {
            mult = 1000;
            end++;
        } else if (*end == 'm') {
            mult = 60000;
            end++;
        } else if (*end == 'h') {
            mult = 3600000;
            end++;
        } else if (*end == 'd') {
            mult = 86400000;
            end++;
        } else if (*end == '\0' && p == s) {
            mult = 1000;
        } else {
            return -1;
        }
        double ms = v * mult;
        if (ms > 9.2e15 || (double)total + ms > 9.2e15) return -1;
        total += (int64_t)ms;
        p = end;
    }
    return total;
}

static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01, proleptic Gregorian. */
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

int64_t jobd_parse_rfc3339_ms(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    const char *p = s + n;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0) return -1;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        /* Exactly "+HH:MM": checked character by character, so a short
         * offset cannot move p past the end of the string. */
        for (int k = 1; k <= 5; k++)
            if (k == 3 ? p[k] != ':' : !isdigit((unsigned char)p[k])) return -1;
        int oh = (p[1] - '0') * 10 + (p[2] - '0'), om = (p[4] - '0') * 10 + (p[5] - '0');
        if (oh > 23 || om > 59) return -1;
        off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_s;
    return secs * 1000 + frac_ms;
}

/* Inverse of days_from_civil (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Pure arithmetic, no gmtime_r or printf: batch submission formats a time
 * for every job. Negative times (before 1970) round down, as a clock does. */
void jobd_format_rfc3339(int64_t ms, char *out, size_t len)
{
    /* Years 0000..9999 only; beyond, the nearest end (no overflow below). */
    if (ms < -62167219200000LL) ms = -62167219200000LL;
    if (ms > 253402300799999LL) ms = 253402300799999LL;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned msec = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    unsigned sod = (unsigned)(secs - days * 86400);
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char b[32], *p = b;
    p = put_digits(p, (unsigned)y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    *p++ = '.';
    p = put_digits(p, msec, 3);
    *p++ = 'Z';
    if (len == 0) return;
    size_t n = (size_t)(p - b);
    if (n > len - 1) n = len - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}
