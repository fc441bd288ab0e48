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

enum { OPT_JSON = OPT_FIRST_CMD };

static const struct option longopts[] = {
    {"json", no_argument, NULL, OPT_JSON}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int json = 0, opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_JSON)
            json = 1;
        else if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE)
            return rc;
    }
    if (optind < argc) return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *workers;
    if ((rc = jobd_workers(c, &workers)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        if (json)
            out_json(workers);
        else
            out_workers_text(workers);
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
