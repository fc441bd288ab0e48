/* hproto.c - see hproto.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hproto.h"

static const char *const keys[] = {"progress", "checkpoint", "result", "log"};
#define NKEYS 4

size_t hproto_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (len - i < n) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += n;
    }
    return len;
}

/* The HPROTO_HAS_* flags of the protocol keys the text names: "KEY", then
 * optional blanks, then ':'. Used where the text is not (whole) JSON. */
static unsigned named_keys(const char *s, size_t len)
{
    unsigned has = 0;
    for (int k = 0; k < NKEYS; k++) {
        char quoted[16];
        int qn = snprintf(quoted, sizeof quoted, "\"%s\"", keys[k]);
        const char *p = s, *end = s + len;
        while ((p = memmem(p, (size_t)(end - p), quoted, (size_t)qn)) != NULL) {
            const char *q = p + qn;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            if (q < end && *q == ':') {
                has |= 1u << k;
                break;
            }
            p += qn;
        }
    }
    return has;
}

/* Whether the line starts (after blanks) with '{'. */
static int starts_object(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    return i < len && line[i] == '{';
}

static void set_kind(hproto_msg_t *msg, hproto_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_kind(hproto_msg_t *msg, hproto_kind_t kind, const char *fmt, ...)
{
    hproto_clear(msg);
    msg->kind = kind;
    msg->has = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg->err, sizeof msg->err, fmt, ap);
    va_end(ap);
}

/* Compact JSON of a checkpoint or result value, or NULL (refused) if it is
 * over max_value bytes. */
static char *value_text(hproto_msg_t *msg, const char *key, json_t *v, size_t max_value)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        set_kind(msg, HPROTO_INVALID, "%s could not be encoded", key);
        return NULL;
    }
    size_t n = strlen(text);
    if (n > max_value) {
        free(text);
        set_kind(msg, HPROTO_REFUSED, "%s is %zu bytes, over the %zu-byte limit", key, n,
                 max_value);
        return NULL;
    }
    return text;
}

/* A line that looks like a message but did not load as JSON. */
static void not_json(const char *line, size_t len, unsigned has, const json_error_t *je,
                     hproto_msg_t *msg)
{
    size_t bad = hproto_utf8_check(line, len);
    if (bad < len) {
        /* Its bytes cannot be stored as JSON text: a result or checkpoint
         * in it is lost, which must not look like success. */
        if (has & (HPROTO_HAS_RESULT | HPROTO_HAS_CHECKPOINT))
            set_kind(msg, HPROTO_REFUSED, "%s is not valid UTF-8 (byte %zu of its line)",
                     has & HPROTO_HAS_RESULT ? "result" : "checkpoint", bad);
        else
            set_kind(msg, HPROTO_INVALID, "not valid UTF-8 (byte %zu)", bad);
        return;
    }
    set_kind(msg, HPROTO_INVALID, "not valid JSON: %s (column %d)", je->text, je->column);
}

void hproto_parse(const char *line, size_t len, size_t max_value, hproto_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    /* Cheap filter first: most output lines are not JSON objects. */
    if (!starts_object(line, len)) return;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        unsigned has = named_keys(line, len);
        if (has) not_json(line, len, has, &je, msg);
        return;
    }
    if (!json_is_object(o)) { /* "{...} trailing" is rejected by jansson: cannot happen */
        json_decref(o);
        return;
    }
    /* Which keys are there: a line with no protocol key is output. */
    const char *key;
    json_t *v;
    const char *unknown = NULL;
    unsigned has = 0;
    json_object_foreach(o, key, v)
    {
        int k = 0;
        while (k < NKEYS && strcmp(key, keys[k]) != 0)
            k++;
        if (k < NKEYS)
            has |= 1u << k;
        else if (!unknown)
            unknown = key;
    }
    if (!has) goto out;
    if (unknown) {
        set_kind(msg, HPROTO_INVALID, "unknown key \"%.40s\" beside protocol keys", unknown);
        goto out;
    }
    if (has & HPROTO_HAS_PROGRESS) {
        v = json_object_get(o, "progress");
        if (!json_is_number(v)) {
            set_kind(msg, HPROTO_INVALID, "progress must be a number in 0..1");
            goto out;
        }
        double p = json_number_value(v);
        msg->progress = p < 0 ? 0 : (p > 1 ? 1 : p);
    }
    if (has & HPROTO_HAS_LOG) {
        v = json_object_get(o, "log");
        if (!json_is_string(v)) {
            set_kind(msg, HPROTO_INVALID, "log must be a string");
            goto out;
        }
        msg->log = strndup(json_string_value(v), json_string_length(v));
    }
    if ((has & HPROTO_HAS_CHECKPOINT) &&
        !(msg->checkpoint =
              value_text(msg, "checkpoint", json_object_get(o, "checkpoint"), max_value)))
        goto out;
    if ((has & HPROTO_HAS_RESULT) &&
        !(msg->result = value_text(msg, "result", json_object_get(o, "result"), max_value)))
        goto out;
    msg->kind = HPROTO_MESSAGE;
    msg->has = has;
