/* jobctl.h - what jobctl's main.c, cmd_<verb>.c and output.c share: exit
 * codes, the global options, the subcommand table entry, and the helpers
 * that turn libjobd errors into one "jobctl: ..." line and an exit code.
 *
 * DESIGN: each subcommand parses its own options with getopt_long; the
 * global options (--redis, --prefix, --help, --version) are in every table
 * (CTL_COMMON_LONGOPTS), so they work before or after the subcommand. Every
 * subcommand validates all its input before it connects, so bad input never
 * reaches Redis (CONTRACT "jobctl": exit 2 before anything is written).
 * Subcommands return an exit code; only main() exits.
 */
#ifndef JOBCTL_H
#define JOBCTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "jobd/client.h"

/* Exit status (CONTRACT "jobctl"). */
enum {
    CTL_OK = 0,
    CTL_EJOB = 1,      /* a waited-for job ended dead or canceled; other refusals */
    CTL_EUSAGE = 2,    /* bad flags, arguments, JSON, payload size, duration */
    CTL_ENOTFOUND = 3, /* no such job */
    CTL_ETIMEOUT = 4,  /* wait timed out */
    CTL_EUNAVAIL = 69  /* Redis unreachable (sysexits EX_UNAVAILABLE) */
};

/* Global options, resolved flag > environment > default. */
typedef struct {
    const char *redis_url; /* --redis, $JOBD_REDIS_URL; NULL: libjobd's default */
    const char *prefix;    /* --prefix, $JOBD_PREFIX; NULL: "jobd" */
} ctl_t;

typedef struct ctl_cmd ctl_cmd_t;
struct ctl_cmd {
    const char *name;
    const char *summary; /* one line for `jobctl --help` */
    const char *usage;   /* full text for `jobctl NAME --help` */
    /* argv[0] is the subcommand name; returns an exit status. */
    int (*run)(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv);
};

extern const ctl_cmd_t ctl_cmd_submit, ctl_cmd_status, ctl_cmd_wait, ctl_cmd_cancel, ctl_cmd_list,
    ctl_cmd_stats, ctl_cmd_retry, ctl_cmd_workers, ctl_cmd_migrate, ctl_cmd_schedules,
    ctl_cmd_batch, ctl_cmd_pause, ctl_cmd_resume, ctl_cmd_purge, ctl_cmd_delete, ctl_cmd_history;

/* `jobctl pause|resume QUEUE [--json]` (cmd_resume.c): the shared body. */
int ctl_pause_resume(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, int pause);

/* getopt_long values of the global options. */
enum { OPT_REDIS = 0x100, OPT_PREFIX, OPT_VERSION, OPT_FIRST_CMD };

/* clang-format off */
#define CTL_COMMON_LONGOPTS                                                                        \
    {"redis", required_argument, NULL, OPT_REDIS},                                                 \
    {"prefix", required_argument, NULL, OPT_PREFIX},                                               \
    {"version", no_argument, NULL, OPT_VERSION},                                                   \
    {"help", no_argument, NULL, 'h'}
/* clang-format on */

/* Returned by ctl_common_opt when parsing goes on. */
#define CTL_CONTINUE (-1)

/* Handles an option getopt_long returned that the subcommand does not know
 * itself: the global ones, --help (usage on stdout), and the errors '?' and
 * ':' (optstring must start with ':'). Returns CTL_CONTINUE, or the exit
 * status the subcommand must return at once. */
int ctl_common_opt(ctl_t *ctl, const ctl_cmd_t *cmd, int opt, char **argv);

/* Parses the options of a subcommand whose only own option is --json, and
 * takes want_args operands (their index is optind afterwards). Sets *json.
 * Returns CTL_CONTINUE, or the exit status to return at once. */
int ctl_parse_json_only(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, int want_args,
                        int *json);

/* Prints v as JSON (json set) or with text(v); returns CTL_OK. */
int ctl_show(const json_t *v, int json, void (*text)(const json_t *v));

/* The body of a read-only subcommand taking --json and no operand (fetch)
 * or one job id (fetch_id; exactly one of the two is set): parses the
 * options, connects, fetches a new value, shows it with ctl_show. Returns
 * the exit status. */
typedef struct {
    int (*fetch)(jobd_client_t *c, json_t **out);
    int (*fetch_id)(jobd_client_t *c, const char *id, json_t **out);
    void (*text)(const json_t *v);
} ctl_query_t;
int ctl_run_query(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, const ctl_query_t *q);

/* Resets getopt for a subcommand's argv (argv[0] is the subcommand). */
void ctl_getopt_reset(void);

/* Prints "jobctl: <message>" on stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "jobctl: <cmd>: <message> (try 'jobctl <cmd> --help')" and returns
 * CTL_EUSAGE. */
int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Maps a negative JOBD_E* code to an exit status. */
int ctl_exit_code(int jobd_err);
/* Prints c's message for the failed call (rc < 0) and returns its status. */
int ctl_fail(jobd_client_t *c, int rc);

/* Connects with the global options. Returns 0 and a new client in *out, or
 * an exit status after printing why. */
int ctl_connect(const ctl_t *ctl, jobd_client_t **out);

/* Strict number parsing: the whole string, within [min, max]. Return 0 or -1. */
int ctl_parse_long(const char *s, long min, long max, long *out);
/* Parses a duration flag ("30s", "5m", "1h30m", "250ms"); prints a usage
 * error and returns -1 if it is not one. */
int64_t ctl_parse_duration(const ctl_cmd_t *cmd, const char *flag, const char *s);
/* Checks that s can be a job id; prints a usage error and returns -1 if not. */
int ctl_check_id(const ctl_cmd_t *cmd, const char *s);
/* Checks that s can be a queue name; prints a usage error and returns -1. */
int ctl_check_queue(const ctl_cmd_t *cmd, const char *s);

/* Waits for the n jobs in ids (duplicates allowed) with jobd_wait, drawing
 * progress on stderr. With print_states, prints "ID STATE" per job on stdout
 * once all ended. Returns CTL_OK if all succeeded, CTL_EJOB if any ended
 * dead or canceled, CTL_ETIMEOUT, or another exit status. */
int ctl_wait_jobs(jobd_client_t *c, const char *const *ids, size_t n, int64_t timeout_ms,
                  int print_states);

#endif
