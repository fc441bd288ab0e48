/* batch.c - see batch.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

/* The fields a batch line may hold (jobd_job_spec_from_json's list). */
enum {
    F_V,
    F_ID,
    F_QUEUE,
    F_TYPE,
    F_PAYLOAD,
    F_PRIORITY,
    F_MAX_ATTEMPTS,
    F_TIMEOUT_S,
    F_RUN_AT,
    F_DELAY_S,
    F_IDEMPOTENCY_KEY,
    F_TRACEPARENT,
    F_NFIELDS
};

static const char *const field_names[F_NFIELDS] = {
    "v",       "id",       "queue",           "type",
    "payload", "priority", "max_attempts",    "timeout_s",
    "run_at",  "delay_s",  "idempotency_key", "traceparent",
};

/* ---- the fast scanner: returns 0 to hand the line to jansson ---- */

typedef struct {
    char *p, *end;
} cur_t;

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static void skip_ws(cur_t *c)
{
    while (c->p < c->end && is_ws(*c->p))
        c->p++;
}

/* A value ends at whitespace, ',' or '}' (checked by the caller). */
static int at_delim(const cur_t *c)
{
    return c->p < c->end && (is_ws(*c->p) || *c->p == ',' || *c->p == '}');
}

/* A string of printable ASCII without escapes: returns its first byte and
 * sets *close to the closing quote, or NULL. */
static char *plain_string(cur_t *c, char **close)
{
    if (c->p >= c->end || *c->p != '"') return NULL;
    char *start = ++c->p;
    for (; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *close = c->p++;
            return start;
        }
        if (ch == '\\' || ch < 0x20 || ch >= 0x7f) return NULL;
    }
    return NULL;
}

static int null_literal(cur_t *c)
{
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return at_delim(c);
    }
    return 0;
}

/* A JSON integer of at most 15 digits. */
static int plain_int(cur_t *c, long long *out)
{
    char *q = c->p;
    int neg = q < c->end && *q == '-';
    q += neg;
    if (q >= c->end || !is_digit(*q)) return 0;
    if (*q == '0' && q + 1 < c->end && is_digit(q[1])) return 0; /* not JSON */
    long long v = 0;
    int digits = 0;
    for (; q < c->end && is_digit(*q); q++) {
        if (++digits > 15) return 0;
        v = v * 10 + (*q - '0');
    }
    c->p = q;
    if (!at_delim(c)) return 0; /* a fraction or exponent: not an integer */
    *out = neg ? -v : v;
    return 1;
}

/* A non-negative JSON number without exponent: digits[.digits]. */
static int plain_number(cur_t *c, double *out)
{
    char *q = c->p;
    if (q >= c->end || !is_digit(*q)) return 0;
    if (*q == '0' && q + 1 < c->end && is_digit(q[1])) return 0;
    int digits = 0;
    while (q < c->end && is_digit(*q) && ++digits <= 15)
        q++;
    if (q < c->end && *q == '.') {
        q++;
        if (q >= c->end || !is_digit(*q)) return 0;
        while (q < c->end && is_digit(*q) && ++digits <= 15)
            q++;
    }
    if (digits > 15) return 0;
    char *num = c->p;
    c->p = q;
    if (!at_delim(c)) return 0;
    *out = strtod(num, NULL); /* stops at the delimiter */
    return 1;
}

/* Skips one JSON value, string escapes and nesting followed, without
 * judging it: libjobd parses the payload's text (and rejects it with its
 * own message) before anything is sent. */
static int skip_value(cur_t *c)
{
    char close[64];
    int depth = 0;
    char *q = c->p;
    do {
        if (q >= c->end) return 0;
        char ch = *q;
        if (ch == '\0') return 0; /* not JSON, and it would cut the text short */
        if (ch == '"') {
            for (q++; q < c->end && *q != '"'; q++) {
                if (*q == '\0') return 0;
                if (*q == '\\') q++;
            }
            if (q >= c->end) return 0;
            q++;
        } else if (ch == '{' || ch == '[') {
            if (depth == (int)sizeof close) return 0;
            close[depth++] = ch == '{' ? '}' : ']';
            q++;
        } else if (ch == '}' || ch == ']') {
            if (!depth || close[--depth] != ch) return 0;
            q++;
        } else if (depth) {
            q++;
        } else {
            /* A scalar at the top: up to the delimiter. */
            char *start = q;
            while (q < c->end && !is_ws(*q) && *q != ',' && *q != '}')
                q++;
            if (q == start) return 0;
        }
    } while (depth);
    c->p = q;
    return at_delim(c);
}

static int field_of(const char *name, size_t len)
{
    for (int f = 0; f < F_NFIELDS; f++)
        if (strlen(field_names[f]) == len && memcmp(field_names[f], name, len) == 0) return f;
    return -1;
}

/* Scans one line in [p, end). On success fills s, NUL-terminates the
 * strings and the payload in place and returns 1; returns 0 (nothing
 * changed) for anything it does not handle. */
