/* cmd_pause.c - `jobctl pause QUEUE [--json]`: stop claims from a queue on
 * every worker at once (jobs already running run on). */
#define _GNU_SOURCE
#include <stdio.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl pause QUEUE [--json]\n"
    "\n"
    "Pauses QUEUE for every worker at once: once this returns no worker claims a\n"
    "job of it; jobs already running run on and report as usual. Submitting still\n"
    "works. `jobctl resume QUEUE` undoes it; `jobctl stats` shows PAUSED.\n"
    "\n"
    "Options:\n"
    "  --json   print {\"queue\",\"paused\":true,\"changed\"} (changed false: it was\n"
    "           paused already)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    return ctl_pause_resume(ctl, cmd, argc, argv, 1);
}

const ctl_cmd_t ctl_cmd_pause = {
    .name = "pause",
    .summary = "stop claims from a queue cluster-wide",
    .usage = usage,
    .run = run,
};
