/* hproto.c - see hproto.h. */
#include <stdio.h>
#include <string.h>

#include "hproto.h"

void hproto_parse(const char *line, size_t len, hproto_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    /* Cheap filter first: most output lines are not JSON objects. */
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len || line[i] != '{') return;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o) || json_object_size(o) != 1) {
        json_decref(o);
        return;
    }
    const char *key = json_object_iter_key(json_object_iter(o));
    json_t *v = json_object_iter_value(json_object_iter(o));
    if (strcmp(key, "progress") == 0) {
        if (!json_is_number(v)) {
            msg->kind = HPROTO_INVALID;
            snprintf(msg->err, sizeof msg->err, "progress must be a number in 0..1");
        } else {
            double p = json_number_value(v);
            msg->kind = HPROTO_PROGRESS;
            msg->progress = p < 0 ? 0 : (p > 1 ? 1 : p);
        }
    } else if (strcmp(key, "checkpoint") == 0 || strcmp(key, "result") == 0) {
        msg->kind = key[0] == 'c' ? HPROTO_CHECKPOINT : HPROTO_RESULT;
        msg->value = json_incref(v);
    } else if (strcmp(key, "log") == 0) {
        if (!json_is_string(v)) {
            msg->kind = HPROTO_INVALID;
            snprintf(msg->err, sizeof msg->err, "log must be a string");
        } else {
            msg->kind = HPROTO_LOG;
            msg->value = json_incref(v);
        }
    }
    json_decref(o);
}

void hproto_clear(hproto_msg_t *msg)
{
    json_decref(msg->value);
    msg->value = NULL;
}
