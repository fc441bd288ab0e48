/* cmd_purge.c - `jobctl purge QUEUE --state STATE [--json]`: delete every
 * job of a queue in one state. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl purge QUEUE --state dead|succeeded|queued|scheduled|canceled [--json]\n"
    "\n"
    "Deletes every job of QUEUE in that state, with its history and idempotency\n"
    "key. Active jobs cannot be purged (cancel them). Prints how many went.\n"
    "\n"
    "Options:\n"
    "  --state STATE   required: dead, succeeded, queued, scheduled or canceled\n"
    "  --json          print {\"queue\",\"state\",\"deleted\"}\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum { OPT_STATE = OPT_FIRST_CMD, OPT_JSON };

static const struct option longopts[] = {{"state", required_argument, NULL, OPT_STATE},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         CTL_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    const char *state_name = NULL;
    int opt, rc, json = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_STATE)
            state_name = optarg;
        else if (opt == OPT_JSON)
            json = 1;
        else if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE)
            return rc;
    }
    if (argc - optind != 1)
        return argc - optind < 1
                   ? ctl_usage_error(cmd, "a QUEUE is required")
                   : ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *queue = argv[optind];
    if (ctl_check_queue(cmd, queue) < 0) return CTL_EUSAGE;
    if (!state_name) return ctl_usage_error(cmd, "--state is required");
    int state = jobd_state_parse(state_name);
    if (state < 0 || state == JOBD_ACTIVE)
        return ctl_usage_error(cmd,
                               "--state: '%s' is not one of dead, succeeded, queued, "
                               "scheduled, canceled",
                               state_name);
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    if ((rc = jobd_purge(c, queue, state)) < 0) {
        status = ctl_fail(c, rc);
    } else if (json) {
        json_t *o =
            json_pack("{s:s, s:s, s:i}", "queue", queue, "state", state_name, "deleted", rc);
        out_json(o);
        json_decref(o);
    } else {
        printf("%d %s job%s of %s deleted\n", rc, state_name, rc == 1 ? "" : "s", queue);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_purge = {
    .name = "purge",
    .summary = "delete every job of a queue in one state",
    .usage = usage,
    .run = run,
};
