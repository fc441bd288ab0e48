/* Unit tests of cron.c (5-field expressions, next and previous ticks) and
 * tz.c (the system's zoneinfo, DST both ways, the footer rule past the last
 * transition). No Redis; the zones come from /usr/share/zoneinfo. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "jobd/client.h"
#include "test.h"
#include "tz.h"

static int64_t at(const char *rfc3339)
{
    int64_t ms = jobd_parse_rfc3339_ms(rfc3339);
    ASSERT(ms >= 0);
    return ms / 1000;
}

static void load(tz_t *tz, const char *name)
{
    char err[256];
    if (tz_load(tz, name, NULL, err, sizeof err) < 0) test_fail(__FILE__, __LINE__, "%s", err);
}

static void parse(cron_t *c, const char *expr)
{
    char err[256];
    if (cron_parse(c, expr, err, sizeof err) < 0) test_fail(__FILE__, __LINE__, "%s", err);
}

TEST(cron_parse_fields)
{
    cron_t c;
    char err[256];
    parse(&c, "*/15 9-17 * * mon-fri");
    ASSERT_EQ(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    ASSERT_EQ(c.hours, 0x3fe00u); /* 9..17 */
    ASSERT_EQ(c.wdays, 0x3eu);    /* Monday..Friday */
    ASSERT(c.mday_star && !c.wday_star);
    parse(&c, "0 0 1,15 jan,JUL 7");
    ASSERT_EQ(c.mdays, (1u << 1) | (1u << 15));
    ASSERT_EQ(c.months, (1u << 1) | (1u << 7));
    ASSERT_EQ(c.wdays, 1u); /* 7 is Sunday */
    parse(&c, "5/20 1-10/3 * * *");
    ASSERT_EQ(c.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
    ASSERT_EQ(c.hours, (1u << 1) | (1u << 4) | (1u << 7) | (1u << 10));
    parse(&c, "@daily");
    ASSERT_EQ(c.minutes, 1ULL);
    ASSERT_EQ(c.hours, 1u);
    const char *bad[] = {"* * * *",     "* * * * * *", "60 * * * *",   "* 24 * * *",
                         "* * 0 * *",   "* * * 13 *",  "* * * * 8",    "5-1 * * * *",
                         "*/0 * * * *", "a * * * *",   "1,,2 * * * *", "* * * foo *"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(cron_parse(&c, bad[i], err, sizeof err), -1);
    ASSERT_EQ(cron_parse(&c, "61 * * * *", err, sizeof err), -1);
    ASSERT_CONTAINS(err, "minute");
}

TEST(cron_next_and_prev_in_utc)
{
    tz_t tz;
    load(&tz, "UTC");
    cron_t c;
    parse(&c, "*/5 * * * *");
    ASSERT_EQ(cron_next(&c, &tz, at("2025-01-01T10:02:00Z")), at("2025-01-01T10:05:00Z"));
    ASSERT_EQ(cron_next(&c, &tz, at("2025-01-01T10:05:00Z")), at("2025-01-01T10:10:00Z"));
    ASSERT_EQ(cron_prev(&c, &tz, at("2025-01-01T10:05:00Z")), at("2025-01-01T10:05:00Z"));
    ASSERT_EQ(cron_prev(&c, &tz, at("2025-01-01T10:04:59Z")), at("2025-01-01T10:00:00Z"));
    /* The day rule: both restricted means either. 2025-06-13 is a Friday. */
    parse(&c, "0 12 13 * fri");
    ASSERT_EQ(cron_next(&c, &tz, at("2025-06-01T00:00:00Z")), at("2025-06-06T12:00:00Z"));
    parse(&c, "0 12 13 * *");
    ASSERT_EQ(cron_next(&c, &tz, at("2025-06-01T00:00:00Z")), at("2025-06-13T12:00:00Z"));
    parse(&c, "0 0 29 feb *");
    ASSERT_EQ(cron_next(&c, &tz, at("2025-03-01T00:00:00Z")), at("2028-02-29T00:00:00Z"));
    parse(&c, "0 0 30 2 *"); /* never */
    ASSERT_EQ(cron_next(&c, &tz, at("2025-03-01T00:00:00Z")), -1);
    ASSERT_EQ(cron_prev(&c, &tz, at("2025-03-01T00:00:00Z")), -1);
    tz_free(&tz);
}

TEST(cron_dst_forward_runs_once)
{
    tz_t tz;
    load(&tz, "Europe/Berlin");
    cron_t c;
    parse(&c, "30 2 * * *");
    /* 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist and
     * is read as CET, i.e. 03:30 CEST = 01:30 UTC. Once. */
    int64_t t = at("2025-03-28T12:00:00Z");
    const char *want[] = {"2025-03-29T01:30:00Z", "2025-03-30T01:30:00Z", "2025-03-31T00:30:00Z"};
    for (int i = 0; i < 3; i++) {
        t = cron_next(&c, &tz, t);
        ASSERT_EQ(t, at(want[i]));
    }
    /* Every 30 minutes through the jump: no tick twice, none lost that
     * exists; 02:00 and 02:30 CET land on 03:00 and 03:30 CEST. */
    parse(&c, "*/30 * * * *");
    t = at("2025-03-30T00:00:00Z"); /* 01:00 CET */
    const char *every[] = {"2025-03-30T00:30:00Z", "2025-03-30T01:00:00Z", "2025-03-30T01:30:00Z",
                           "2025-03-30T02:00:00Z"};
    for (int i = 0; i < 4; i++) {
        t = cron_next(&c, &tz, t);
        ASSERT_EQ(t, at(every[i]));
    }
    tz_free(&tz);
}

TEST(cron_dst_back_runs_once)
{
    tz_t tz;
    load(&tz, "Europe/Berlin");
    cron_t c;
    parse(&c, "30 2 * * *");
    /* 2025-10-26: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice
     * (00:30 and 01:30 UTC) and ticks at the first. */
    int64_t t = at("2025-10-25T12:00:00Z");
    const char *want[] = {"2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"};
    for (int i = 0; i < 2; i++) {
        t = cron_next(&c, &tz, t);
        ASSERT_EQ(t, at(want[i]));
    }
    /* Asked from inside the repeated hour (a jobd started then): the 02:30
     * of that day was the first pass, not a tick still to come. */
    ASSERT_EQ(cron_next(&c, &tz, at("2025-10-26T01:10:00Z")), at("2025-10-27T01:30:00Z"));
    ASSERT_EQ(cron_prev(&c, &tz, at("2025-10-26T01:40:00Z")), at("2025-10-26T00:30:00Z"));
    tz_free(&tz);
}

TEST(tz_offsets_and_footer_rule)
{
    tz_t tz;
    load(&tz, "Europe/Berlin");
    ASSERT_EQ(tz_offset(&tz, at("2025-01-15T12:00:00Z")), 3600);
    ASSERT_EQ(tz_offset(&tz, at("2025-07-15T12:00:00Z")), 7200);
    /* Past the file's transitions: the footer rule (CET-1CEST,M3.5.0,M10.5.0/3). */
    ASSERT_EQ(tz_offset(&tz, at("2071-01-15T12:00:00Z")), 3600);
    ASSERT_EQ(tz_offset(&tz, at("2071-07-15T12:00:00Z")), 7200);
    ASSERT_EQ(tz_offset(&tz, at("2071-03-29T00:59:59Z")), 3600); /* last Sunday of March */
    ASSERT_EQ(tz_offset(&tz, at("2071-03-29T01:00:00Z")), 7200);
    tz_free(&tz);
    load(&tz, "America/New_York");
    ASSERT_EQ(tz_offset(&tz, at("2025-07-04T12:00:00Z")), -4 * 3600);
    ASSERT_EQ(tz_offset(&tz, at("2090-07-04T12:00:00Z")), -4 * 3600);
    ASSERT_EQ(tz_offset(&tz, at("2090-12-04T12:00:00Z")), -5 * 3600);
    tz_free(&tz);
    /* The rule alone, southern hemisphere (DST across the new year). */
    memset(&tz, 0, sizeof tz);
    ASSERT_EQ(tz_parse_rule(&tz, "AEST-10AEDT,M10.1.0,M4.1.0/3"), 0);
    ASSERT_EQ(tz_offset(&tz, at("2030-01-15T00:00:00Z")), 11 * 3600);
    ASSERT_EQ(tz_offset(&tz, at("2030-07-15T00:00:00Z")), 10 * 3600);
    ASSERT_EQ(tz_parse_rule(&tz, "<+03>-3"), 0);
    ASSERT_EQ(tz_offset(&tz, at("2030-07-15T00:00:00Z")), 3 * 3600);
    ASSERT_EQ(tz_parse_rule(&tz, "X"), -1);
    char err[256];
    ASSERT_EQ(tz_load(&tz, "../etc/passwd", NULL, err, sizeof err), -1);
    ASSERT_EQ(tz_load(&tz, "No/Such_Zone", NULL, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "No/Such_Zone");
}