out:
    json_decref(o);
}

void hproto_parse_cut(const char *prefix, size_t len, size_t total, size_t max_value,
                      hproto_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (!starts_object(prefix, len)) return;
    unsigned has = named_keys(prefix, len);
    if (has & (HPROTO_HAS_RESULT | HPROTO_HAS_CHECKPOINT))
        set_kind(msg, HPROTO_REFUSED, "%s is over the %zu-byte limit (its line is %zu bytes)",
                 has & HPROTO_HAS_RESULT ? "result" : "checkpoint", max_value, total);
    else if (has)
        set_kind(msg, HPROTO_INVALID, "a %zu-byte line, longer than any message may be", total);
}

void hproto_clear(hproto_msg_t *msg)
{
    free(msg->checkpoint);
    free(msg->result);
    free(msg->log);
    msg->checkpoint = msg->result = msg->log = NULL;
}

/* ---- protocol v2 (persistent handlers) ---- */

static int done_of(const char *s, hproto_done_t *out)
{
    static const char *const names[] = {"succeeded", "failed", "stopped"};
    for (int i = 0; s && i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (hproto_done_t)(HPROTO_DONE_SUCCEEDED + i);
            return 0;
        }
    }
    return -1;
}

/* The keys of a tagged line other than id, done and error (o: without
 * them), judged by the v1 rules into l->msg. */
static void tagged_rest(json_t *o, size_t max_value, hproto_line_t *l)
{
    if (!json_object_size(o)) return;
    char *rest = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!rest) return;
    hproto_parse(rest, strlen(rest), max_value, &l->msg);
    if (l->msg.kind == HPROTO_OUTPUT)
        set_kind(&l->msg, HPROTO_INVALID, "unknown keys beside \"id\"");
    l->has_msg = 1;
    free(rest);
}

static void tagged(json_t *o, json_t *id, size_t max_value, hproto_line_t *l)
{
    l->kind = HPROTO_TAGGED;
    const char *ids = json_string_value(id);
    l->id = ids ? strdup(ids) : NULL;
    json_t *done = json_object_get(o, "done"), *error = json_object_get(o, "error");
    hproto_done_t status = HPROTO_DONE_SUCCEEDED;
    int bad_done = done && done_of(json_string_value(done), &status) < 0;
    int bad_error = error && (!done || !json_is_string(error));
    if (done && !bad_done) l->done = status;
    if (l->done && json_is_string(error)) l->error = strdup(json_string_value(error));
    json_object_del(o, "id");
    json_object_del(o, "done");
    json_object_del(o, "error");
    if (bad_done || bad_error) {
        set_kind(&l->msg, HPROTO_INVALID, "%s",
                 bad_done ? "\"done\" must be \"succeeded\", \"failed\" or \"stopped\""
                          : "\"error\" must be a string on a done line");
        l->has_msg = 1;
        return;
    }
    tagged_rest(o, max_value, l);
}

void hproto_parse_v2(const char *line, size_t len, size_t max_value, hproto_line_t *l)
{
    memset(l, 0, sizeof *l);
    json_t *o =
        starts_object(line, len) ? json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *id = json_object_get(o, "id"), *ready = json_object_get(o, "ready");
    if (!json_is_object(o) || (!id && !ready)) {
        /* v1 keys without an id are refused in v2; anything else is output. */
        l->kind = HPROTO_UNTAGGED;
        hproto_parse(line, len, max_value, &l->msg);
        if (l->msg.kind == HPROTO_MESSAGE)
            set_kind(&l->msg, HPROTO_INVALID, "a protocol v2 message needs the job's \"id\"");
        l->has_msg = 1;
    } else if (ready) {
        l->kind = json_is_true(ready) && json_object_size(o) == 1 ? HPROTO_READY : HPROTO_BAD_READY;
    } else {
        tagged(o, id, max_value, l);
    }
    json_decref(o);
}

void hproto_line_clear(hproto_line_t *l)
{
    hproto_clear(&l->msg);
    free(l->id);
    free(l->error);
    l->id = l->error = NULL;
}
