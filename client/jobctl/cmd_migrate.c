/* cmd_migrate.c - `jobctl migrate [--force]`: moves the Redis layout under
 * the prefix forward to this build's (libjobd's jobd_migrate). */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"

static const char usage[] =
    "Usage: jobctl migrate [--force]\n"
    "\n"
    "Moves the jobd Redis layout under the prefix forward to this build's\n"
    "(layout 1 to 2: the global keys move under the hash tag {:global}, so\n"
    "that jobd works on Redis Cluster). Jobs and queues are kept. Run it on a\n"
    "stopped fleet: drain every jobd of the old version, migrate, then start\n"
    "the new version. It refuses while an old worker is still registered.\n"
    "Running it again changes nothing.\n"
    "\n"
    "Options:\n"
    "  --force  migrate even though old workers look alive (their records\n"
    "           expire one lease after they stop)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n"
    "\n"
    "Exit status: 0 migrated, or already current; 1 refused (live workers,\n"
    "a layout this build does not know); 2 usage; 69 Redis unreachable.\n";

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, OPT_FIRST_CMD}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc, force = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_FIRST_CMD)
            force = 1;
        else if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE)
            return rc;
    }
    if (optind < argc) return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    jobd_client_opts_t o = {.url = ctl->redis_url, .prefix = ctl->prefix};
    jobd_migrate_result_t res;
    char err[1024] = "";
    rc = jobd_migrate(&o, force, &res, err, sizeof err);
    if (rc < 0) {
        ctl_error("%s", err[0] ? err : jobd_strerror(rc));
        return rc == JOBD_EINVAL ? CTL_EUSAGE : ctl_exit_code(rc);
    }
    const char *prefix = ctl->prefix ? ctl->prefix : "jobd";
    if (res.already && res.from == 0)
        printf("nothing to migrate: no jobd layout under prefix %s yet\n", prefix);
    else if (res.already)
        printf("layout %d already in place under prefix %s\n", res.to, prefix);
    else
        printf("migrated prefix %s from layout %d to %d: %ld queue%s registered, %ld old worker "
               "record%s removed\n",
               prefix, res.from, res.to, res.queues, res.queues == 1 ? "" : "s",
               res.workers_dropped, res.workers_dropped == 1 ? "" : "s");
    return CTL_OK;
}

const ctl_cmd_t ctl_cmd_migrate = {
    .name = "migrate",
    .summary = "move an older Redis layout forward (stopped fleet)",
    .usage = usage,
    .run = run,
};
