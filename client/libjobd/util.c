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
    case 0: return "ok";
    case JOBD_EINVAL: return "invalid argument";
    case JOBD_EJSON: return "malformed JSON";
    case JOBD_ETOOBIG: return "payload too large";
    case JOBD_ENOTFOUND: return "no such job";
    case JOBD_ECONN: return "Redis unreachable";
    case JOBD_ESCHEMA: return "incompatible Redis layout version";
    case JOBD_ESTALE: return "lease token rejected (lease lost)";
    case JOBD_EREDIS: return "Redis error";
    case JOBD_ENOMEM: return "out of memory";
    case JOBD_ESTATE: return "job is not in a state that allows this";
    case JOBD_ETIMEDOUT: return "timed out";
    default: return "unknown error";
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
    /* Sums parts like "1h30m"; a bare number is seconds. */
    while (*p) {
        if (!isdigit((unsigned char)*p)) return -1;
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) return -1;
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
        if (ms > 9.2e15) return -1;
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
        for (; digits < 3; digits++) frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return -1;
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

void jobd_format_rfc3339(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
