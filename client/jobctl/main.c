/* main.c - jobctl: global options, subcommand dispatch, and the helpers
 * every subcommand uses to report errors and connect (see jobctl.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobctl.h"
#include "output.h"
#include "jobd/version.h"

static const ctl_cmd_t *const commands[] = {
    &ctl_cmd_submit,  &ctl_cmd_status,    &ctl_cmd_wait,   &ctl_cmd_cancel,
    &ctl_cmd_list,    &ctl_cmd_stats,     &ctl_cmd_retry,  &ctl_cmd_workers,
    &ctl_cmd_migrate, &ctl_cmd_schedules, &ctl_cmd_batch,  &ctl_cmd_pause,
    &ctl_cmd_resume,  &ctl_cmd_purge,     &ctl_cmd_delete, &ctl_cmd_history,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fprintf(f, "Usage: jobctl [--redis URL] [--prefix P] COMMAND [ARGS...]\n"
               "\n"
               "Submit, watch and manage jobd jobs.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n"
               "Global options (before or after the command):\n"
               "  --redis URL   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB],\n"
               "                unix://[USER[:PASSWORD]@]/path.sock[?db=N],\n"
               "                redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]\n"
               "                (a Redis Cluster; a redis:// URL naming a node works too) or\n"
               "                redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,...]/MASTER[/DB]\n"
               "                (rediss:// needs a build with TLS: use a TLS sidecar)\n"
               "                (env JOBD_REDIS_URL; default redis://127.0.0.1:6379/0).\n"
               "                USER is a Redis ACL user (none: the default user); the\n"
               "                file named by $JOBD_REDIS_PASSWORD_FILE supplies the password\n"
               "                of the URL's user (its first line; one in the URL wins)\n"
               "  --prefix P    key prefix (env JOBD_PREFIX; default \"jobd\")\n"
               "  -h, --help    show help (`jobctl COMMAND --help` for a command)\n"
               "  --version     show the version\n"
               "\n"
               "Exit status: 0 ok; 1 a waited-for job ended dead or canceled (or the\n"
               "operation was refused); 2 usage error; 3 no such job; 4 wait timed out;\n"
               "69 Redis unreachable or refused the credentials (NOAUTH, WRONGPASS).\n");
}

static void print_version(void)
{
    printf("jobctl %s\n", JOBD_VERSION);
}

/* ---- helpers shared by the subcommands ---- */

void ctl_error(const char *fmt, ...)
{
    va_list ap;
    fputs("jobctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "jobctl: %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'jobctl %s --help')\n", cmd->name);
    return CTL_EUSAGE;
}

int ctl_exit_code(int err)
{
    switch (err) {
    case JOBD_EINVAL:
    case JOBD_EJSON:
    case JOBD_ETOOBIG:
        return CTL_EUSAGE;
    case JOBD_ENOTFOUND:
        return CTL_ENOTFOUND;
    case JOBD_ETIMEDOUT:
        return CTL_ETIMEOUT;
    case JOBD_ECONN:
        return CTL_EUNAVAIL;
    default:
        return CTL_EJOB;
    }
}

int ctl_fail(jobd_client_t *c, int rc)
{
    const char *msg = c ? jobd_client_errmsg(c) : "";
    ctl_error("%s", msg && *msg ? msg : jobd_strerror(rc));
    return ctl_exit_code(rc);
}

int ctl_connect(const ctl_t *ctl, jobd_client_t **out)
{
    jobd_client_opts_t o = {.url = ctl->redis_url, .prefix = ctl->prefix};
    char err[1024];
    int rc = jobd_client_new(&o, out, err, sizeof err);
    if (rc == 0) return 0;
    ctl_error("%s", err[0] ? err : jobd_strerror(rc));
    /* A URL that does not parse or an unreadable password file is a usage
     * problem, not an outage. */
    return rc == JOBD_EINVAL ? CTL_EUSAGE : ctl_exit_code(rc);
}

void ctl_getopt_reset(void)
{
    optind = 0; /* glibc: 0 reinitialises the scanner */
    opterr = 0; /* we print our own one-line messages */
}

int ctl_parse_json_only(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, int want_args,
                        int *json)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_FIRST_CMD}, CTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc;
    *json = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == OPT_FIRST_CMD)
            *json = 1;
        else if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE)
            return rc;
    }
    if (argc - optind > want_args)
        return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + want_args]);
    if (argc - optind < want_args) return ctl_usage_error(cmd, "a job ID is required");
    return CTL_CONTINUE;
}

int ctl_show(const json_t *v, int json, void (*text)(const json_t *v))
{
    if (json)
        out_json(v);
    else
        text(v);
    return CTL_OK;
}

int ctl_run_query(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, const ctl_query_t *q)
{
    int json, rc;
    if ((rc = ctl_parse_json_only(ctl, cmd, argc, argv, q->fetch_id != NULL, &json)) !=
        CTL_CONTINUE)
        return rc;
    const char *id = q->fetch_id ? argv[optind] : NULL;
    if (id && ctl_check_id(cmd, id) < 0) return CTL_EUSAGE;
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) return status;
    json_t *v;
    if ((rc = id ? q->fetch_id(c, id, &v) : q->fetch(c, &v)) < 0) {
        status = ctl_fail(c, rc);
    } else {
        status = ctl_show(v, json, q->text);
        json_decref(v);
    }
    jobd_client_free(c);
    return status;
}

