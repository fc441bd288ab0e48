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
    int json, rc;
    if ((rc = ctl_parse_json_only(ctl, cmd, argc, argv, 1, &json)) != CTL_CONTINUE) return rc;
    const char *id = argv[optind];
    if (ctl_check_id(cmd, id) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *st;
    if ((rc = jobd_status(c, id, &st)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        status = ctl_show(st, json, out_status_text);
        json_decref(st);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_status = {
    .name = "status",
    .summary = "show a job's envelope and state",
    .usage = usage,
    .run = run,
};
