/* cmd_resume.c - `jobctl resume QUEUE [--json]`: undo `jobctl pause`; idle
 * workers are woken at once. Shares ctl_pause_resume with cmd_pause.c. */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl resume QUEUE [--json]\n"
    "\n"
    "Resumes a paused QUEUE: workers claim its jobs again at once.\n"
    "\n"
    "Options:\n"
    "  --json   print {\"queue\",\"paused\":false,\"changed\"} (changed false: it was\n"
    "           not paused)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

int ctl_pause_resume(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, int pause)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_FIRST_CMD}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc, json = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_FIRST_CMD)
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
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    int changed = 0;
    rc = pause ? jobd_pause(c, queue, &changed) : jobd_resume(c, queue, &changed);
    if (rc < 0) {
        status = ctl_fail(c, rc);
    } else if (json) {
        json_t *o =
            json_pack("{s:s, s:b, s:b}", "queue", queue, "paused", pause, "changed", changed);
        out_json(o);
        json_decref(o);
    } else if (pause) {
        printf(changed ? "queue %s paused\n" : "queue %s was paused already\n", queue);
    } else {
        printf(changed ? "queue %s resumed\n" : "queue %s was not paused\n", queue);
    }
    jobd_client_free(c);
    return status;
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    return ctl_pause_resume(ctl, cmd, argc, argv, 0);
}

const ctl_cmd_t ctl_cmd_resume = {
    .name = "resume",
    .summary = "restart claims from a paused queue",
    .usage = usage,
    .run = run,
};
