/* cron.c - see cron.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron.h"

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is lo + i, or NULL */
    int nnames;
} field_t;

static const field_t fields[5] = {
    {"minute", 0, 59, NULL, 0},           {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},     {"month", 1, 12, month_names, 12},
    {"day of week", 0, 7, wday_names, 7},
};

/* A number or a name of field f at *p; advances *p. -1 if neither. */
static int value(const field_t *f, const char **p)
{
    if (**p >= '0' && **p <= '9') {
        char *end;
        long v = strtol(*p, &end, 10);
        *p = end;
        return v >= f->lo && v <= f->hi ? (int)v : -1;
    }
    for (int i = 0; i < f->nnames; i++)
        if (strncasecmp(*p, f->names[i], 3) == 0) {
            *p += 3;
            return (f->names == month_names ? 1 : 0) + i;
        }
    return -1;
}

/* Parses one field's text (NUL-terminated) into bits. */
static int field(const field_t *f, const char *s, uint64_t *bits, int *star)
{
    *bits = 0;
    *star = s[0] == '*';
    const char *p = s;
    for (;;) {
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi;
            p++;
        } else {
            if ((lo = value(f, &p)) < 0) return -1;
            hi = lo;
            if (*p == '-') {
                p++;
                if ((hi = value(f, &p)) < 0 || hi < lo) return -1;
            } else if (*p == '/') {
                hi = f->hi; /* "N/STEP": from N to the end */
            }
        }
        if (*p == '/') {
            char *end;
            long st = strtol(p + 1, &end, 10);
            if (end == p + 1 || st < 1 || st > f->hi) return -1;
            step = (int)st;
            p = end;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << v;
        if (*p == '\0') break;
        if (*p++ != ',') return -1;
    }
    return 0;
}

int cron_parse(cron_t *c, const char *expr, char *err, size_t errlen)
{
    static const struct {
        const char *macro, *expands;
    } macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
        if (strcasecmp(expr, macros[i].macro) == 0) expr = macros[i].expands;
    char buf[256], *save = NULL;
    if (strlen(expr) >= sizeof buf) {
        snprintf(err, errlen, "cron expression is too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", expr);
    int n = 0;
    uint64_t bits[5];
    int star[5];
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == 5) {
            n = 6;
            break;
        }
        if (field(&fields[n], tok, &bits[n], &star[n]) < 0) {
            snprintf(
                err, errlen, "cron %s field \"%s\" is not valid (%d..%d, lists, ranges, steps%s)",
                fields[n].name, tok, fields[n].lo, fields[n].hi, fields[n].names ? ", names" : "");
            return -1;
        }
        n++;
    }
    if (n != 5) {
        snprintf(err, errlen,
                 "cron expression \"%s\" must have 5 fields: minute hour day-of-month month "
                 "day-of-week",
                 expr);
        return -1;
    }
    c->minutes = bits[0];
    c->hours = (uint32_t)bits[1];
    c->mdays = (uint32_t)bits[2];
    c->months = (uint16_t)bits[3];
    c->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday */
    c->mday_star = star[2];
    c->wday_star = star[4];
    return 0;
}

/* Whether local day number day matches the day fields. */
static int day_matches(const cron_t *c, int64_t day)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(day, &y, &m, &d);
    if (!(c->months & (1u << m))) return 0;
    int wd = (int)(((day % 7) + 7 + 4) % 7);
    int md_ok = ((c->mdays >> d) & 1u) != 0, wd_ok = ((c->wdays >> wd) & 1u) != 0;
    if (!c->mday_star && !c->wday_star) return md_ok || wd_ok;
    return md_ok && wd_ok;
}

/* The earliest tick of local day `day` after `after` (want_next), or the
 * latest at or before `after` (!want_next); -1 if none. */
static int64_t best_of_day(const cron_t *c, const tz_t *tz, int64_t day, int64_t after,
                           int want_next)
{
    if (!day_matches(c, day)) return -1;
    int64_t best = -1;
    for (int h = 0; h < 24; h++) {
        if (!((c->hours >> h) & 1)) continue;
        for (int mi = 0; mi < 60; mi++) {
            if (!((c->minutes >> mi) & 1)) continue;
            int64_t u = tz_local_to_utc(tz, day * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60);
            if (want_next ? (u > after && (best < 0 || u < best))
                          : (u <= after && (best < 0 || u > best)))
                best = u;
        }
    }
    return best;
}

static int64_t local_day(const tz_t *tz, int64_t t)
{
    int64_t l = t + tz_offset(tz, t);
    return l / 86400 - (l % 86400 < 0);
}

int64_t cron_next(const cron_t *c, const tz_t *tz, int64_t after)
{
    int64_t start = local_day(tz, after) - 1;
    for (int64_t day = start; day < start + CRON_HORIZON_DAYS; day++) {
        int64_t b = best_of_day(c, tz, day, after, 1);
        if (b < 0) continue;
        /* Around a change at midnight the next day may hold an earlier
         * instant: look at it too. */
        int64_t b2 = best_of_day(c, tz, day + 1, after, 1);
        return b2 >= 0 && b2 < b ? b2 : b;
    }
    return -1;
}

int64_t cron_prev(const cron_t *c, const tz_t *tz, int64_t at)
{
    int64_t start = local_day(tz, at) + 1;
    for (int64_t day = start; day > start - CRON_HORIZON_DAYS; day--) {
        int64_t b = best_of_day(c, tz, day, at, 0);
        if (b < 0) continue;
        int64_t b2 = best_of_day(c, tz, day - 1, at, 0);
        return b2 > b ? b2 : b;
    }
    return -1;
}
