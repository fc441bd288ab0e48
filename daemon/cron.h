/* cron.h - standard 5-field cron expressions and their ticks in a zone.
 *
 * DESIGN: "minute hour day-of-month month day-of-week", each field a list
 * of "*", "N", "A-B", with an optional "/STEP" ("*" and "A-B" ranges step;
 * "N/STEP" runs from N to the field's end), months and weekdays also by
 * name (jan..dec, sun..sat; 7 is Sunday too), and the macros @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight) and @hourly. The usual
 * day rule: when both day fields are restricted (neither starts with "*"),
 * a day matches if either matches; otherwise both must.
 *
 * Ticks are wall-clock times in the schedule's zone (tz.h), turned into
 * Unix seconds: a wall time that happens twice (clocks go back) ticks once,
 * at its first occurrence; one the clocks skip ticks once, read with the
 * offset before the jump (02:30 on a day that jumps 02:00 -> 03:00 ticks
 * at 03:30 new time). Ticks are identified by their Unix time, so two wall
 * times that land on the same instant are one tick. Pure, unit-tested. */
#ifndef JOBD_CRON_H
#define JOBD_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

#define CRON_HORIZON_DAYS (366 * 8 + 2) /* how far cron_next/prev look */

typedef struct {
    uint64_t minutes;         /* bit n: minute n */
    uint32_t hours, mdays;    /* bit n: hour n; day of month n (1..31) */
    uint16_t months;          /* bit n: month n (1..12) */
    uint8_t wdays;            /* bit n: weekday n (0 Sunday .. 6) */
    int mday_star, wday_star; /* the field starts with "*" (unrestricted) */
} cron_t;

/* Parses expr. Returns 0, or -1 with a message naming the bad field. */
int cron_parse(cron_t *c, const char *expr, char *err, size_t errlen);

/* The first tick strictly after Unix second after, or -1 if none within
 * CRON_HORIZON_DAYS ("0 0 30 2 *" never ticks). */
int64_t cron_next(const cron_t *c, const tz_t *tz, int64_t after);
/* The last tick at or before Unix second at, or -1 if none within the
 * horizon. */
int64_t cron_prev(const cron_t *c, const tz_t *tz, int64_t at);

#endif
