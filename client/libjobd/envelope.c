/* envelope.c - see envelope.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "num.h"

#define NAME_MAX_LEN 128
#define KEY_MAX_LEN 256

void jobd_job_spec_init(jobd_job_spec_t *s)
{
    memset(s, 0, sizeof *s);
    s->priority = -1;
}

/* ASCII only: <ctype.h> would follow the caller's locale. */
static int ascii_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int name_ok(const char *s, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (!ascii_alnum(ch) && !strchr(extra, ch)) return 0;
    }
    return n >= 1 && n <= NAME_MAX_LEN;
}

int envelope_check_name(const char *what, const char *s, char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "%s is required", what);
        return JOBD_EINVAL;
    }
    /* Braces and colons in a queue name would break the hash tag. */
    const char *extra = strcmp(what, "queue") == 0 ? "._-" : "._:-";
    if (!name_ok(s, extra)) {
        snprintf(err, errlen, "%s \"%.64s\" is not 1..%d characters of [A-Za-z0-9%s]", what, s,
                 NAME_MAX_LEN, extra);
        return JOBD_EINVAL;
    }
    return 0;
}

static int traceparent_ok(const char *t)
{
    /* version-traceid-parentid-flags: 2-32-16-2 lowercase hex digits. */
    static const int parts[] = {2, 32, 16, 2};
    const char *p = t;
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < parts[i]; k++, p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
        if (i < 3 && *p++ != '-') return 0;
    }
    return *p == '\0';
}

/* Returns 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i <= k) return 0; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

static int check_fields(const jobd_job_spec_t *s, char *err, size_t errlen)
{
    int rc;
    if ((rc = envelope_check_name("queue", s->queue, err, errlen)) < 0) return rc;
    if ((rc = envelope_check_name("type", s->type, err, errlen)) < 0) return rc;
    if (s->id &&
        (envelope_check_name("id", s->id, err, errlen) < 0 || strlen(s->id) > JOBD_ID_LEN)) {
        snprintf(err, errlen, "id \"%.64s\" must be 1..%d characters of [A-Za-z0-9._:-]", s->id,
                 JOBD_ID_LEN);
        return JOBD_EINVAL;
    }
    if (s->priority < -1 || s->priority > 9) {
        snprintf(err, errlen, "priority %d is outside 0..9", s->priority);
        return JOBD_EINVAL;
    }
    if (s->max_attempts < 0 || s->max_attempts > 1000) {
        snprintf(err, errlen, "max_attempts %d is outside 1..1000", s->max_attempts);
        return JOBD_EINVAL;
    }
    /* Far beyond any real use, and keeps run_at_ms + delay and the RFC 3339
     * years (<= 9999) in range. */
    static const char *const what[] = {"retry_base_s", "retry_cap_s", "delay_s"};
    const int64_t ms[] = {s->retry_base_ms, s->retry_cap_ms, s->delay_ms};
    for (int i = 0; i < 3; i++) {
        if (ms[i] < 0 || ms[i] > NUM_100Y_MS) {
            snprintf(err, errlen, "%s must be 0..%lld seconds (100 years), not %lld ms", what[i],
                     NUM_100Y_S, (long long)ms[i]);
            return JOBD_EINVAL;
        }
    }
    if (s->timeout_s < 0 || s->timeout_s > NUM_100Y_S) {
        snprintf(err, errlen, "timeout_s %lld is outside 0..%lld (100 years)",
                 (long long)s->timeout_s, NUM_100Y_S);
        return JOBD_EINVAL;
    }
    if (s->run_at_ms < 0 || s->run_at_ms > 253402300799999LL) {
        snprintf(err, errlen, "run_at must lie in 1970..9999");
        return JOBD_EINVAL;
    }
    if (s->idempotency_key) {
        size_t kl = strlen(s->idempotency_key);
        if (kl == 0 || kl > KEY_MAX_LEN ||
            !utf8_ok((const unsigned char *)s->idempotency_key, kl)) {
            snprintf(err, errlen, "idempotency key must be 1..%d bytes of UTF-8", KEY_MAX_LEN);
            return JOBD_EINVAL;
        }
    }
    if (s->traceparent && !traceparent_ok(s->traceparent)) {
        snprintf(err, errlen, "traceparent \"%.64s\" is not a W3C traceparent", s->traceparent);
        return JOBD_EINVAL;
    }
    return 0;
}

