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
    int json, rc;
    if ((rc = ctl_parse_json_only(ctl, cmd, argc, argv, 1, &json)) != CTL_CONTINUE) return rc;
    const char *id = argv[optind];
    if (ctl_check_id(cmd, id) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *h;
    if ((rc = jobd_history(c, id, &h)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        status = ctl_show(h, json, out_history_text);
        json_decref(h);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_history = {
    .name = "history",
    .summary = "every attempt of a job: worker, times, outcome, error",
    .usage = usage,
    .run = run,
};
