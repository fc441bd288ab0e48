/* cmd_batch.c - `jobctl batch status|wait NAME`: a named batch's counts by
 * state, its progress (the mean of its jobs'), and its completion job.
 *
 * wait polls jobd_batch_status every 250 ms (a batch may span queues and
 * many jobs: one status read is a few pipelined round trips), drawing an
 * aggregate bar on a terminal, one line per change otherwise, on stderr. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl batch status NAME [--json]\n"
    "       jobctl batch wait NAME [--timeout DURATION]\n"
    "\n"
    "A batch made with `jobctl submit --batch FILE --name NAME`: how many of its\n"
    "jobs are in each state, its progress (the mean of its jobs'), and the id of\n"
    "its completion job once jobd enqueued it. wait shows an aggregate progress\n"
    "bar until every job of the batch has ended.\n"
    "\n"
    "Exit status (wait): 0 all succeeded; 1 one ended dead or canceled; 3 no\n"
    "such batch; 4 timed out. status: 0, or 3 no such batch.\n"
    "\n"
    "Options:\n"
    "  --json                (status) print the batch as one JSON object\n"
    "  --timeout DURATION    (wait) give up after DURATION (default: never)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum { OPT_TIMEOUT = OPT_FIRST_CMD, OPT_JSON };

static const struct option longopts[] = {{"timeout", required_argument, NULL, OPT_TIMEOUT},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         CTL_COMMON_LONGOPTS,
                                         {NULL, 0, NULL, 0}};

static long long count(const json_t *st, const char *state)
{
    return (long long)json_integer_value(json_object_get(json_object_get(st, "counts"), state));
}

/* "42/100 ended (succeeded 40, dead 2, canceled 0; queued 50, scheduled 0,
 * active 8), 45%" */
static void line(const json_t *st, char *out, size_t len)
{
    long long ended = count(st, "succeeded") + count(st, "dead") + count(st, "canceled");
    snprintf(out, len,
             "%lld/%lld ended (succeeded %lld, dead %lld, canceled %lld; queued %lld, "
             "scheduled %lld, active %lld), %.0f%%",
             ended, (long long)json_integer_value(json_object_get(st, "total")),
             count(st, "succeeded"), count(st, "dead"), count(st, "canceled"), count(st, "queued"),
             count(st, "scheduled"), count(st, "active"),
             json_number_value(json_object_get(st, "progress")) * 100);
}

static void text(const json_t *st)
{
    char l[512];
    line(st, l, sizeof l);
    const char *comp = json_string_value(json_object_get(st, "completion"));
    printf("batch %s: %s%s%s\n", json_string_value(json_object_get(st, "name")), l,
           comp ? "; completion job " : "", comp ? comp : "");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_batch(jobd_client_t *c, const char *name, int64_t timeout_ms)
{
    int tty = isatty(2);
    int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
    char last[512] = "";
    for (;;) {
        json_t *st;
        int rc = jobd_batch_status(c, name, &st);
        if (rc < 0) return ctl_fail(c, rc);
        char l[512];
        line(st, l, sizeof l);
        if (strcmp(l, last) != 0) {
            double p = json_number_value(json_object_get(st, "progress"));
            if (tty) {
                char bar[31];
                int fill = (int)(p * 30 + 0.5);
                for (int i = 0; i < 30; i++)
                    bar[i] = i < fill ? '#' : '.';
                bar[30] = '\0';
                fprintf(stderr, "\r[%s] %s\033[K", bar, l);
            } else {
                fprintf(stderr, "batch %s: %s\n", name, l);
            }
            snprintf(last, sizeof last, "%s", l);
        }
        int done = json_is_true(json_object_get(st, "done"));
        int failed = count(st, "dead") + count(st, "canceled") > 0;
        json_decref(st);
        if (done) {
            if (tty) fputc('\n', stderr);
            return failed ? CTL_EJOB : CTL_OK;
        }
        if (deadline && mono_ms() >= deadline) {
            if (tty) fputc('\n', stderr);
            ctl_error("batch wait: %s did not end in time", name);
            return CTL_ETIMEOUT;
        }
        usleep(250 * 1000);
    }
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int opt, rc, json = 0;
    int64_t timeout_ms = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_TIMEOUT:
            if ((timeout_ms = ctl_parse_duration(cmd, "--timeout", optarg)) < 0) return CTL_EUSAGE;
            if (timeout_ms == 0) timeout_ms = 1; /* "0" is no time, not forever */
            break;
        case OPT_JSON:
            json = 1;
            break;
        default:
            if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE) return rc;
        }
    }
    if (argc - optind != 2) return ctl_usage_error(cmd, "want status NAME or wait NAME");
    const char *verb = argv[optind], *name = argv[optind + 1];
    int is_wait = strcmp(verb, "wait") == 0;
    if (!is_wait && strcmp(verb, "status") != 0)
        return ctl_usage_error(cmd, "unknown verb '%s' (status or wait)", verb);
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    if (is_wait) {
        status = wait_batch(c, name, timeout_ms);
    } else {
        json_t *st;
        if ((rc = jobd_batch_status(c, name, &st)) < 0) {
            status = ctl_fail(c, rc);
        } else {
            status = ctl_show(st, json, text);
            json_decref(st);
        }
    }
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_batch = {
    .name = "batch",
    .summary = "a named batch's counts and progress; wait for it",
    .usage = usage,
    .run = run,
};
