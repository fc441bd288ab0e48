/* envelope.c - see envelope.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define NAME_MAX_LEN 128
#define KEY_MAX_LEN 256

void jobd_job_spec_init(jobd_job_spec_t *s)
{
    memset(s, 0, sizeof *s);
    s->priority = -1;
}

static int name_ok(const char *s, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (!isalnum(ch) && !strchr(extra, ch)) return 0;
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
            if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) return 0;
        if (i < 3 && *p++ != '-') return 0;
    }
    return *p == '\0';
}

/* Parses the spec's payload into a new reference; NULL payload is JSON null. */
static int payload_value(const jobd_job_spec_t *s, json_t **out, char *err, size_t errlen)
{
    if (s->payload) {
        *out = json_incref(s->payload);
        return 0;
    }
    if (!s->payload_json) {
        *out = json_null();
        return 0;
    }
    json_error_t je;
    *out = json_loads(s->payload_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        snprintf(err, errlen, "payload is not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        return JOBD_EJSON;
    }
    return 0;
}

static int check_fields(const jobd_job_spec_t *s, char *err, size_t errlen)
{
    int rc;
    if ((rc = envelope_check_name("queue", s->queue, err, errlen)) < 0) return rc;
    if ((rc = envelope_check_name("type", s->type, err, errlen)) < 0) return rc;
    if (s->id && ((rc = envelope_check_name("id", s->id, err, errlen)) < 0 ||
                  strlen(s->id) > JOBD_ID_LEN)) {
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
    if (s->timeout_s < 0 || s->run_at_ms < 0 || s->delay_ms < 0) {
        snprintf(err, errlen, "timeout, run_at and delay must not be negative");
        return JOBD_EINVAL;
    }
    if (s->idempotency_key && (!*s->idempotency_key || strlen(s->idempotency_key) > KEY_MAX_LEN)) {
        snprintf(err, errlen, "idempotency key must be 1..%d bytes", KEY_MAX_LEN);
        return JOBD_EINVAL;
    }
    if (s->traceparent && !traceparent_ok(s->traceparent)) {
        snprintf(err, errlen, "traceparent \"%.64s\" is not a W3C traceparent", s->traceparent);
        return JOBD_EINVAL;
    }
    return 0;
}

static int check_payload_size(json_t *payload, size_t max, char *err, size_t errlen)
{
    /* json_dumpb with a NULL buffer only measures. */
    size_t n = json_dumpb(payload, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n > max) {
        snprintf(err, errlen, "payload is %zu bytes, over the limit of %zu", n, max);
        return JOBD_ETOOBIG;
    }
    return 0;
}

int jobd_job_spec_check(const jobd_job_spec_t *s, size_t payload_max, char *err, size_t errlen)
{
    int rc = check_fields(s, err, errlen);
    if (rc < 0) return rc;
    if (!s->payload && s->payload_json && strlen(s->payload_json) > (payload_max ? payload_max : JOBD_PAYLOAD_MAX) * 2 + 64) {
        snprintf(err, errlen, "payload is %zu bytes, over the limit of %zu",
                 strlen(s->payload_json), payload_max ? payload_max : (size_t)JOBD_PAYLOAD_MAX);
        return JOBD_ETOOBIG;
    }
    json_t *payload;
    if ((rc = payload_value(s, &payload, err, errlen)) < 0) return rc;
    rc = check_payload_size(payload, payload_max ? payload_max : JOBD_PAYLOAD_MAX, err, errlen);
    json_decref(payload);
    return rc;
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

static int get_int(json_t *obj, const char *k, long long *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "\"%s\" must be an integer", k);
        return JOBD_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

int jobd_job_spec_from_json(jobd_job_spec_t *s, json_t *obj, char *err, size_t errlen)
{
    jobd_job_spec_init(s);
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "a job must be a JSON object");
        return JOBD_EJSON;
    }
    static const char *const known[] = {"v", "id", "queue", "type", "payload", "priority",
                                        "max_attempts", "timeout_s", "run_at", "delay_s",
                                        "idempotency_key", "traceparent", "created_at", NULL};
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown field \"%.64s\"", k);
            return JOBD_EINVAL;
        }
    }
    long long prio = -1, max = 0, timeout = 0, v = 1;
    const char *run_at = NULL;
    int rc;
    if ((rc = get_int(obj, "v", &v, err, errlen)) < 0) return rc;
    if (v != 1) {
        snprintf(err, errlen, "envelope version %lld is not supported (this is v1)", v);
        return JOBD_EINVAL;
    }
    if ((rc = get_str(obj, "queue", &s->queue, err, errlen)) < 0 ||
        (rc = get_str(obj, "type", &s->type, err, errlen)) < 0 ||
        (rc = get_str(obj, "id", &s->id, err, errlen)) < 0 ||
        (rc = get_str(obj, "idempotency_key", &s->idempotency_key, err, errlen)) < 0 ||
        (rc = get_str(obj, "traceparent", &s->traceparent, err, errlen)) < 0 ||
        (rc = get_str(obj, "run_at", &run_at, err, errlen)) < 0 ||
        (rc = get_int(obj, "priority", &prio, err, errlen)) < 0 ||
        (rc = get_int(obj, "max_attempts", &max, err, errlen)) < 0 ||
        (rc = get_int(obj, "timeout_s", &timeout, err, errlen)) < 0)
        return rc;
    json_t *delay = json_object_get(obj, "delay_s");
    if (delay && !json_is_null(delay)) {
        if (!json_is_number(delay) || json_number_value(delay) < 0) {
            snprintf(err, errlen, "\"delay_s\" must be a non-negative number");
            return JOBD_EINVAL;
        }
        s->delay_ms = (int64_t)(json_number_value(delay) * 1000);
    }
    if (prio < -1 || prio > 9 || max < 0 || max > 1000 || timeout < 0) {
        snprintf(err, errlen, "priority, max_attempts or timeout_s out of range");
        return JOBD_EINVAL;
    }
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

