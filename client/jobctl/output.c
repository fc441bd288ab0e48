/* output.c - see output.h. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd/client.h"
#include "output.h"

void out_json(const json_t *v)
{
    /* 12 significant digits: ages and progress print as 0.015, not as the
     * nearest double's 17 digits. */
    json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
    fputc('\n', stdout);
}

void out_format_age(double s, char *buf, size_t len)
{
    if (s < 0) s = 0;
    long long t = (long long)s;
    if (s < 1)
        snprintf(buf, len, "%lldms", (long long)(s * 1000));
    else if (t < 60)
        snprintf(buf, len, "%llds", t);
    else if (t < 3600)
        snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, len, "%lldh%02lldm", t / 3600, t % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%lldh", t / 86400, t % 86400 / 3600);
}

/* A field of obj as display text: strings as they are, null or absent as
 * "-", booleans as yes/no, arrays of scalars joined by ',', anything else
 * as compact JSON. Returns a pointer into obj or into buf. */
static const char *cell(const json_t *obj, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(obj, key);
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_NULL:
        return "-";
    case JSON_TRUE:
        return "yes";
    case JSON_FALSE:
        return "no";
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    case JSON_REAL:
        snprintf(buf, len, "%g", json_real_value(v));
        return buf;
    case JSON_ARRAY: {
        size_t used = 0, i;
        const json_t *e;
        buf[0] = '\0';
        json_array_foreach(v, i, e)
        {
            char one[64];
            const char *s = json_is_string(e) ? json_string_value(e) : NULL;
            if (!s) {
                size_t k = json_dumpb(e, one, sizeof one - 1, JSON_COMPACT | JSON_ENCODE_ANY);
                if (k >= sizeof one - 1) k = 0; /* too long for a cell */
                one[k] = '\0';
                s = one;
            }
            int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", s);
            if (n < 0 || (size_t)n >= len - used) break;
            used += (size_t)n;
        }
        return buf;
    }
    default: {
        size_t n = json_dumpb(v, buf, len - 1, JSON_COMPACT);
        if (n >= len - 1) n = 0;
        buf[n] = '\0';
        return buf;
    }
    }
}

static int64_t int_field(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Age of an RFC 3339 time field, or "-". */
static const char *age_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    int64_t t = s ? jobd_parse_rfc3339_ms(s) : -1;
    if (t < 0) return "-";
    out_format_age((double)(jobd_now_ms() - t) / 1000.0, buf, len);
    return buf;
}

/* ---- tables ---- */

#define MAXCOLS 10

typedef struct {
    size_t ncols;
    const char *head[MAXCOLS];
    int right[MAXCOLS]; /* right-aligned (numbers) */
    char **cells;       /* rows * ncols, malloc'd strings */
    size_t nrows, cap;
} table_t;

static void table_row(table_t *t, const char *const *vals)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
        if (!cells) return;
        t->cells = cells;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(vals[i] ? vals[i] : "-");
    t->nrows++;
}

static void table_print(table_t *t)
{
    size_t w[MAXCOLS];
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t n = s ? strlen(s) : 0;
            if (n > w[c]) w[c] = n;
        }
    }
    size_t linecap = 2 * t->ncols;
    for (size_t c = 0; c < t->ncols; c++)
        linecap += w[c];
    char *line = malloc(linecap + 1);
    for (size_t r = 0; line && r <= t->nrows; r++) {
        size_t len = 0;
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
            if (!s) s = "-";
            int n = t->right[c] ? snprintf(line + len, linecap + 1 - len, "%*s  ", (int)w[c], s)
                                : snprintf(line + len, linecap + 1 - len, "%-*s  ", (int)w[c], s);
            if (n > 0) len += (size_t)n;
        }
        /* No trailing blanks when the last columns are empty. */
        while (len && line[len - 1] == ' ')
            len--;
        line[len] = '\0';
        puts(line);
    }
    free(line);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* ---- status ---- */

static void kv(const char *k, const char *v)
{
    printf("%-16s %s\n", k, v);
}

/* Prints a JSON field, shortened when long: status is for reading. */
static void kv_json(const json_t *st, const char *key)
{
    const json_t *v = json_object_get(st, key);
    if (!v || json_is_null(v)) return;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return;
    size_t n = strlen(s);
    if (n > 400) {
        char label[448];
        snprintf(label, sizeof label, "%.330s... (%zu bytes; --json shows all)", s, n);
        kv(key, label);
    } else {
        kv(key, s);
    }
    free(s);
}