#define PAYLOAD_DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)

/* Copies JSON text s without its insignificant whitespace (outside strings)
 * to out, if out is not NULL. Returns the length of the compact text. The
 * text is not validated here. */
static size_t json_compact(const char *s, char *out)
{
    size_t n = 0;
    int in_str = 0, esc = 0;
    for (; *s; s++) {
        char ch = *s;
        if (in_str) {
            if (esc)
                esc = 0;
            else if (ch == '\\')
                esc = 1;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            continue;
        } else if (ch == '"') {
            in_str = 1;
        }
        if (out) out[n] = ch;
        n++;
    }
    return n;
}

/* The size of the payload as the envelope stores it. */
static int payload_size(const jobd_job_spec_t *s, size_t *n, char *err, size_t errlen)
{
    if (s->payload) {
        *n = json_dumpb(s->payload, NULL, 0, PAYLOAD_DUMP_FLAGS);
        if (*n == 0) {
            snprintf(err, errlen, "payload cannot be encoded as JSON");
            return JOBD_EJSON;
        }
    } else {
        *n = s->payload_json ? json_compact(s->payload_json, NULL) : 4; /* null */
    }
    return 0;
}

int jobd_job_spec_check(const jobd_job_spec_t *s, size_t payload_max, char *err, size_t errlen)
{
    int rc = check_fields(s, err, errlen);
    if (rc < 0) return rc;
    size_t max = payload_max ? payload_max : JOBD_PAYLOAD_MAX, n;
    /* Size first: it needs no parse, so an oversized payload costs one scan. */
    if ((rc = payload_size(s, &n, err, errlen)) < 0) return rc;
    if (n > max) {
        snprintf(err, errlen, "payload is %zu bytes, over the limit of %zu", n, max);
        return JOBD_ETOOBIG;
    }
    if (!s->payload && s->payload_json) {
        json_error_t je;
        json_t *v = json_loads(s->payload_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if (!v) {
            snprintf(err, errlen, "payload is not valid JSON: %s (line %d, column %d)", je.text,
                     je.line, je.column);
            return JOBD_EJSON;
        }
        json_decref(v);
    }
    return 0;
}

static int get_str(json_t *obj, const char *k, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"%s\" must be a string", k);
        return JOBD_EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

/* A number field: absent or null leaves *out alone (the default). */
static int get_int(json_t *obj, const char *k, int64_t lo, int64_t hi, int64_t *out, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(obj, k);
    if (!v || json_is_null(v)) return 0;
    return num_json_int(v, k, lo, hi, out, err, errlen);
}

static int get_ms(json_t *obj, const char *k, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, k);
    if (!v || json_is_null(v)) return 0;
    return num_json_seconds_ms(v, k, 0, NUM_100Y_MS, out, err, errlen);
}

