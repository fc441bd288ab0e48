/* cmd_delete.c - `jobctl delete ID [--json]`: delete one job that is not
 * running. */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl delete ID [--json]\n"
    "\n"
    "Deletes a job that is not active (queued, scheduled or finished): its record,\n"
    "history and idempotency key. An active job must be canceled instead.\n"
    "\n"
    "Exit status: 0 deleted; 1 the job is active; 3 no such job.\n"
    "\n"
    "Options:\n"
    "  --json   print {\"id\",\"deleted\":true}\n"
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
    if ((rc = jobd_delete(c, id)) < 0) {
        status = ctl_fail(c, rc);
    } else if (json) {
        json_t *o = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
        out_json(o);
        json_decref(o);
    } else {
        printf("%s deleted\n", id);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_delete = {
    .name = "delete",
    .summary = "delete a job that is not running",
    .usage = usage,
    .run = run,
};