#define ERROR_LINES 20      /* last lines of a long error that status shows */
#define ERROR_LINE_MAX 300  /* bytes of one line it shows (the line's end) */
#define ERROR_TEXT_MAX 2000 /* bytes of a long error's end it shows at most */

/* One line of an error, indented under the key; control characters become
 * '?', and an overlong line shows its end. */
static void error_line(const char *key, const char *s, size_t n)
{
    const char *ell = "";
    if (n > ERROR_LINE_MAX) {
        s += n - ERROR_LINE_MAX;
        n = ERROR_LINE_MAX;
        while (n && ((unsigned char)*s & 0xc0) == 0x80)
            s++, n--;
        ell = "\xe2\x80\xa6";
    }
    printf("%-16s %s", key, ell);
    for (size_t i = 0; i < n; i++)
        putchar((unsigned char)s[i] < 0x20 && s[i] != '\t' ? '?' : s[i]);
    putchar('\n');
}

/* The error as people read it: its first line says why, and a failure's
 * output tails end where a traceback ends, so a long error shows its first
 * line, then its last lines; --json has all of it. */
static void kv_error(const json_t *st)
{
    const char *e = json_string_value(json_object_get(st, "error"));
    if (!e) {
        kv_json(st, "error"); /* not a string: shown as JSON */
        return;
    }
    size_t n = strlen(e);
    while (n && e[n - 1] == '\n')
        n--;
    size_t first = strcspn(e, "\n");
    if (first > n) first = n;
    error_line("error", e, first);
    if (first == n) return;
    /* Where the shown end starts: at most ERROR_LINES lines and about
     * ERROR_TEXT_MAX bytes back, never before the second line. */
    size_t from = n, lines = 0;
    while (from > first + 1 && lines < ERROR_LINES && n - from < ERROR_TEXT_MAX) {
        from--;
        if (e[from - 1] == '\n') lines++;
    }
    if (from > first + 1) {
        char note[128];
        snprintf(note, sizeof note,
                 "\xe2\x80\xa6 (%zu bytes in all; the end follows; --json shows all)", strlen(e));
        error_line("", note, strlen(note));
    }
    for (size_t p = from; p < n;) {
        size_t len = strcspn(e + p, "\n");
        if (p + len > n) len = n - p;
        error_line("", e + p, len);
        p += len + 1;
    }
}

static void kv_opt(const json_t *st, const char *key)
{
    const json_t *v = json_object_get(st, key);
    char buf[128];
    if (v && !json_is_null(v)) kv(key, cell(st, key, buf, sizeof buf));
}

void out_status_text(const json_t *st)
{
    char buf[256], age[32];
    kv("id", cell(st, "id", buf, sizeof buf));
    kv("queue", cell(st, "queue", buf, sizeof buf));
    kv("type", cell(st, "type", buf, sizeof buf));
    kv("state", cell(st, "state", buf, sizeof buf));
    if (json_is_true(json_object_get(st, "cancel_requested"))) kv("cancel", "requested");
    /* No max_attempts: the job left it to its handler's setting (else 5). */
    if (json_object_get(st, "max_attempts"))
        snprintf(buf, sizeof buf, "%" PRId64 " of %" PRId64, int_field(st, "attempt", 0),
                 int_field(st, "max_attempts", JOBD_DEFAULT_MAX_ATTEMPTS));
    else
        snprintf(buf, sizeof buf, "%" PRId64 " (max: the handler's, else %d)",
                 int_field(st, "attempt", 0), JOBD_DEFAULT_MAX_ATTEMPTS);
    kv("attempt", buf);
    snprintf(buf, sizeof buf, "%" PRId64, int_field(st, "priority", JOBD_DEFAULT_PRIORITY));
    kv("priority", buf);
    snprintf(buf, sizeof buf, "%.0f%%", 100 * json_number_value(json_object_get(st, "progress")));
    kv("progress", buf);
    kv_opt(st, "timeout_s");
    const char *created = json_string_value(json_object_get(st, "created_at"));
    if (created) {
        snprintf(buf, sizeof buf, "%s (%s ago)", created,
                 age_cell(st, "created_at", age, sizeof age));
        kv("created_at", buf);
    }
    kv_opt(st, "run_at");
    kv_opt(st, "started_at");
    kv_opt(st, "finished_at");
    kv_opt(st, "lease_until");
    kv_opt(st, "worker");
    kv_opt(st, "idempotency_key");
    kv_opt(st, "traceparent");
    kv_error(st);
    kv_json(st, "payload");
    kv_json(st, "checkpoint");
    kv_json(st, "result");
    kv_json(st, "raw_envelope");
}