int jobd_job_spec_from_json(jobd_job_spec_t *s, json_t *obj, char *err, size_t errlen)
{
    jobd_job_spec_init(s);
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "a job must be a JSON object");
        return JOBD_EJSON;
    }
    static const char *const known[] = {
        "v",          "id",           "queue",           "type",
        "payload",    "priority",     "max_attempts",    "timeout_s",
        "run_at",     "delay_s",      "idempotency_key", "traceparent",
        "created_at", "retry_base_s", "retry_cap_s",     NULL};
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown field \"%.64s\"", k);
            return JOBD_EINVAL;
        }
    }
    int64_t prio = -1, max = 0, timeout = 0, v = 1;
    const char *run_at = NULL;
    char why[256];
    int rc;
    if (get_int(obj, "v", 1, 1, &v, why, sizeof why) < 0) {
        snprintf(err, errlen, "unsupported envelope version (this is v1): %s", why);
        return JOBD_EINVAL;
    }
    /* The ranges the submit check applies (priority -1 and max_attempts 0
     * mean "the default"), each refused with the field's name. */
    if ((rc = get_str(obj, "queue", &s->queue, err, errlen)) < 0 ||
        (rc = get_str(obj, "type", &s->type, err, errlen)) < 0 ||
        (rc = get_str(obj, "id", &s->id, err, errlen)) < 0 ||
        (rc = get_str(obj, "idempotency_key", &s->idempotency_key, err, errlen)) < 0 ||
        (rc = get_str(obj, "traceparent", &s->traceparent, err, errlen)) < 0 ||
        (rc = get_str(obj, "run_at", &run_at, err, errlen)) < 0 ||
        (rc = get_int(obj, "priority", -1, 9, &prio, err, errlen)) < 0 ||
        (rc = get_int(obj, "max_attempts", 0, 1000, &max, err, errlen)) < 0 ||
        (rc = get_int(obj, "timeout_s", 0, NUM_100Y_S, &timeout, err, errlen)) < 0 ||
        (rc = get_ms(obj, "retry_base_s", &s->retry_base_ms, err, errlen)) < 0 ||
        (rc = get_ms(obj, "retry_cap_s", &s->retry_cap_ms, err, errlen)) < 0 ||
        (rc = get_ms(obj, "delay_s", &s->delay_ms, err, errlen)) < 0)
        return rc;
    s->priority = (int)prio;
    s->max_attempts = (int)max;
    s->timeout_s = timeout;
    if (run_at) {
        s->run_at_ms = jobd_parse_rfc3339_ms(run_at);
        if (s->run_at_ms < 0) {
            snprintf(err, errlen, "\"run_at\" is not an RFC 3339 time: %.64s", run_at);
            return JOBD_EINVAL;
        }
    }
    json_t *payload = json_object_get(obj, "payload");
    s->payload = payload ? payload : json_null();
    return 0;
}

void envelope_buf_free(envelope_buf_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Makes room for extra more bytes plus a NUL. Returns 0 or -1. */
static int reserve(envelope_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    char *nb = realloc(b->buf, ncap);
    if (!nb) return -1;
    b->buf = nb;
    b->cap = ncap;
    return 0;
}

/* Callers reserve() first, so b->buf holds the room (the analyzer cannot
 * tie cap to buf, hence the NOLINT). */
static void put(envelope_buf_t *b, const char *s, size_t n)
{
    if (n) memcpy(b->buf + b->len, s, n); // NOLINT(clang-analyzer-core.NonNullParamChecker)
    b->len += n;
}

#define PUT_LIT(b, lit) put(b, lit, sizeof(lit) - 1)

static void put_ll(envelope_buf_t *b, long long v);

/* Writes ms as a JSON number of seconds: 1500 -> 1.5, 2000 -> 2. */
static void put_seconds(envelope_buf_t *b, int64_t ms)
{
    put_ll(b, ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac) {
        char t[5] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                     (char)('0' + frac % 10), 0};
        size_t n = 4;
        while (t[n - 1] == '0')
            n--;
        put(b, t, n);
    }
}

static void put_ll(envelope_buf_t *b, long long v)
{
    char t[24];
    int i = sizeof t;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) t[--i] = '-';
    put(b, t + i, sizeof t - (size_t)i);
}

/* Appends s as a JSON string (quotes included). Needs 6 * strlen(s) + 2
 * bytes reserved. s is valid UTF-8 (checked by the caller). */
static void put_str(envelope_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *p = b->buf + b->len;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            *p++ = '\\';
            *p++ = (char)ch;
        } else if (ch < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[ch >> 4];
            p[5] = hex[ch & 15];
            p += 6;
        } else {
            *p++ = (char)ch;
        }
    }
    *p++ = '"';
    b->len = (size_t)(p - b->buf);
}

