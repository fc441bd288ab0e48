/* cmd_wait.c - `jobctl wait ID... [--timeout 2h]`, and the waiting that
 * `submit --wait` shares.
 *
 * jobd_wait subscribes to the jobs' event channels, so waiting costs Redis
 * nothing while jobs run; progress goes to stderr (a bar on a terminal,
 * "ID STATE NN%" lines otherwise) and the final states to stdout. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobctl.h"
#include "output.h"

static const char usage[] =
    "Usage: jobctl wait ID... [--timeout DURATION]\n"
    "\n"
    "Waits until every job ends, showing progress on stderr (a bar on a terminal,\n"
    "one \"ID STATE PROGRESS\" line per change otherwise), then prints \"ID STATE\"\n"
    "per job on stdout.\n"
    "\n"
    "Exit status: 0 all succeeded; 1 one ended dead or canceled; 3 no such job;\n"
    "4 timed out.\n"
    "\n"
    "Options:\n"
    "  --timeout DURATION    give up after DURATION (250ms, 30s, 5m, 2h; default: never)\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum { OPT_TIMEOUT = OPT_FIRST_CMD };

static const struct option longopts[] = {
    {"timeout", required_argument, NULL, OPT_TIMEOUT}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of id in the sorted uniq[0..n). */
static size_t find(const char **uniq, size_t n, const char *id)
{
    const char **p = bsearch(&id, uniq, n, sizeof *uniq, cmp_str);
    return p ? (size_t)(p - uniq) : 0;
}

/* Names, on stderr, the jobs that did not succeed, with their error. */
static void report_failures(jobd_client_t *c, const char **uniq, const jobd_state_t *st, size_t n)
{
    size_t shown = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] == JOBD_SUCCEEDED) continue;
        failed++;
        if (shown == 10) continue; /* a summary line follows */
        shown++;
        json_t *status = NULL;
        const char *err = NULL;
        if (jobd_status(c, uniq[i], &status) == 0)
            err = json_string_value(json_object_get(status, "error"));
        if (err)
            ctl_error("job %s ended %s: %.300s", uniq[i], jobd_state_name(st[i]), err);
        else
            ctl_error("job %s ended %s", uniq[i], jobd_state_name(st[i]));
        json_decref(status);
    }
    if (failed > shown) ctl_error("... and %zu more jobs ended dead or canceled", failed - shown);
}

int ctl_wait_jobs(jobd_client_t *c, const char *const *ids, size_t n, int64_t timeout_ms,
                  int print_states)
{
    /* jobd_wait wants each job once; a batch may name one twice (keys). */
    const char **uniq = malloc((n ? n : 1) * sizeof *uniq);
    jobd_state_t *st = malloc((n ? n : 1) * sizeof *st);
    out_progress_t *p = NULL;
    int status = CTL_EJOB;
    if (!uniq || !st) goto oom;
    memcpy(uniq, ids, n * sizeof *uniq);
    qsort(uniq, n, sizeof *uniq, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(uniq[u - 1], uniq[i]) != 0) uniq[u++] = uniq[i];
    if (!(p = out_progress_new(uniq, u))) goto oom;
    int rc = jobd_wait(c, uniq, u, timeout_ms, out_progress_cb, p, st);
    out_progress_free(p);
    if (rc < 0) {
        status = ctl_fail(c, rc);
    } else {
        status = CTL_OK;
        for (size_t i = 0; i < u; i++)
            if (st[i] != JOBD_SUCCEEDED) status = CTL_EJOB;
        if (print_states)
            for (size_t i = 0; i < n; i++)
                printf("%s %s\n", ids[i], jobd_state_name(st[find(uniq, u, ids[i])]));
        if (status != CTL_OK) report_failures(c, uniq, st, u);
    }
    free(uniq);
    free(st);
    return status;
oom:
    ctl_error("out of memory waiting for %zu jobs", n);
    free(uniq);
    free(st);
    return status;
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    int64_t timeout_ms = 0;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_TIMEOUT:
            if ((timeout_ms = ctl_parse_duration(cmd, "--timeout", optarg)) < 0) return CTL_EUSAGE;
            if (timeout_ms == 0) timeout_ms = 1; /* "0" is no time, not forever */
            break;
        default:
            if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE) return rc;
        }
    }
    if (optind >= argc) return ctl_usage_error(cmd, "at least one job ID is required");
    for (int i = optind; i < argc; i++)
        if (ctl_check_id(cmd, argv[i]) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    status = ctl_wait_jobs(c, (const char *const *)argv + optind, (size_t)(argc - optind),
                           timeout_ms, 1);
    jobd_client_free(c);
    return status;
}

const ctl_cmd_t ctl_cmd_wait = {
    .name = "wait",
    .summary = "wait until jobs end, with progress",
    .usage = usage,
    .run = run,
};