int envelope_encode(const jobd_job_spec_t *s, const char *id, int64_t created_ms,
                    size_t payload_max, char **out, size_t *outlen, char *err, size_t errlen)
{
    int rc = check_fields(s, err, errlen);
    if (rc < 0) return rc;
    json_t *payload;
    if ((rc = payload_value(s, &payload, err, errlen)) < 0) return rc;
    if ((rc = check_payload_size(payload, payload_max ? payload_max : JOBD_PAYLOAD_MAX, err,
                                 errlen)) < 0) {
        json_decref(payload);
        return rc;
    }
    char created[40];
    jobd_format_rfc3339(created_ms, created, sizeof created);
    /* json_pack's "o" steals payload, success or not. */
    json_t *env = json_pack("{s:i, s:s, s:s, s:s, s:o, s:i, s:i, s:s}", "v", ENVELOPE_VERSION,
                            "id", id, "queue", s->queue, "type", s->type, "payload", payload,
                            "priority", s->priority < 0 ? JOBD_DEFAULT_PRIORITY : s->priority,
                            "max_attempts",
                            s->max_attempts ? s->max_attempts : JOBD_DEFAULT_MAX_ATTEMPTS,
                            "created_at", created);
    if (!env) return JOBD_ENOMEM;
    if (s->timeout_s) json_object_set_new(env, "timeout_s", json_integer(s->timeout_s));
    int64_t run_at = s->run_at_ms ? s->run_at_ms : (s->delay_ms ? created_ms + s->delay_ms : 0);
    if (run_at) {
        char when[40];
        jobd_format_rfc3339(run_at, when, sizeof when);
        json_object_set_new(env, "run_at", json_string(when));
    }
    if (s->idempotency_key)
        json_object_set_new(env, "idempotency_key", json_string(s->idempotency_key));
    if (s->traceparent) json_object_set_new(env, "traceparent", json_string(s->traceparent));
    *out = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(env);
    if (!*out) return JOBD_ENOMEM;
    *outlen = strlen(*out);
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
    if (!json_is_integer(v) || json_integer_value(v) != ENVELOPE_VERSION) {
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
    json_t *p = json_object_get(e->root, "priority");
    json_t *m = json_object_get(e->root, "max_attempts");
    json_t *t = json_object_get(e->root, "timeout_s");
    if ((p && !json_is_integer(p)) || (m && !json_is_integer(m)) || (t && !json_is_integer(t))) {
        snprintf(err, errlen, "malformed envelope: priority, max_attempts, timeout_s must be integers");
        goto bad;
    }
    e->priority = p ? (int)json_integer_value(p) : JOBD_DEFAULT_PRIORITY;
    e->max_attempts = m ? (int)json_integer_value(m) : JOBD_DEFAULT_MAX_ATTEMPTS;
    e->timeout_s = t ? json_integer_value(t) : 0;
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

json_t *envelope_status(const char *const *fields, const char *const *values,
                        const size_t *vlens, size_t n)
{
    json_t *env = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i], "env") == 0) env = json_loadb(values[i], vlens[i], 0, NULL);
    if (!env) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(fields[i], "env") == 0) env = json_pack("{s:s%}", "raw_envelope", values[i], vlens[i]);
        if (!env) return NULL;
    }
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
    }
    return env;
}
