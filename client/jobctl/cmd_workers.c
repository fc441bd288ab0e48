/* cmd_workers.c - `jobctl workers [--json]`: the live workers from the
 * registry jobd keeps in Redis (in flight, concurrency, draining). */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl workers [--json]\n"
    "\n"
    "Lists the live jobd workers: id, host, pid, jobs in flight, concurrency,\n"
    "whether it is draining, when it was last seen, and its queues.\n"
    "\n"
    "Options:\n"
    "  --json   print a JSON array of worker objects\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    static const ctl_query_t q = {.fetch = jobd_workers, .text = out_workers_text};
    return ctl_run_query(ctl, cmd, argc, argv, &q);
}

const ctl_cmd_t ctl_cmd_workers = {
    .name = "workers",
    .summary = "list live workers: in flight, draining",
    .usage = usage,
    .run = run,
};
