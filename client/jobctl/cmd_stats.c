/* cmd_stats.c - `jobctl stats [--json]`: per queue, the depth by state, the
 * age of the oldest waiting job and the counters. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl stats [--json]\n"
    "\n"
    "Shows, per queue, how many jobs are in each state and how long the oldest\n"
    "queued job has waited.\n"
    "\n"
    "Options:\n"
    "  --json   print one JSON object keyed by queue name; each value holds a count\n"
    "           per state (queued, scheduled, active, succeeded, dead, canceled),\n"
    "           \"oldest_age_s\" (null when nothing waits) and \"counters\"\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a new object with the queues of stats in name order (the queue
 * set has none), or NULL when out of memory. */
static json_t *sorted(json_t *stats)
{
    size_t n = json_object_size(stats), i = 0;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    json_t *out = json_object();
    if (!names || !out) {
        free(names);
        json_decref(out);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(stats, k, v)
    {
        names[i++] = k;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++)
        json_object_set(out, names[i], json_object_get(stats, names[i]));
    free(names);
    return out;
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int json, rc;
    if ((rc = ctl_parse_json_only(ctl, cmd, argc, argv, 0, &json)) != CTL_CONTINUE) return rc;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *stats;
    if ((rc = jobd_stats(c, &stats)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        json_t *s = sorted(stats);
        if (!s) {
            ctl_error("out of memory");
            status = CTL_EJOB;
        } else {
            status = ctl_show(s, json, out_stats_text);
        }
        json_decref(s);
        json_decref(stats);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_stats = {
    .name = "stats",
    .summary = "per queue: depth by state, oldest waiting age",
    .usage = usage,
    .run = run,
};
