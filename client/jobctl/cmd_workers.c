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
    int json, rc;
    if ((rc = ctl_parse_json_only(ctl, cmd, argc, argv, 0, &json)) != CTL_CONTINUE) return rc;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *workers;
    if ((rc = jobd_workers(c, &workers)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        status = ctl_show(workers, json, out_workers_text);
        json_decref(workers);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_workers = {
    .name = "workers",
    .summary = "list live workers: in flight, draining",
    .usage = usage,
    .run = run,
};
