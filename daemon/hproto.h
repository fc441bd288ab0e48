/* hproto.h - exec handler protocol v1 (schema/handler-protocol.md): the
 * parser for the lines a handler writes on stdout. Pure: no I/O.
 *
 * A line that is a JSON object with exactly one of the keys below is a
 * message; anything else (other JSON, plain text, invalid UTF-8, a line cut
 * at the length bound) is ordinary output, kept bounded by the caller. */
#ifndef JOBD_HPROTO_H
#define JOBD_HPROTO_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    HPROTO_OUTPUT = 0, /* not a message: keep as job output */
    HPROTO_PROGRESS,   /* {"progress": 0..1} */
    HPROTO_CHECKPOINT, /* {"checkpoint": any JSON} */
    HPROTO_RESULT,     /* {"result": any JSON} */
    HPROTO_LOG,        /* {"log": "text"} */
    HPROTO_INVALID     /* a message key with a bad value: reason in err */
} hproto_kind_t;

typedef struct {
    hproto_kind_t kind;
    double progress; /* HPROTO_PROGRESS, clamped to 0..1 */
    json_t *value;   /* CHECKPOINT/RESULT: new reference; LOG: the string */
    char err[128];   /* HPROTO_INVALID */
} hproto_msg_t;

/* Parses one line (without its newline). Never fails: unknown input is
 * HPROTO_OUTPUT. The caller releases msg->value with hproto_clear. */
void hproto_parse(const char *line, size_t len, hproto_msg_t *msg);
void hproto_clear(hproto_msg_t *msg);

#endif
