/* cmd_history.c - `jobctl history ID [--json]`: every recorded attempt of a
 * job (the last 20): worker, start, end, outcome, error. */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl history ID [--json]\n"
    "\n"
    "Shows the job's attempts (the last 20 are kept), oldest first: attempt,\n"
    "worker, start, duration, outcome (succeeded, failed (a retry followed), dead,\n"
    "canceled, released, lease_expired) and the last line of its error.\n"
    "\n"
    "Exit status: 0 ok; 3 no such job.\n"
    "\n"
    "Options:\n"
    "  --json   print an array of {\"attempt\",\"worker\",\"started_at\",\"ended_at\",\n"
    "           \"duration_s\",\"outcome\",\"error\"} (error: the last 2 KiB or null)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    static const ctl_query_t q = {.fetch_id = jobd_history, .text = out_history_text};
    return ctl_run_query(ctl, cmd, argc, argv, &q);
}

const ctl_cmd_t ctl_cmd_history = {
    .name = "history",
    .summary = "every attempt of a job: worker, times, outcome, error",
    .usage = usage,
    .run = run,
};
