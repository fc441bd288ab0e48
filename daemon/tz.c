/* tz.c - see tz.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

#define TZ_FILE_MAX (1 << 20) /* no real zone file comes near this */

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    /* Howard Hinnant's algorithm. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* ---- the footer's POSIX TZ rule ---- */

/* Skips a zone abbreviation: letters, or <...>. */
static const char *skip_abbr(const char *p)
{
    if (*p == '<') {
        const char *e = strchr(p, '>');
        return e ? e + 1 : NULL;
    }
    const char *s = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static const char *parse_hms(const char *p, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (*p < '0' || *p > '9') return NULL;
    long h = strtol(p, (char **)&p, 10), m = 0, s = 0;
    if (*p == ':') {
        m = strtol(p + 1, (char **)&p, 10);
        if (*p == ':') s = strtol(p + 1, (char **)&p, 10);
    }
    if (h > 167 || m > 59 || s > 59) return NULL;
    *out = (int32_t)(sign * (h * 3600 + m * 60 + s));
    return p;
}

/* ",Mm.w.d[/time]" */
static const char *parse_date(const char *p, tz_rule_date_t *d)
{
    if (*p++ != ',' || *p++ != 'M') return NULL; /* Jn and n forms: not used by tzdata */
    d->month = (int)strtol(p, (char **)&p, 10);
    if (*p++ != '.') return NULL;
    d->week = (int)strtol(p, (char **)&p, 10);
    if (*p++ != '.') return NULL;
    d->wday = (int)strtol(p, (char **)&p, 10);
    if (d->month < 1 || d->month > 12 || d->week < 1 || d->week > 5 || d->wday < 0 || d->wday > 6)
        return NULL;
    d->secs = 7200;
    if (*p == '/') p = parse_hms(p + 1, &d->secs);
    return p;
}

int tz_parse_rule(tz_t *tz, const char *s)
{
    const char *p = skip_abbr(s);
    int32_t off;
    if (!p || !(p = parse_hms(p, &off))) return -1;
    tz->std_off = -off; /* POSIX offsets count west */
    tz->rule_dst = 0;
    tz->has_rule = 1;
    if (!*p) return 0;
    if (!(p = skip_abbr(p))) return -1;
    tz->dst_off = tz->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, &off))) return -1;
        tz->dst_off = -off;
    }
    if (!(p = parse_date(p, &tz->start)) || !(p = parse_date(p, &tz->end)) || *p) return -1;
    tz->rule_dst = 1;
    return 0;
}

/* Local midnight's day number of rule date d in year y, plus its time. */
static int64_t rule_local(const tz_rule_date_t *d, int64_t y)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = tz_days_from_civil(y, d->month, 1);
    int wd1 = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (d->wday - wd1 + 7) % 7 + 7 * (d->week - 1);
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int len = mdays[d->month - 1] + (d->month == 2 && leap);
    while (day > len)
        day -= 7;
    return (first + day - 1) * 86400 + d->secs;
}

static int32_t rule_offset(const tz_t *tz, int64_t t)
{
    if (!tz->rule_dst) return tz->std_off;
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t + tz->std_off, 86400), &y, &m, &d);
    /* The start is given in standard time, the end in daylight time. */
    int64_t start = rule_local(&tz->start, y) - tz->std_off;
    int64_t end = rule_local(&tz->end, y) - tz->dst_off;
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? tz->dst_off : tz->std_off;
}

/* ---- TZif ---- */

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    if (n == 4) return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

