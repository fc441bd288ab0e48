/* batch.c - see batch.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

/* ---- the arena: strings that outlive their line's tree ---- */

struct batch_chunk {
    struct batch_chunk *next;
    size_t used, cap;
    char data[];
};

#define CHUNK_SIZE (64 * 1024)

/* Copies s into b's arena. Returns the copy, or NULL if out of memory. */
static const char *keep(batch_t *b, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    struct batch_chunk *c = b->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = b->arena;
        c->used = 0;
        c->cap = cap;
        b->arena = c;
    }
    char *d = memcpy(c->data + c->used, s, n);
    c->used += n;
    return d;
}

/* ---- the payload's text in a line jansson accepted ---- */

/* These walk text that jansson has already accepted as one JSON object
 * without duplicate keys, so they only find boundaries; the bounds checks
 * are there so that a surprise ends in NULL, never past the line. */

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static char *skip_ws(char *p, char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* p at a '"': returns the byte after the closing quote, or NULL. */
static char *skip_string(char *p, char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* p at a value: returns the byte after it, or NULL. */
static char *skip_value(char *p, char *end)
{
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']')
            p++;
        return p;
    }
    size_t depth = 0;
    while (p < end) {
        if (*p == '"') {
            if (!(p = skip_string(p, end))) return NULL;
            continue;
        }
        if (*p == '{' || *p == '[') depth++;
        if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
        p++;
    }
    return NULL;
}

/* Whether the key token [k, kend) (quotes included) is "payload", escapes
 * ("pay\u006coad") decoded. */
static int key_is_payload(const char *k, const char *kend)
{
    static const char want[] = "\"payload\"";
    size_t n = (size_t)(kend - k);
    if (!memchr(k, '\\', n)) return n == sizeof want - 1 && memcmp(k, want, n) == 0;
    json_t *s = json_loadb(k, n, JSON_DECODE_ANY, NULL);
    int is = json_is_string(s) && strcmp(json_string_value(s), "payload") == 0;
    json_decref(s);
    return is;
}

/* Finds the value of the top-level member "payload". Returns its first
 * byte and sets *vend to the byte after it, or returns NULL. */
static char *payload_text(char *p, char *end, char **vend)
{
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return NULL;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        char *k = p;
        if (!(p = skip_string(p, end))) return NULL;
        int is_payload = key_is_payload(k, p);
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':') return NULL;
        char *v = skip_ws(p, end);
        if (!(p = skip_value(v, end))) return NULL;
        if (is_payload) {
            *vend = p;
            return v;
        }
        p = skip_ws(p, end);
        if (p >= end || *p++ != ',') return NULL;
    }
}

/* ---- one line ---- */

/* Reads the line [p, end) into s. Returns 0 or a JOBD_E* code with
 * "line N: ..." in err. */
static int read_line(batch_t *b, char *p, char *end, jobd_job_spec_t *s, size_t lineno, char *err,
                     size_t errlen)
{
    size_t len = (size_t)(end - p);
    const char *nul = memchr(p, '\0', len);
    if (nul) {
        snprintf(err, errlen, "line %zu: a NUL byte at column %zu (not JSON)", lineno,
                 (size_t)(nul - p) + 1);
        return JOBD_EJSON;
    }
    json_error_t je;
    json_t *obj = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        if (json_error_code(&je) == json_error_null_character)
            snprintf(err, errlen,
                     "line %zu: a string holds \\u0000 (NUL), which jobd does not "
                     "accept (column %d)",
                     lineno, je.column);
        else
            snprintf(err, errlen, "line %zu: malformed JSON: %s (column %d)", lineno, je.text,
                     je.column);
        return JOBD_EJSON;
    }
    char why[512];
    int rc = jobd_job_spec_from_json(s, obj, why, sizeof why);
    if (rc < 0) {
        snprintf(err, errlen, "line %zu: %s", lineno, why);
        goto out;
    }
    /* The spec's strings point into the tree: copy them before it goes. */
    const char **strs[] = {&s->queue, &s->type, &s->id, &s->idempotency_key, &s->traceparent};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (*strs[i] && !(*strs[i] = keep(b, *strs[i]))) goto oom;
    if (json_object_get(obj, "payload")) {
        char *vend, *v = payload_text(p, end, &vend);
        if (v && vend < end) {
            *vend = '\0'; /* a delimiter jansson has read already */
            s->payload_json = v;
        } else {
            /* Not reached for text jansson accepted; the parsed value,
             * re-encoded, is still this line's payload. */
            char *t = json_dumps(s->payload, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            s->payload_json = t ? keep(b, t) : NULL;
            free(t);
            if (!s->payload_json) goto oom;
        }
    }
    s->payload = NULL; /* it points into the tree */
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "line %zu: out of memory", lineno);
    rc = JOBD_ENOMEM;
out:
    json_decref(obj);
    return rc;
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
            b->lines[b->n] = lineno;
            if ((rc = read_line(b, p, end, &b->specs[b->n], lineno, err, errlen)) < 0) return rc;
            b->n++;
        }
        p = nl ? nl + 1 : text_end;
    }
    return 0;
}

void batch_free(batch_t *b)
{
    while (b->arena) {
        struct batch_chunk *next = b->arena->next;
        free(b->arena);
        b->arena = next;
    }
    free(b->specs);
    free(b->lines);
    free(b->text);
    memset(b, 0, sizeof *b);
}
