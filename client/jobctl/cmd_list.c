/* cmd_list.c - `jobctl list QUEUE [--state STATE] [--limit N] [--json]`. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

#define DEFAULT_LIMIT 100

static const char usage[] =
    "Usage: jobctl list QUEUE [--state STATE] [--limit N] [--json]\n"
    "\n"
    "Lists the jobs of QUEUE: active first, then queued (in the order they will\n"
    "run), scheduled, dead, canceled and succeeded (oldest first in each).\n"
    "\n"
    "Options:\n"
    "  --state STATE   only jobs in STATE: queued, scheduled, active, succeeded,\n"
    "                  dead or canceled\n"
    "  --limit N       at most N jobs (default 100; 0: all)\n"
    "  --json          print a JSON array of status objects (as `status --json`)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum { OPT_STATE = OPT_FIRST_CMD, OPT_LIMIT, OPT_JSON };

static const struct option longopts[] = {{"state", required_argument, NULL, OPT_STATE},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         CTL_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int json = 0, state = -1, opt, rc;
    long limit = DEFAULT_LIMIT;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_STATE:
            if ((state = jobd_state_parse(optarg)) < 0)
                return ctl_usage_error(cmd,
                                       "--state: '%s' is not one of queued, scheduled, active, "
                                       "succeeded, dead, canceled",
                                       optarg);
            break;
        case OPT_LIMIT:
            if (ctl_parse_long(optarg, 0, LONG_MAX, &limit) < 0)
                return ctl_usage_error(cmd, "--limit: '%s' is not a count", optarg);
            break;
        case OPT_JSON:
            json = 1;
            break;
        default:
            if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE) return rc;
        }
    }
    if (argc - optind != 1)
        return argc - optind < 1
                   ? ctl_usage_error(cmd, "QUEUE is required")
                   : ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *queue = argv[optind];
    if (ctl_check_queue(cmd, queue) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *jobs;
    if ((rc = jobd_list(c, queue, state, limit ? (size_t)limit : (size_t)LONG_MAX, &jobs)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        if (json)
            out_json(jobs);
        else
            out_list_text(jobs);
        json_decref(jobs);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_list = {
    .name = "list",
    .summary = "list the jobs of a queue",
    .usage = usage,
    .run = run,
};