/* ---- list ---- */

void out_list_text(const json_t *jobs)
{
    table_t t = {.ncols = 8,
                 .head = {"ID", "STATE", "TYPE", "PRI", "ATTEMPT", "PROGRESS", "AGE", "ERROR"},
                 .right = {0, 0, 0, 1, 1, 1, 1, 0}};
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char b[5][256], attempt[48], prio[16], progress[16], err[64];
        if (json_object_get(j, "max_attempts"))
            snprintf(attempt, sizeof attempt, "%" PRId64 "/%" PRId64, int_field(j, "attempt", 0),
                     int_field(j, "max_attempts", JOBD_DEFAULT_MAX_ATTEMPTS));
        else
            snprintf(attempt, sizeof attempt, "%" PRId64, int_field(j, "attempt", 0));
        snprintf(prio, sizeof prio, "%" PRId64, int_field(j, "priority", JOBD_DEFAULT_PRIORITY));
        snprintf(progress, sizeof progress, "%.0f%%",
                 100 * json_number_value(json_object_get(j, "progress")));
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(err, sizeof err, "%.60s", e ? e : "");
        /* One line per job: control characters in an error would break it. */
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        const char *row[8] = {cell(j, "id", b[0], sizeof b[0]),
                              cell(j, "state", b[1], sizeof b[1]),
                              cell(j, "type", b[2], sizeof b[2]),
                              prio,
                              attempt,
                              progress,
                              age_cell(j, "created_at", b[3], sizeof b[3]),
                              err};
        table_row(&t, row);
    }
    table_print(&t);
}

/* ---- stats ---- */

void out_stats_text(const json_t *stats)
{
    table_t t = {.ncols = 9,
                 .head = {"QUEUE", "QUEUED", "SCHEDULED", "ACTIVE", "SUCCEEDED", "DEAD", "CANCELED",
                          "OLDEST", "PAUSED"},
                 .right = {0, 1, 1, 1, 1, 1, 1, 1, 0}};
    const char *name;
    const json_t *q;
    json_object_foreach((json_t *)stats, name, q)
    {
        char n[JOBD_NSTATES][24], oldest[32] = "-";
        const char *row[9] = {name};
        for (int s = 0; s < JOBD_NSTATES; s++) {
            snprintf(n[s], sizeof n[s], "%" PRId64,
                     int_field(q, jobd_state_name((jobd_state_t)s), 0));
            row[1 + s] = n[s];
        }
        const json_t *age = json_object_get(q, "oldest_age_s");
        if (json_is_number(age)) out_format_age(json_number_value(age), oldest, sizeof oldest);
        row[7] = oldest;
        row[8] = json_is_true(json_object_get(q, "paused")) ? "yes" : "no";
        table_row(&t, row);
    }
    table_print(&t);
}

/* ---- workers ---- */

/* "2s ago" for an RFC 3339 last_seen, else the field as it is. */
static const char *last_seen(const json_t *w, char *buf, size_t len)
{
    char age[32];
    const char *a = age_cell(w, "last_seen", age, sizeof age);
    if (a == age) {
        snprintf(buf, len, "%s ago", age);
        return buf;
    }
    return cell(w, "last_seen", buf, len);
}

void out_workers_text(const json_t *workers)
{
    table_t t = {.ncols = 8,
                 .head = {"ID", "HOST", "PID", "IN_FLIGHT", "CONCURRENCY", "DRAINING", "LAST_SEEN",
                          "QUEUES"},
                 .right = {0, 0, 1, 1, 1, 0, 0, 0}};
    size_t i;
    const json_t *w;
    json_array_foreach(workers, i, w)
    {
        char b[8][256];
        const char *row[8] = {
            cell(w, "id", b[0], sizeof b[0]),          cell(w, "host", b[1], sizeof b[1]),
            cell(w, "pid", b[2], sizeof b[2]),         cell(w, "in_flight", b[3], sizeof b[3]),
            cell(w, "concurrency", b[4], sizeof b[4]), cell(w, "draining", b[5], sizeof b[5]),
            last_seen(w, b[6], sizeof b[6]),           cell(w, "queues", b[7], sizeof b[7])};
        table_row(&t, row);
    }
    table_print(&t);
}

/* ---- wait progress ---- */

typedef struct {
    const char *id;
    const char *state; /* static name from libjobd, or NULL before the first */
    double progress;
} job_view_t;