static void put_time(envelope_buf_t *b, int64_t ms)
{
    char t[40];
    jobd_format_rfc3339(ms, t, sizeof t);
    put(b, t, strlen(t));
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

int envelope_encode_buf(const jobd_job_spec_t *s, const char *id, int64_t created_ms,
                        size_t payload_max, int checked, envelope_buf_t *b, char *err,
                        size_t errlen)
{
    int rc;
    if (!checked && (rc = jobd_job_spec_check(s, payload_max, err, errlen)) < 0) return rc;
    b->len = 0;
    /* Room for everything but the payload: strings escaped at worst 6:1,
     * numbers and times under 200 bytes in all. */
    size_t fixed = 6 * (slen(id) + slen(s->queue) + slen(s->type) + slen(s->idempotency_key) +
                        slen(s->traceparent)) +
                   400;
    if (reserve(b, fixed) < 0) goto oom;
    PUT_LIT(b, "{\"v\":1,\"id\":");
    put_str(b, id);
    PUT_LIT(b, ",\"queue\":");
    put_str(b, s->queue);
    PUT_LIT(b, ",\"type\":");
    put_str(b, s->type);
    PUT_LIT(b, ",\"payload\":");
    if (s->payload) {
        size_t n = json_dumpb(s->payload, NULL, 0, PAYLOAD_DUMP_FLAGS);
        if (n == 0) {
            snprintf(err, errlen, "payload cannot be encoded as JSON");
            return JOBD_EJSON;
        }
        if (reserve(b, n + fixed) < 0) goto oom;
        b->len += json_dumpb(s->payload, b->buf + b->len, n, PAYLOAD_DUMP_FLAGS);
    } else if (s->payload_json) {
        if (reserve(b, strlen(s->payload_json) + fixed) < 0) goto oom;
        b->len += json_compact(s->payload_json, b->buf + b->len);
    } else {
        PUT_LIT(b, "null");
    }
    PUT_LIT(b, ",\"priority\":");
    put_ll(b, s->priority < 0 ? JOBD_DEFAULT_PRIORITY : s->priority);
    /* Absent when the job does not set it: the handler's max_attempts
     * applies then, else JOBD_DEFAULT_MAX_ATTEMPTS (decided by the worker). */
    if (s->max_attempts) {
        PUT_LIT(b, ",\"max_attempts\":");
        put_ll(b, s->max_attempts);
    }
    PUT_LIT(b, ",\"created_at\":\"");
    put_time(b, created_ms);
    PUT_LIT(b, "\"");
    if (s->timeout_s) {
        PUT_LIT(b, ",\"timeout_s\":");
        put_ll(b, s->timeout_s);
    }
    if (s->retry_base_ms) {
        PUT_LIT(b, ",\"retry_base_s\":");
        put_seconds(b, s->retry_base_ms);
    }
    if (s->retry_cap_ms) {
        PUT_LIT(b, ",\"retry_cap_s\":");
        put_seconds(b, s->retry_cap_ms);
    }
    int64_t run_at = s->run_at_ms ? s->run_at_ms : (s->delay_ms ? created_ms + s->delay_ms : 0);
    if (run_at) {
        PUT_LIT(b, ",\"run_at\":\"");
        put_time(b, run_at);
        PUT_LIT(b, "\"");
    }
    if (s->idempotency_key) {
        PUT_LIT(b, ",\"idempotency_key\":");
        put_str(b, s->idempotency_key);
    }
    if (s->traceparent) {
        PUT_LIT(b, ",\"traceparent\":");
        put_str(b, s->traceparent);
    }
    PUT_LIT(b, "}");
    b->buf[b->len] = '\0';
    return 0;
oom:
    snprintf(err, errlen, "out of memory encoding a job");
    return JOBD_ENOMEM;
}

int envelope_encode(const jobd_job_spec_t *s, const char *id, int64_t created_ms,
                    size_t payload_max, char **out, size_t *outlen, char *err, size_t errlen)
{
    envelope_buf_t b = {0};
    int rc = envelope_encode_buf(s, id, created_ms, payload_max, 0, &b, err, errlen);
    if (rc < 0) {
        envelope_buf_free(&b);
        return rc;
    }
    *out = b.buf;
    *outlen = b.len;
    return 0;
}

/* A backoff of the envelope in ms (0: absent). The schema asks for a number
 * above 0 and sets no maximum: beyond 100 years it is 100 years, and a
 * positive value under 1 ms is 1 ms (0 would mean "not set"). */
static int decode_backoff(json_t *root, const char *k, int64_t *out, char *why, size_t whylen)
{
    json_t *v = json_object_get(root, k);
    *out = 0;
    if (!v) return 0;
    double sec = json_number_value(v);
    if (!json_is_number(v) || !(sec > 0)) {
        snprintf(why, whylen, "\"%s\" must be a number of seconds above 0", k);
        return JOBD_EINVAL;
    }
    if (sec >= (double)NUM_100Y_S)
        *out = NUM_100Y_MS;
    else if (num_json_seconds_ms(v, k, 1, NUM_100Y_MS, out, why, whylen) < 0)
        *out = 1;
    return 0;
}

int envelope_decode(const char *text, size_t len, envelope_t *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    json_error_t je;
    e->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!e->root) {
        snprintf(err, errlen, "malformed envelope: %s", je.text);
        return JOBD_EJSON;
    }
    json_t *v = json_object_get(e->root, "v");
    int64_t version;
    if (num_json_int(v, "v", ENVELOPE_VERSION, ENVELOPE_VERSION, &version, err, errlen) < 0) {
        snprintf(err, errlen, "malformed envelope: \"v\" must be %d", ENVELOPE_VERSION);
        goto bad;
    }
    e->id = json_string_value(json_object_get(e->root, "id"));
    e->queue = json_string_value(json_object_get(e->root, "queue"));
    e->type = json_string_value(json_object_get(e->root, "type"));
    if (!e->id || !e->queue || !e->type) {
        snprintf(err, errlen, "malformed envelope: \"id\", \"queue\" and \"type\" are required");
        goto bad;
    }
    e->traceparent = json_string_value(json_object_get(e->root, "traceparent"));
    e->idempotency_key = json_string_value(json_object_get(e->root, "idempotency_key"));
    e->payload = json_object_get(e->root, "payload");
    if (!e->payload) e->payload = json_null();
    /* The schema's ranges (schema/job.v1.schema.json), so that no number
     * from Redis reaches an int it does not fit or a cast it overflows
     * (timeout_s 9223372036854775807 * 1000 would). Out of range, the job
     * goes dead with the reason (Guarantee 7). */
    json_t *p = json_object_get(e->root, "priority");
    json_t *m = json_object_get(e->root, "max_attempts");
    json_t *t = json_object_get(e->root, "timeout_s");
    int64_t prio = JOBD_DEFAULT_PRIORITY, max = 0, timeout = 0; /* absent: not set by the job */
    char why[256];
    if ((p && num_json_int(p, "priority", 0, 9, &prio, why, sizeof why) < 0) ||
        (m && num_json_int(m, "max_attempts", 1, 1000, &max, why, sizeof why) < 0) ||
        (t && num_json_int(t, "timeout_s", 1, NUM_100Y_S, &timeout, why, sizeof why) < 0) ||
        decode_backoff(e->root, "retry_base_s", &e->retry_base_ms, why, sizeof why) < 0 ||
        decode_backoff(e->root, "retry_cap_s", &e->retry_cap_ms, why, sizeof why) < 0) {
        snprintf(err, errlen, "malformed envelope: %s", why);
        goto bad;
    }
    e->priority = (int)prio;
    e->max_attempts = (int)max;
    e->timeout_s = timeout;
    return 0;
bad:
    json_decref(e->root);
    e->root = NULL;
    return JOBD_EJSON;
}

