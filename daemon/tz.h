/* tz.h - time zones from the system's zoneinfo (TZif files), for cron
 * schedules.
 *
 * DESIGN: jobd runs built-in handlers on other threads, and anything in the
 * process may call localtime(): setting TZ and calling mktime() on the loop
 * thread would race with them (setenv is not thread-safe, and the C
 * library keeps one global zone). So jobd reads the zone's TZif file
 * itself (RFC 8536: the 64-bit transitions of version 2+, and the POSIX TZ
 * rule of its footer for times past the last transition) into a tz_t that
 * is immutable once loaded: lookups are pure functions of (zone, time),
 * safe anywhere and unit-tested. tz_load is the only I/O (at start). */
#ifndef JOBD_TZ_H
#define JOBD_TZ_H

#include <stddef.h>
#include <stdint.h>

/* One POSIX TZ rule date "Mm.w.d/time": month 1..12, week 1..5 (5: the
 * last), weekday 0..6 (Sunday 0), seconds after local midnight (may be
 * negative or past 24 h). */
typedef struct {
    int month, week, wday;
    int32_t secs;
} tz_rule_date_t;

typedef struct {
    char name[128];
    int64_t *trans; /* transition times, Unix seconds, ascending (new) */
    int32_t *offs;  /* UTC offset in seconds in effect from each transition on (new) */
    size_t ntrans;
    int32_t first_off; /* the offset before the first transition */
    /* The footer rule, for times after the last transition. */
    int has_rule, rule_dst;
    int32_t std_off, dst_off; /* UTC offsets (east positive) */
    tz_rule_date_t start, end;
} tz_t;

/* Loads zone name ("Europe/Berlin", "UTC") from dir (NULL: $TZDIR, else
 * /usr/share/zoneinfo). Returns 0, or -1 with a message in err (no such
 * zone, a name that is no zone name, a file that is no TZif). */
int tz_load(tz_t *tz, const char *name, const char *dir, char *err, size_t errlen);
/* Parses a TZif image (len bytes). Returns 0 or -1. Pure. */
int tz_parse(tz_t *tz, const unsigned char *data, size_t len);
/* Parses a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") as the footer
 * rule. Returns 0 or -1. Pure. */
int tz_parse_rule(tz_t *tz, const char *s);
void tz_free(tz_t *tz);

/* The UTC offset (seconds east) in effect at Unix time t. Pure. */
int32_t tz_offset(const tz_t *tz, int64_t t);
/* The Unix time of local wall-clock time local (seconds since 1970-01-01
 * 00:00 as if the zone were UTC). A wall time that occurs twice (the hour
 * the clocks go back) gives its first occurrence; one that does not occur
 * (the hour they skip) is read with the offset before the change, so 02:30
 * on a day that jumps from 02:00 to 03:00 is 03:30 new time. Pure. */
int64_t tz_local_to_utc(const tz_t *tz, int64_t local);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
