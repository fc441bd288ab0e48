/* cmd_schedules.c - `jobctl schedules [--json]`: the cron schedules the
 * jobd processes have, with their last and next tick. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl schedules [--json]\n"
    "\n"
    "Lists the cron schedules of the jobd processes (their config files'\n"
    "\"schedules\"): name, cron expression and zone, queue and type, the last\n"
    "tick enqueued, the next one, and how many missed ticks were not enqueued\n"
    "(older than the catch-up window). A schedule stays listed after the last\n"
    "jobd that had it is gone; `updated_at` says when a jobd last spoke of it.\n"
    "\n"
    "Options:\n"
    "  --json   print a JSON array of schedule objects\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void text(const json_t *arr)
{
    printf("%-20s %-16s %-16s %-12s %-16s %-24s %-24s %s\n", "NAME", "CRON", "TZ", "QUEUE", "TYPE",
           "LAST", "NEXT", "SKIPPED");
    size_t i;
    const json_t *s;
    json_array_foreach(arr, i, s)
    {
        printf("%-20s %-16s %-16s %-12s %-16s %-24s %-24s %lld\n", str(s, "name"), str(s, "cron"),
               str(s, "tz"), str(s, "queue"), str(s, "type"), str(s, "last"), str(s, "next"),
               (long long)json_integer_value(json_object_get(s, "skipped")));
    }
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    static const ctl_query_t q = {.fetch = jobd_schedules, .text = text};
    return ctl_run_query(ctl, cmd, argc, argv, &q);
}

const ctl_cmd_t ctl_cmd_schedules = {
    .name = "schedules",
    .summary = "list cron schedules: last and next tick",
    .usage = usage,
    .run = run,
};
