/* cmd_submit.c - `jobctl submit`: one job from flags, or many from a JSON
 * Lines file.
 *
 * A single job is checked in full (names, priority, payload JSON and size)
 * before jobctl connects, so bad input exits 2 with nothing written. A batch
 * is read whole (batch.c), each line's JSON checked before connecting, then
 * sent with one jobd_submit_batch call (pipelined script calls of
 * JOBD_BATCH_CHUNK jobs), which checks every job before it sends any: one
 * bad line still means nothing submitted. Per-line round trips would cap a
 * batch far below the 150,000 jobs/s it is meant for. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "jobctl.h"

/* Reads at most this much of a --payload-file: far above any payload that
 * fits JOBD_PAYLOAD_MAX once compacted, far below what could hurt. */
#define PAYLOAD_FILE_MAX (64 * 1024 * 1024)

static const char usage[] =
    "Usage: jobctl submit QUEUE TYPE [options]\n"
    "       jobctl submit --batch FILE.jsonl|- [--name NAME [--on-complete TYPE[:QUEUE]]]\n"
    "                     [--wait]\n"
    "\n"
    "Submits a job and prints its id. With --batch, submits one job per line of\n"
    "FILE (or stdin for '-'), each a JSON object {\"queue\",\"type\",\"payload\",...}\n"
    "with any other envelope field optional (priority, max_attempts, timeout_s,\n"
    "run_at, delay_s, retry_base_s, retry_cap_s, idempotency_key, traceparent, id),\n"
    "and prints the ids, one a\n"
    "line, in order. Blank lines are skipped. A bad line fails the whole batch\n"
    "(exit 2, \"line N: ...\") before anything is submitted.\n"
    "\n"
    "Options:\n"
    "  --payload JSON        the job's payload (default null; at most 1 MiB)\n"
    "  --payload-file F      read the payload from file F ('-': stdin)\n"
    "  --priority N          0..9, higher runs first (default 5)\n"
    "  --delay DURATION      run no earlier than DURATION from now (30s, 5m, 1h30m)\n"
    "  --at TIME             run no earlier than TIME (RFC 3339, 2026-11-24T10:00:00Z)\n"
    "  --max-attempts N      attempts before the job is dead (default 5)\n"
    "  --timeout DURATION    time limit of one attempt (default: the handler's)\n"
    "  --retry-base DURATION first retry's backoff; doubles per attempt, with full\n"
    "                        jitter (default: the handler's, else jobd's 1s)\n"
    "  --retry-cap DURATION  longest backoff (default: the handler's, else jobd's 1h)\n"
    "  --key KEY             idempotency key: a repeated key returns the first\n"
    "                        job's id instead of making a second job\n"
    "  --wait                wait until the job(s) end; exit 1 if dead or canceled\n"
    "  --wait-timeout DUR    give up waiting after DUR (exit 4; default: never)\n"
    "  --batch FILE          submit the jobs in FILE (JSON Lines; '-': stdin)\n"
    "  --name NAME           make them a named batch (jobctl batch status|wait NAME)\n"
    "  --on-complete TYPE[:QUEUE]  with --name: once every job of the batch has\n"
    "                        ended, jobd enqueues one job of TYPE in QUEUE (default:\n"
    "                        the first job's queue) whose payload is the batch's\n"
    "                        summary {\"batch\", \"total\", \"counts\", \"ids\"}\n"
    "  --redis URL, --prefix P, -h/--help: see `jobctl --help`\n";

enum {
    OPT_PAYLOAD = OPT_FIRST_CMD,
    OPT_PAYLOAD_FILE,
    OPT_PRIORITY,
    OPT_DELAY,
    OPT_AT,
    OPT_MAX_ATTEMPTS,
    OPT_TIMEOUT,
    OPT_RETRY_BASE,
    OPT_RETRY_CAP,
    OPT_KEY,
    OPT_WAIT,
    OPT_WAIT_TIMEOUT,
    OPT_BATCH,
    OPT_NAME,
    OPT_ON_COMPLETE
};

static const struct option longopts[] = {
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"payload-file", required_argument, NULL, OPT_PAYLOAD_FILE},
    {"priority", required_argument, NULL, OPT_PRIORITY},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"at", required_argument, NULL, OPT_AT},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retry-base", required_argument, NULL, OPT_RETRY_BASE},
    {"retry-cap", required_argument, NULL, OPT_RETRY_CAP},
    {"key", required_argument, NULL, OPT_KEY},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"name", required_argument, NULL, OPT_NAME},
    {"on-complete", required_argument, NULL, OPT_ON_COMPLETE},
    CTL_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0}};

