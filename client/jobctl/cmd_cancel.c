/* cmd_cancel.c - `jobctl cancel ID`.
 *
 * A queued or scheduled job ends canceled at once. An active job is flagged;
 * its worker sees the flag on its next lease extension, stops the handler and
 * ends the job canceled. Canceling a job that is already canceled succeeds
 * (scripts may retry); one that succeeded or died is refused (exit 1). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "jobctl.h"

static const char usage[] =
    "Usage: jobctl cancel ID\n"
    "\n"
    "Cancels a job. A queued or scheduled job ends canceled at once; for a running\n"
    "job the cancel is requested and its worker stops it (`jobctl wait ID` to see\n"
    "it end). Prints \"ID canceled\" or \"ID cancel-requested\".\n"
    "\n"
    "Exit status: 0 canceled or requested (or already canceled); 1 the job already\n"
    "ended succeeded or dead; 3 no such job.\n"
    "\n"
    "Options:\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static const struct option longopts[] = {CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};

/* Whether id ended canceled (jobd_cancel refused it as finished). */
static int already_canceled(jobd_client_t *c, const char *id)
{
    json_t *st;
    if (jobd_status(c, id, &st) < 0) return 0;
    const char *state = json_string_value(json_object_get(st, "state"));
    int yes = state && strcmp(state, "canceled") == 0;
    json_decref(st);
    return yes;
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
        if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE) return rc;
    if (argc - optind != 1)
        return argc - optind < 1
                   ? ctl_usage_error(cmd, "a job ID is required")
                   : ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *id = argv[optind];
    if (ctl_check_id(cmd, id) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    int was_active = 0;
    rc = jobd_cancel(c, id, &was_active);
    if (rc == JOBD_ESTATE) {
        char msg[1024]; /* the status lookup below replaces c's message */
        snprintf(msg, sizeof msg, "%s", jobd_client_errmsg(c));
        if (already_canceled(c, id)) {
            printf("%s canceled\n", id); /* cancel is idempotent */
        } else {
            ctl_error("%s", msg);
            status = ctl_exit_code(rc);
        }
    } else if (rc < 0) {
        status = ctl_fail(c, rc);
    } else {
        printf("%s %s\n", id, was_active ? "cancel-requested" : "canceled");
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_cancel = {
    .name = "cancel",
    .summary = "cancel a job",
    .usage = usage,
    .run = run,
};
