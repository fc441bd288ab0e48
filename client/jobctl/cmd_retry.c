/* cmd_retry.c - `jobctl retry ID | --dead QUEUE`: put dead jobs back in
 * their queue with fresh attempts. */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"

static const char usage[] =
    "Usage: jobctl retry ID\n"
    "       jobctl retry --dead QUEUE\n"
    "\n"
    "Puts a dead job (or every dead job of QUEUE) back to queued, with its attempts\n"
    "reset. Prints \"ID queued\", or the number of jobs requeued.\n"
    "\n"
    "Exit status: 0 ok; 1 the job is not dead; 3 no such job.\n"
    "\n"
    "Options:\n"
    "  --dead QUEUE   retry every dead job of QUEUE\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum { OPT_DEAD = OPT_FIRST_CMD };

static const struct option longopts[] = {
    {"dead", required_argument, NULL, OPT_DEAD}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    const char *dead = NULL;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_DEAD)
            dead = optarg;
        else if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE)
            return rc;
    }
    int npos = argc - optind;
    if (dead && npos > 0) return ctl_usage_error(cmd, "give ID or --dead QUEUE, not both");
    if (!dead && npos != 1)
        return npos < 1 ? ctl_usage_error(cmd, "a job ID or --dead QUEUE is required")
                        : ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (dead ? ctl_check_queue(cmd, dead) < 0 : ctl_check_id(cmd, argv[optind]) < 0)
        return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    if (dead) {
        if ((rc = jobd_retry_dead(c, dead)) < 0)
            status = ctl_fail(c, rc);
        else
            printf("%d dead job%s of %s requeued\n", rc, rc == 1 ? "" : "s", dead);
    } else {
        if ((rc = jobd_retry(c, argv[optind])) < 0)
            status = ctl_fail(c, rc);
        else
            printf("%s queued\n", argv[optind]);
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_retry = {
    .name = "retry",
    .summary = "put a dead job (or all of a queue's) back",
    .usage = usage,
    .run = run,
};