int ctl_common_opt(ctl_t *ctl, const ctl_cmd_t *cmd, int opt, char **argv)
{
    switch (opt) {
    case OPT_REDIS:
        if (!*optarg) return ctl_usage_error(cmd, "--redis must not be empty");
        ctl->redis_url = optarg;
        return CTL_CONTINUE;
    case OPT_PREFIX:
        if (!*optarg) return ctl_usage_error(cmd, "--prefix must not be empty");
        ctl->prefix = optarg;
        return CTL_CONTINUE;
    case OPT_VERSION:
        print_version();
        return CTL_OK;
    case 'h':
        fputs(cmd->usage, stdout);
        return CTL_OK;
    case ':':
        return ctl_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
    case '?': {
        const char *a = argv[optind - 1];
        if (strncmp(a, "--", 2) == 0) {
            /* optopt is set for a known long option given a value it
             * does not take ("--json=1"), 0 for an unknown one. */
            if (optopt) return ctl_usage_error(cmd, "option '%s' takes no value", a);
            return ctl_usage_error(cmd, "unknown option '%s'", a);
        }
        return ctl_usage_error(cmd, "unknown option '-%c'", optopt);
    }
    default:
        return ctl_usage_error(cmd, "unexpected option '%s'", argv[optind - 1]);
    }
}

int ctl_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int64_t ctl_parse_duration(const ctl_cmd_t *cmd, const char *flag, const char *s)
{
    int64_t ms = jobd_parse_duration_ms(s);
    if (ms < 0)
        ctl_usage_error(cmd, "%s: '%s' is not a duration (like 250ms, 30s, 5m, 2h, 1h30m)", flag,
                        s);
    return ms;
}

int ctl_check_id(const ctl_cmd_t *cmd, const char *s)
{
    size_t n = strlen(s);
    int ok = n >= 1 && n <= JOBD_ID_LEN;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
             (s[i] >= 'A' && s[i] <= 'Z') || strchr("._:-", s[i]);
    if (!ok) {
        ctl_usage_error(cmd, "'%.64s' is not a job id", s);
        return -1;
    }
    return 0;
}

int ctl_check_queue(const ctl_cmd_t *cmd, const char *s)
{
    /* libjobd's spec check knows the queue name rules; a placeholder type
     * keeps it to the name. */
    jobd_job_spec_t spec;
    jobd_job_spec_init(&spec);
    spec.queue = s;
    spec.type = "x";
    char err[256];
    if (jobd_job_spec_check(&spec, 0, err, sizeof err) < 0) {
        ctl_usage_error(cmd, "%s", err);
        return -1;
    }
    return 0;
}

/* ---- dispatch ---- */

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]; advances *i past
 * the value. Returns 1 and sets *val, 0 if no match, -1 if the value is
 * missing. */
static int global_opt(char **argv, int argc, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

static const ctl_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int run(int argc, char **argv)
{
    ctl_t ctl = {.redis_url = env_or_null("JOBD_REDIS_URL"), .prefix = env_or_null("JOBD_PREFIX")};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *val;
        int m;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(stdout);
            return CTL_OK;
        }
        if (strcmp(a, "--version") == 0) {
            print_version();
            return CTL_OK;
        }
        if ((m = global_opt(argv, argc, &i, "--redis", &val)) != 0) {
            if (m < 0) goto missing;
            if (!*val) {
                ctl_error("--redis must not be empty (try 'jobctl --help')");
                return CTL_EUSAGE;
            }
            ctl.redis_url = val;
        } else if ((m = global_opt(argv, argc, &i, "--prefix", &val)) != 0) {
            if (m < 0) goto missing;
            if (!*val) {
                ctl_error("--prefix must not be empty (try 'jobctl --help')");
                return CTL_EUSAGE;
            }
            ctl.prefix = val;
        } else {
            ctl_error("unknown option '%s' (try 'jobctl --help')", a);
            return CTL_EUSAGE;
        }
    }
    if (i >= argc) {
        print_usage(stderr);
        return CTL_EUSAGE;
    }
    const char *name = argv[i];
    /* `jobctl help [COMMAND]` is `jobctl [COMMAND] --help`. */
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            print_usage(stdout);
            return CTL_OK;
        }
        const ctl_cmd_t *cmd = find_command(argv[i + 1]);
        if (!cmd) {
            ctl_error("unknown command '%s' (try 'jobctl --help')", argv[i + 1]);
            return CTL_EUSAGE;
        }
        fputs(cmd->usage, stdout);
        return CTL_OK;
    }
    const ctl_cmd_t *cmd = find_command(name);
    if (!cmd) {
        ctl_error("unknown command '%s' (try 'jobctl --help')", name);
        return CTL_EUSAGE;
    }
    ctl_getopt_reset();
    return cmd->run(&ctl, cmd, argc - i, argv + i);
missing:
    ctl_error("option '%s' needs a value (try 'jobctl --help')", argv[i]);
    return CTL_EUSAGE;
}

int main(int argc, char **argv)
{
    int status = run(argc, argv);
    /* A full disk or a closed pipe must not look like success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE) ctl_error("cannot write the output: %s", strerror(errno));
        if (status == CTL_OK) status = CTL_EJOB;
    }
    return status;
}