void envelope_clear(envelope_t *e)
{
    json_decref(e->root);
    memset(e, 0, sizeof *e);
}

static json_t *json_or_string(const char *s, size_t len)
{
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    return v ? v : json_stringn(s, len);
}

static json_t *time_value(const char *s)
{
    char b[40];
    jobd_format_rfc3339(strtoll(s, NULL, 10), b, sizeof b);
    return json_string(b);
}

json_t *envelope_status(const char *const *fields, const char *const *values, const size_t *vlens,
                        size_t n)
{
    json_t *env = NULL;
    size_t envi = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i], "env") == 0) envi = i;
    if (envi == n) return NULL;
    env = json_loadb(values[envi], vlens[envi], 0, NULL);
    if (!json_is_object(env)) {
        /* A malformed envelope (it goes dead when claimed) is still shown,
         * as text, with the state fields below; JSON strings must be UTF-8,
         * so text that is not gets a placeholder. */
        json_decref(env);
        env = json_object();
        json_t *raw = json_stringn(values[envi], vlens[envi]);
        if (!raw) raw = json_string("(envelope is not UTF-8)");
        json_object_set_new(env, "raw_envelope", raw);
    }
    json_object_set_new(env, "attempt", json_integer(0));
    json_object_set_new(env, "progress", json_real(0));
    json_object_set_new(env, "checkpoint", json_null());
    json_object_set_new(env, "result", json_null());
    json_object_set_new(env, "error", json_null());
    json_object_set_new(env, "worker", json_null());
    json_object_set_new(env, "started_at", json_null());
    json_object_set_new(env, "finished_at", json_null());
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i], *v = values[i];
        size_t l = vlens[i];
        if (strcmp(f, "state") == 0 || strcmp(f, "error") == 0 || strcmp(f, "worker") == 0)
            json_object_set_new(env, f, json_stringn(v, l));
        else if (strcmp(f, "attempt") == 0)
            json_object_set_new(env, f, json_integer(strtoll(v, NULL, 10)));
        else if (strcmp(f, "progress") == 0)
            json_object_set_new(env, f, json_real(strtod(v, NULL)));
        else if (strcmp(f, "checkpoint") == 0 || strcmp(f, "result") == 0)
            json_object_set_new(env, f, json_or_string(v, l));
        else if (strcmp(f, "started_at") == 0 || strcmp(f, "finished_at") == 0 ||
                 strcmp(f, "lease_until") == 0)
            json_object_set_new(env, f, time_value(v));
        else if (strcmp(f, "run_at") == 0)
            json_object_set_new(env, "run_at", time_value(v));
        else if (strcmp(f, "cancel") == 0)
            json_object_set_new(env, "cancel_requested", json_true());
        else if (strcmp(f, "batch") == 0)
            json_object_set_new(env, "batch", json_stringn(v, l));
    }
    /* A job deferred unstarted (defer.lua: resources busy or rate-limited,
     * no handler on the worker that claimed it) says why while it waits:
     * its 'waiting' holds as long as run_at is the one the deferral set. */
    const char *wv = NULL, *wu = NULL, *ra = NULL, *st = NULL;
    size_t wl = 0, wul = 0, ral = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i], "waiting") == 0) wv = values[i], wl = vlens[i];
        if (strcmp(fields[i], "waiting_until") == 0) wu = values[i], wul = vlens[i];
        if (strcmp(fields[i], "run_at") == 0) ra = values[i], ral = vlens[i];
        if (strcmp(fields[i], "state") == 0) st = values[i];
    }
    if (wv && wu && ra && st && strcmp(st, "scheduled") == 0 && wul == ral &&
        memcmp(wu, ra, wul) == 0)
        json_object_set_new(env, "waiting", json_stringn(wv, wl));
    return env;
}