static int scan_line(char *p, char *end, jobd_job_spec_t *s)
{
    cur_t c = {p, end};
    char *nul[F_NFIELDS]; /* where to write a NUL once the line is accepted */
    int nnul = 0, seen = 0;
    long long prio = -1, max = 0, timeout = 0;
    jobd_job_spec_init(s);
    skip_ws(&c);
    if (c.p >= c.end || *c.p++ != '{') return 0;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto tail;
    }
    for (;;) {
        char *kclose, *key = plain_string(&c, &kclose);
        if (!key) return 0;
        int f = field_of(key, (size_t)(kclose - key));
        if (f < 0 || (seen & (1 << f))) return 0; /* unknown or repeated */
        seen |= 1 << f;
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ':') return 0;
        skip_ws(&c);
        if (f != F_PAYLOAD && null_literal(&c)) {
            /* null is the field's absence, as for jobd_job_spec_from_json;
             * "v": null included (version 1 then). */
        } else if (f == F_PAYLOAD) {
            char *start = c.p;
            if (!skip_value(&c)) return 0;
            s->payload_json = start;
            nul[nnul++] = c.p;
        } else if (f == F_PRIORITY || f == F_MAX_ATTEMPTS || f == F_TIMEOUT_S || f == F_V) {
            long long v;
            if (!plain_int(&c, &v)) return 0;
            if (f == F_PRIORITY) prio = v;
            if (f == F_MAX_ATTEMPTS) max = v;
            if (f == F_TIMEOUT_S) timeout = v;
            if (f == F_V && v != 1) return 0;
        } else if (f == F_DELAY_S) {
            double d;
            if (!plain_number(&c, &d)) return 0;
            s->delay_ms = (int64_t)(d * 1000);
        } else {
            char *close, *str = plain_string(&c, &close);
            if (!str) return 0;
            nul[nnul++] = close;
            const char **dst = f == F_QUEUE             ? &s->queue
                               : f == F_TYPE            ? &s->type
                               : f == F_ID              ? &s->id
                               : f == F_IDEMPOTENCY_KEY ? &s->idempotency_key
                               : f == F_TRACEPARENT     ? &s->traceparent
                                                        : NULL;
            if (dst) {
                *dst = str;
            } else { /* F_RUN_AT: parsed below, once terminated */
                char saved = *close;
                *close = '\0';
                s->run_at_ms = jobd_parse_rfc3339_ms(str);
                *close = saved;
                if (s->run_at_ms < 0) return 0;
            }
        }
        skip_ws(&c);
        if (c.p >= c.end) return 0;
        if (*c.p == '}') {
            c.p++;
            break;
        }
        if (*c.p++ != ',') return 0;
        skip_ws(&c);
    }
tail:
    skip_ws(&c);
    if (c.p != c.end) return 0;
    /* The same ranges jobd_job_spec_from_json accepts; beyond them it says
     * why. */
    if (prio < -1 || prio > 9 || max < 0 || max > 1000 || timeout < 0) return 0;
    s->priority = (int)prio;
    s->max_attempts = (int)max;
    s->timeout_s = timeout;
    for (int i = 0; i < nnul; i++)
        *nul[i] = '\0';
    return 1;
}

/* ---- reading ---- */

static int read_all(FILE *f, char **out, size_t *len, char *err, size_t errlen)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            snprintf(err, errlen, "out of memory reading the batch");
            return JOBD_ENOMEM;
        }
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read the batch: %s", strerror(errno));
        free(buf);
        return JOBD_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int grow(batch_t *b)
{
    size_t cap = b->cap ? b->cap * 2 : 4096;
    jobd_job_spec_t *specs = realloc(b->specs, cap * sizeof *specs);
    if (specs) b->specs = specs;
    size_t *lines = realloc(b->lines, cap * sizeof *lines);
    if (lines) b->lines = lines;
    if (!specs || !lines) return -1;
    b->cap = cap;
    return 0;
}

/* The slow path: jansson, then libjobd's own reading of a job object. */
static int parse_slow(batch_t *b, const char *line, size_t len, jobd_job_spec_t *s, size_t lineno,
                      char *err, size_t errlen)
{
    if (b->nobjs == b->objcap) {
        size_t cap = b->objcap ? b->objcap * 2 : 64;
        json_t **objs = realloc(b->objs, cap * sizeof *objs);
        if (!objs) {
            snprintf(err, errlen, "line %zu: out of memory", lineno);
            return JOBD_ENOMEM;
        }
        b->objs = objs;
        b->objcap = cap;
    }
    json_error_t je;
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        snprintf(err, errlen, "line %zu: malformed JSON: %s (column %d)", lineno, je.text,
                 je.column);
        return JOBD_EJSON;
    }
    b->objs[b->nobjs++] = obj;
    char why[512];
    int rc = jobd_job_spec_from_json(s, obj, why, sizeof why);
    if (rc < 0) snprintf(err, errlen, "line %zu: %s", lineno, why);
    return rc;
}

static int blank(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!is_ws(*p)) return 0;
    return 1;
}

int batch_read(batch_t *b, FILE *f, char *err, size_t errlen)
{
    size_t len;
    int rc = read_all(f, &b->text, &len, err, errlen);
    if (rc < 0) return rc;
    char *p = b->text, *text_end = b->text + len;
    size_t lineno = 0;
    while (p < text_end) {
        char *nl = memchr(p, '\n', (size_t)(text_end - p));
        char *end = nl ? nl : text_end;
        lineno++;
        if (!blank(p, end)) {
            if (b->n == b->cap && grow(b) < 0) {
                snprintf(err, errlen, "line %zu: out of memory", lineno);
                return JOBD_ENOMEM;
            }
            jobd_job_spec_t *s = &b->specs[b->n];
            b->lines[b->n] = lineno;
            if (!scan_line(p, end, s)) {
                b->slow++;
                if ((rc = parse_slow(b, p, (size_t)(end - p), s, lineno, err, errlen)) < 0)
                    return rc;
            }
            b->n++;
        }
        p = nl ? nl + 1 : text_end;
    }
    return 0;
}

void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->nobjs; i++)
        json_decref(b->objs[i]);
    free(b->objs);
    free(b->specs);
    free(b->lines);
    free(b->text);
    memset(b, 0, sizeof *b);
}
