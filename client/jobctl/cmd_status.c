/* cmd_status.c - `jobctl status ID [--json]`: the envelope and state of one
 * job. */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl status ID [--json]\n"
    "\n"
    "Shows a job: its envelope (queue, type, payload, priority, ...) and state\n"
    "(state, attempt, progress, checkpoint, result, error, worker, times).\n"
    "Exit status 3 if there is no such job.\n"
    "\n"
    "Options:\n"
    "  --json    print one JSON object with every envelope and state field\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    static const ctl_query_t q = {.fetch_id = jobd_status, .text = out_status_text};
    return ctl_run_query(ctl, cmd, argc, argv, &q);
}

const ctl_cmd_t ctl_cmd_status = {
    .name = "status",
    .summary = "show a job's envelope and state",
    .usage = usage,
    .run = run,
};