struct out_progress {
    job_view_t *jobs; /* sorted by id, for lookups from the callback */
    size_t n;
    int tty;
    size_t done, failed;
    double sum; /* of progress over all jobs, for the overall bar */
    int64_t drawn_ms;
};

static int cmp_view(const void *a, const void *b)
{
    return strcmp(((const job_view_t *)a)->id, ((const job_view_t *)b)->id);
}

out_progress_t *out_progress_new(const char *const *ids, size_t n)
{
    out_progress_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->jobs = calloc(n ? n : 1, sizeof *p->jobs);
    if (!p->jobs) {
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        p->jobs[i].id = ids[i];
    qsort(p->jobs, n, sizeof *p->jobs, cmp_view);
    p->n = n;
    p->tty = isatty(STDERR_FILENO);
    return p;
}

static int terminal(const char *state)
{
    return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "dead") == 0 ||
                     strcmp(state, "canceled") == 0);
}

static void draw_bar(out_progress_t *p)
{
    enum { WIDTH = 30 };
    double frac = p->n ? p->sum / (double)p->n : 1;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int fill = (int)(frac * WIDTH + 0.5);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[WIDTH] = '\0';
    /* \r and erase-line: one line, redrawn in place. */
    if (p->n == 1)
        fprintf(stderr, "\r\033[K[%s] %3.0f%%  %s  %s", bar, frac * 100, p->jobs[0].id,
                p->jobs[0].state ? p->jobs[0].state : "...");
    else
        fprintf(stderr, "\r\033[K[%s] %3.0f%%  %zu/%zu done", bar, frac * 100, p->done, p->n);
    if (p->n != 1 && p->failed) fprintf(stderr, ", %zu dead or canceled", p->failed);
    fflush(stderr);
    p->drawn_ms = jobd_now_ms();
}

void out_progress_cb(void *arg, const char *id, const char *state, double progress)
{
    out_progress_t *p = arg;
    job_view_t key = {.id = id};
    job_view_t *j = bsearch(&key, p->jobs, p->n, sizeof *p->jobs, cmp_view);
    if (!j) return;
    if (progress < 0) progress = 0;
    if (terminal(state)) progress = 1; /* a finished job no longer counts as pending */
    int was_done = terminal(j->state);
    p->sum += progress - j->progress;
    j->progress = progress;
    j->state = state;
    if (!was_done && terminal(state)) {
        p->done++;
        if (strcmp(state, "succeeded") != 0) p->failed++;
    }
    if (!p->tty) {
        fprintf(stderr, "%s %s %.0f%%\n", id, state, progress * 100);
        return;
    }
    /* Redraw at most 20 times a second; the final state is drawn on free. */
    if (jobd_now_ms() - p->drawn_ms >= 50 || p->done == p->n) draw_bar(p);
}

void out_progress_free(out_progress_t *p)
{
    if (!p) return;
    if (p->tty && p->drawn_ms) {
        draw_bar(p);
        fputc('\n', stderr);
    }
    free(p->jobs);
    free(p);
}

/* ---- history ---- */

/* The last line of an error text that is not blank, cut to 80 bytes. */
static const char *last_line(const char *s, char *buf, size_t len)
{
    if (!s || !*s) return "-";
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > s && start[-1] != '\n')
        start--;
    size_t n = (size_t)(end - start);
    snprintf(buf, len, "%.*s%s", (int)(n > 80 ? 80 : n), start, n > 80 ? "..." : "");
    return buf;
}

void out_history_text(const json_t *history)
{
    table_t t = {.ncols = 6,
                 .head = {"ATTEMPT", "WORKER", "STARTED", "DURATION", "OUTCOME", "ERROR"},
                 .right = {1, 0, 0, 1, 0, 0}};
    size_t i;
    const json_t *h;
    json_array_foreach(history, i, h)
    {
        char att[32], dur[32] = "-", err[128], b1[64], b2[64];
        snprintf(att, sizeof att, "%" PRId64, int_field(h, "attempt", 0));
        const json_t *d = json_object_get(h, "duration_s");
        if (json_is_number(d)) out_format_age(json_number_value(d), dur, sizeof dur);
        const char *row[6] = {
            att,
            cell(h, "worker", b1, sizeof b1),
            cell(h, "started_at", b2, sizeof b2),
            dur,
            json_string_value(json_object_get(h, "outcome")),
            last_line(json_string_value(json_object_get(h, "error")), err, sizeof err)};
        table_row(&t, row);
    }
    table_print(&t);
}
