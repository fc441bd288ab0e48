/* hproto.h - exec handler protocol v1 and v2 (schema/handler-protocol.md):
 * the parser for the lines a handler writes on stdout. Pure: no I/O.
 *
 * DESIGN: a line is one of four kinds.
 *   - a message: a JSON object whose keys are all protocol keys (progress,
 *     checkpoint, result, log), each with a value of the right type. One
 *     line may carry several; the caller applies them in the order
 *     progress, checkpoint, result, log (the HPROTO_HAS_* flags say which).
 *   - invalid: it looks like a message (its first non-blank byte is '{' and
 *     it names a protocol key, i.e. holds "KEY" then ':') but is not one:
 *     not JSON, not UTF-8, a key with a value of the wrong type, or a key
 *     jobd does not know beside protocol keys. Nothing of it is applied.
 *   - refused: a result or checkpoint jobd must not take and must not drop
 *     silently either: over the size limit, or (the line that carries it)
 *     not valid UTF-8. It fails the attempt; err says why.
 *   - output: anything else (plain text, other JSON, a line with no
 *     protocol key), kept as job output by the caller.
 * A line longer than the caller's line bound is judged by its kept prefix
 * and full length (hproto_parse_cut). */
#ifndef JOBD_HPROTO_H
#define JOBD_HPROTO_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    HPROTO_OUTPUT = 0, /* not a message: keep as job output */
    HPROTO_MESSAGE,    /* one or more protocol keys: see has */
    HPROTO_INVALID,    /* looks like a message but is not one: reason in err */
    HPROTO_REFUSED     /* a result or checkpoint too big or not UTF-8: fails the attempt */
} hproto_kind_t;

/* Which keys a message carries (msg.has), in the order they are applied. */
enum {
    HPROTO_HAS_PROGRESS = 1,   /* {"progress": 0..1} */
    HPROTO_HAS_CHECKPOINT = 2, /* {"checkpoint": any JSON} */
    HPROTO_HAS_RESULT = 4,     /* {"result": any JSON} */
    HPROTO_HAS_LOG = 8         /* {"log": "text"} */
};

typedef struct {
    hproto_kind_t kind;
    unsigned has;     /* HPROTO_HAS_* of a message */
    double progress;  /* clamped to 0..1 */
    char *checkpoint; /* compact JSON text (new, malloc'd); the caller may take it */
    char *result;     /* same */
    char *log;        /* the log text, UTF-8 (new, malloc'd) */
    char err[192];    /* INVALID or REFUSED: why, in one line */
} hproto_msg_t;

/* Parses one line (without its newline) into msg. A checkpoint or result
 * whose compact JSON is longer than max_value bytes is refused. Never
 * fails: unknown input is HPROTO_OUTPUT. The caller releases msg with
 * hproto_clear. */
void hproto_parse(const char *line, size_t len, size_t max_value, hproto_msg_t *msg);

/* Judges a line that was longer than the caller's line bound (at least
 * max_value bytes more than any value it may carry) from its first len
 * bytes and its full length total: one that names result or checkpoint is
 * refused as over the limit, one that names only other protocol keys is
 * invalid, anything else is output. */
void hproto_parse_cut(const char *prefix, size_t len, size_t total, size_t max_value,
                      hproto_msg_t *msg);

/* Frees what msg holds (safe on a cleared or taken msg). */
void hproto_clear(hproto_msg_t *msg);

/* Protocol v2 (a persistent handler's process, pool.h): every line about a
 * job carries its "id"; a process says {"ready":true} once, and ends each
 * job with {"id":...,"done":"succeeded"|"failed"|"stopped"} (a failed one
 * may add an "error" string). */
typedef enum {
    HPROTO_UNTAGGED = 0, /* no "id" and no "ready": msg judges it (a v1 message is invalid) */
    HPROTO_READY,        /* {"ready":true} and nothing else */
    HPROTO_BAD_READY,    /* "ready" with another value or beside other keys */
    HPROTO_TAGGED        /* "id": a line of that job */
} hproto_line_kind_t;

typedef enum {
    HPROTO_NOT_DONE = 0,
    HPROTO_DONE_SUCCEEDED,
    HPROTO_DONE_FAILED,
    HPROTO_DONE_STOPPED
} hproto_done_t;

typedef struct {
    hproto_line_kind_t kind;
    char *id;           /* TAGGED: the job's id (new), NULL if it is not a string */
    hproto_done_t done; /* TAGGED: a valid done line */
    char *error;        /* its "error" string (new), or NULL */
    int has_msg;        /* msg is for the job: UNTAGGED always; TAGGED if keys beside the
                           id (v1 rules) or an invalid done/error */
    hproto_msg_t msg;
} hproto_line_t;

/* Parses one v2 line (without its newline) into l; never fails. A line
 * too long to parse is judged as in v1 (hproto_parse_cut). The caller
 * releases l with hproto_line_clear. */
void hproto_parse_v2(const char *line, size_t len, size_t max_value, hproto_line_t *l);
void hproto_line_clear(hproto_line_t *l);

/* The offset of the first byte of s that is not part of valid UTF-8
 * (overlong forms, surrogates and code points over U+10FFFF are invalid),
 * or len if s is valid. */
size_t hproto_utf8_check(const char *s, size_t len);

#endif