int tz_parse(tz_t *tz, const unsigned char *data, size_t len)
{
    const unsigned char *p = data, *end = data + len;
    int v2 = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (end - p < 44 || memcmp(p, "TZif", 4) != 0) return -1;
        if (pass == 0) v2 = p[4] >= '2';
        size_t isut = (size_t)be(p + 20, 4), isstd = (size_t)be(p + 24, 4),
               leap = (size_t)be(p + 28, 4), timecnt = (size_t)be(p + 32, 4),
               typecnt = (size_t)be(p + 36, 4), charcnt = (size_t)be(p + 40, 4);
        int tsz = pass == 0 ? 4 : 8;
        if (timecnt > 100000 || typecnt < 1 || typecnt > 256 || leap > 100000) return -1;
        size_t need = timecnt * (size_t)tsz + timecnt + typecnt * 6 + charcnt +
                      leap * (size_t)(tsz + 4) + isstd + isut;
        p += 44;
        if ((size_t)(end - p) < need) return -1;
        if (pass == 0 && v2) { /* skip the 32-bit data: the 64-bit follows */
            p += need;
            continue;
        }
        const unsigned char *times = p, *idx = p + timecnt * (size_t)tsz, *types = idx + timecnt;
        free(tz->trans);
        free(tz->offs);
        tz->trans = calloc(timecnt + 1, sizeof *tz->trans);
        tz->offs = calloc(timecnt + 1, sizeof *tz->offs);
        if (!tz->trans || !tz->offs) return -1;
        for (size_t i = 0; i < timecnt; i++) {
            if (idx[i] >= typecnt) return -1;
            tz->trans[i] = be(times + i * (size_t)tsz, tsz);
            tz->offs[i] = (int32_t)be(types + 6 * (size_t)idx[i], 4);
        }
        tz->ntrans = timecnt;
        /* Before the first transition: the first non-DST type (RFC 8536
         * suggests type 0; they agree for tzdata). */
        tz->first_off = (int32_t)be(types, 4);
        p += need;
        if (pass == 1 || !v2) break;
    }
    tz->has_rule = 0;
    if (v2 && p < end && *p == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
        if (nl && nl - p - 1 > 0 && nl - p - 1 < 128) {
            char rule[128];
            memcpy(rule, p + 1, (size_t)(nl - p - 1));
            rule[nl - p - 1] = '\0';
            if (tz_parse_rule(tz, rule) < 0) tz->has_rule = 0;
        }
    }
    return 0;
}

static int name_ok(const char *name)
{
    if (!*name || name[0] == '/' || strlen(name) > 100 || strstr(name, "..")) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("/_-+", *p)))
            return 0;
    return 1;
}

int tz_load(tz_t *tz, const char *name, const char *dir, char *err, size_t errlen)
{
    memset(tz, 0, sizeof *tz);
    if (!name_ok(name)) {
        snprintf(err, errlen, "\"%.100s\" is not a time zone name (e.g. Europe/Berlin, UTC)", name);
        return -1;
    }
    snprintf(tz->name, sizeof tz->name, "%s", name);
    if (!dir) dir = getenv("TZDIR");
    if (!dir || !*dir) dir = "/usr/share/zoneinfo";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rbe");
    if (!f) {
        snprintf(err, errlen, "time zone \"%s\": %s (%s)", name, strerror(errno), path);
        return -1;
    }
    unsigned char *buf = malloc(TZ_FILE_MAX);
    size_t n = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    fclose(f);
    int rc = buf ? tz_parse(tz, buf, n) : -1;
    free(buf);
    if (rc < 0) {
        snprintf(err, errlen, "time zone \"%s\": %s is not a TZif file", name, path);
        tz_free(tz);
        return -1;
    }
    return 0;
}

void tz_free(tz_t *tz)
{
    free(tz->trans);
    free(tz->offs);
    tz->trans = NULL;
    tz->offs = NULL;
    tz->ntrans = 0;
}

int32_t tz_offset(const tz_t *tz, int64_t t)
{
    if (tz->ntrans == 0) return tz->has_rule ? rule_offset(tz, t) : tz->first_off;
    if (t < tz->trans[0]) return tz->first_off;
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule) return rule_offset(tz, t);
    size_t lo = 0, hi = tz->ntrans; /* the last transition <= t */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->offs[lo];
}

int64_t tz_local_to_utc(const tz_t *tz, int64_t local)
{
    /* The offsets a day either side: a zone changes at most once in that
     * span, so these are the candidates. */
    int32_t before = tz_offset(tz, local - 86400), after = tz_offset(tz, local + 86400);
    int64_t u1 = local - before, u2 = local - after;
    int ok1 = tz_offset(tz, u1) == before, ok2 = tz_offset(tz, u2) == after;
    if (ok1 && ok2) return u1 < u2 ? u1 : u2; /* twice: the first */
    if (ok1) return u1;
    if (ok2) return u2;
    return u1; /* skipped: read with the offset before the change */
}