typedef struct {
    jobd_job_spec_t spec;
    const char *payload_file;
    const char *batch;
    const char *name;      /* --name: a named batch */
    char on_complete[300]; /* --on-complete TYPE[:QUEUE], split at the colon */
    const char *on_queue;  /* into on_complete's QUEUE part, or NULL */
    int wait;
    int64_t wait_timeout_ms;
    int per_job_flags; /* how many single-job flags were given (not with --batch) */
} submit_opts_t;

/* Reads a whole file (or stdin for "-") into a new NUL-terminated buffer.
 * Returns 0, or -1 with a message printed. */
static int read_payload_file(const char *path, char **out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        ctl_error("submit: cannot read --payload-file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (len + 1 == cap) {
            if (cap > PAYLOAD_FILE_MAX) {
                ctl_error("submit: --payload-file %s is over %d MiB, far above the payload "
                          "limit of %d bytes",
                          path, PAYLOAD_FILE_MAX >> 20, JOBD_PAYLOAD_MAX);
                rc = -1;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    if (!buf) {
        ctl_error("submit: out of memory reading %s", path);
        rc = -1;
    } else if (rc == 0 && ferror(f)) {
        ctl_error("submit: cannot read --payload-file %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (f != stdin) fclose(f);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        ctl_error("submit: --payload-file %s holds a NUL byte; it is not JSON", path);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* The options that set the job's own fields. Returns CTL_CONTINUE, an exit
 * code, or NOT_JOB_OPT when opt is none of them. */
#define NOT_JOB_OPT (-1000)
static int job_opt(const ctl_cmd_t *cmd, int opt, jobd_job_spec_t *s, int *have_delay)
{
    long v;
    switch (opt) {
    case OPT_PRIORITY:
        if (ctl_parse_long(optarg, 0, 9, &v) < 0)
            return ctl_usage_error(cmd, "--priority: '%s' is not an integer in 0..9", optarg);
        s->priority = (int)v;
        break;
    case OPT_DELAY:
    case OPT_AT:
        if ((*have_delay)++) return ctl_usage_error(cmd, "give --delay or --at, not both");
        if (opt == OPT_DELAY) {
            if ((s->delay_ms = ctl_parse_duration(cmd, "--delay", optarg)) < 0) return CTL_EUSAGE;
        } else if ((s->run_at_ms = jobd_parse_rfc3339_ms(optarg)) < 0) {
            return ctl_usage_error(
                cmd, "--at: '%s' is not an RFC 3339 time (like 2026-11-24T10:00:00Z)", optarg);
        } else if (s->run_at_ms == 0) {
            s->run_at_ms = 1; /* 0 means "now" to libjobd; the epoch is in the past anyway */
        }
        break;
    case OPT_MAX_ATTEMPTS:
        if (ctl_parse_long(optarg, 1, 1000, &v) < 0)
            return ctl_usage_error(cmd, "--max-attempts: '%s' is not an integer in 1..1000",
                                   optarg);
        s->max_attempts = (int)v;
        break;
    case OPT_TIMEOUT: {
        int64_t ms = ctl_parse_duration(cmd, "--timeout", optarg);
        if (ms < 0) return CTL_EUSAGE;
        s->timeout_s = (ms + 999) / 1000; /* whole seconds, never rounded to "none" */
        break;
    }
    case OPT_RETRY_BASE:
        if ((s->retry_base_ms = ctl_parse_duration(cmd, "--retry-base", optarg)) < 0)
            return CTL_EUSAGE;
        break;
    case OPT_RETRY_CAP:
        if ((s->retry_cap_ms = ctl_parse_duration(cmd, "--retry-cap", optarg)) < 0)
            return CTL_EUSAGE;
        break;
    default:
        return NOT_JOB_OPT;
    }
    return CTL_CONTINUE;
}

static int parse_opts(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv, submit_opts_t *o)
{
    jobd_job_spec_t *s = &o->spec;
    int have_delay = 0, opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt != OPT_WAIT && opt != OPT_WAIT_TIMEOUT && opt != OPT_BATCH && opt != OPT_NAME &&
            opt != OPT_ON_COMPLETE && opt >= OPT_FIRST_CMD)
            o->per_job_flags++;
        if ((rc = job_opt(cmd, opt, s, &have_delay)) != NOT_JOB_OPT) {
            if (rc != CTL_CONTINUE) return rc;
            continue;
        }
        switch (opt) {
        case OPT_PAYLOAD:
            if (o->payload_file)
                return ctl_usage_error(cmd, "give --payload or --payload-file, not both");
            s->payload_json = optarg;
            break;
        case OPT_PAYLOAD_FILE:
            if (s->payload_json)
                return ctl_usage_error(cmd, "give --payload or --payload-file, not both");
            o->payload_file = optarg;
            break;
        case OPT_KEY:
            s->idempotency_key = optarg;
            break;
        case OPT_WAIT:
            o->wait = 1;
            break;
        case OPT_WAIT_TIMEOUT:
            if ((o->wait_timeout_ms = ctl_parse_duration(cmd, "--wait-timeout", optarg)) < 0)
                return CTL_EUSAGE;
            if (o->wait_timeout_ms == 0) o->wait_timeout_ms = 1;
            break;
        case OPT_BATCH:
            o->batch = optarg;
            break;
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_ON_COMPLETE: {
            /* TYPE may hold ':' too: the queue is what follows the last one
             * (queue names hold none). */
            snprintf(o->on_complete, sizeof o->on_complete, "%s", optarg);
            char *colon = strrchr(o->on_complete, ':');
            if (colon) {
                *colon = '\0';
                o->on_queue = colon + 1;
            }
            break;
        }
        default:
            if ((rc = ctl_common_opt(ctl, cmd, opt, argv)) != CTL_CONTINUE) return rc;
        }
    }
    return CTL_CONTINUE;
}

/* ---- one job ---- */

static int submit_one(ctl_t *ctl, const ctl_cmd_t *cmd, submit_opts_t *o)
{
    char *file_payload = NULL, err[512];
    if (o->payload_file) {
        if (read_payload_file(o->payload_file, &file_payload) < 0) return CTL_EUSAGE;
        o->spec.payload_json = file_payload;
    }
    /* The same check libjobd makes before sending, made before connecting. */
    int rc = jobd_job_spec_check(&o->spec, 0, err, sizeof err);
    if (rc < 0) {
        ctl_error("%s: %s", cmd->name, err);
        free(file_payload);
        return CTL_EUSAGE;
    }
    jobd_client_t *c;
    int status = ctl_connect(ctl, &c);
    if (status != CTL_OK) {
        free(file_payload);
        return status;
    }
    char id[JOBD_ID_LEN + 1];
    rc = jobd_submit(c, &o->spec, id, NULL);
    free(file_payload);
    if (rc < 0) {
        status = ctl_fail(c, rc);
    } else {
        printf("%s\n", id);
        fflush(stdout); /* the id is useful while we wait */
        if (o->wait) {
            const char *ids[1] = {id};
            status = ctl_wait_jobs(c, ids, 1, o->wait_timeout_ms, 0);
        }
    }
    jobd_client_free(c);
    return status;
}

/* ---- batch ---- */

/* Prints the ids, one a line, with one write for the whole batch. */
static void print_ids(const char *ids, size_t n)
{
    char *out = malloc(n * (JOBD_ID_LEN + 1) + 1);
    if (!out) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", ids + i * (JOBD_ID_LEN + 1));
        return;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = ids + i * (JOBD_ID_LEN + 1);
        size_t k = strlen(id);
        memcpy(out + len, id, k);
        len += k;
        out[len++] = '\n';
    }
    fwrite(out, 1, len, stdout);
    free(out);
}

/* Reports a failed jobd_submit_batch. Its message names the job by index
 * ("job K: ..."); the user knows the input by line. */
static int batch_fail(jobd_client_t *c, const ctl_cmd_t *cmd, const batch_t *b, int rc)
{
    const char *msg = jobd_client_errmsg(c);
    size_t k;
    int off = 0;
    int invalid = rc == JOBD_EINVAL || rc == JOBD_EJSON || rc == JOBD_ETOOBIG;
    if (sscanf(msg, "job %zu: %n", &k, &off) == 1 && off > 0 && k >= 1 && k <= b->n) {
        ctl_error("%s: line %zu: %s", cmd->name, b->lines[k - 1], msg + off);
        return ctl_exit_code(rc);
    }
    /* A batch of one job is reported without the index. */
    if (invalid && b->n == 1) {
        ctl_error("%s: line %zu: %s", cmd->name, b->lines[0], msg);
        return ctl_exit_code(rc);
    }
    return ctl_fail(c, rc);
}

static int submit_batch(ctl_t *ctl, const ctl_cmd_t *cmd, const submit_opts_t *o)
{
    batch_t b = {0};
    jobd_client_t *c = NULL;
    char *ids = NULL, err[600];
    const char **ptrs = NULL;
    FILE *f = strcmp(o->batch, "-") == 0 ? stdin : fopen(o->batch, "r");
    if (!f) {
        ctl_error("%s: cannot read --batch %s: %s", cmd->name, o->batch, strerror(errno));
        return CTL_EUSAGE;
    }
    int rc = batch_read(&b, f, err, sizeof err);
    if (f != stdin) fclose(f);
    int status = CTL_OK;
    if (rc < 0) {
        ctl_error("%s: %s", cmd->name, err);
        status = rc == JOBD_ENOMEM ? CTL_EJOB : CTL_EUSAGE;
        goto out;
    }
    if (b.n == 0) goto out;
    if ((status = ctl_connect(ctl, &c)) != CTL_OK) goto out;
    ids = malloc(b.n * (JOBD_ID_LEN + 1));
    ptrs = o->wait ? malloc(b.n * sizeof *ptrs) : NULL;
    if (!ids || (o->wait && !ptrs)) {
        ctl_error("%s: out of memory for %zu ids", cmd->name, b.n);
        status = CTL_EJOB;
        goto out;
    }
    /* libjobd checks every job (names, ranges, the payload's JSON and size)
     * and sends nothing unless all pass. Checking them here as well, before
     * connecting, would cost a second parse of every payload: a tenth of
     * the batch's time. The lines' own JSON was checked before connecting. */
    rc = o->name ? jobd_batch_submit(c, o->name, b.specs, b.n,
                                     *o->on_complete ? o->on_complete : NULL, o->on_queue, ids)
                 : jobd_submit_batch(c, b.specs, b.n, ids);
    if (rc < 0) {
        status = batch_fail(c, cmd, &b, rc);
        goto out;
    }
    print_ids(ids, b.n);
    fflush(stdout);
    if (o->wait) {
        for (size_t i = 0; i < b.n; i++)
            ptrs[i] = ids + i * (JOBD_ID_LEN + 1);
        status = ctl_wait_jobs(c, ptrs, b.n, o->wait_timeout_ms, 0);
    }
out:
    free(ptrs);
    free(ids);
    jobd_client_free(c);
    batch_free(&b);
    return status;
}

static int run(ctl_t *ctl, const ctl_cmd_t *cmd, int argc, char **argv)
{
    submit_opts_t o = {0};
    jobd_job_spec_init(&o.spec);
    int rc = parse_opts(ctl, cmd, argc, argv, &o);
    if (rc != CTL_CONTINUE) return rc;
    int npos = argc - optind;
    if (o.wait_timeout_ms && !o.wait) return ctl_usage_error(cmd, "--wait-timeout needs --wait");
    if (o.batch) {
        if (npos > 0)
            return ctl_usage_error(cmd, "--batch takes the jobs from the file: unexpected '%s'",
                                   argv[optind]);
        if (o.per_job_flags)
            return ctl_usage_error(cmd, "--batch takes every job field from the file; the "
                                        "single-job flags do not apply");
        if (*o.on_complete && !o.name) return ctl_usage_error(cmd, "--on-complete needs --name");
        return submit_batch(ctl, cmd, &o);
    }
    if (o.name || *o.on_complete)
        return ctl_usage_error(cmd, "--name and --on-complete go with --batch");
    if (npos < 2) return ctl_usage_error(cmd, "QUEUE and TYPE are required");
    if (npos > 2) return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 2]);
    o.spec.queue = argv[optind];
    o.spec.type = argv[optind + 1];
    return submit_one(ctl, cmd, &o);
}

const ctl_cmd_t ctl_cmd_submit = {
    .name = "submit",
    .summary = "submit a job (or a JSON Lines batch) and print its id",
    .usage = usage,
    .run = run,
};
