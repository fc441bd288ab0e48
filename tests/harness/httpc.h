/* httpc.h - a small blocking HTTP/1.1 client for tests: jobd's HTTP port
 * and chromedriver's WebDriver endpoint, on 127.0.0.1 only.
 *
 * One-shot requests (httpc_request) send "Connection: close" and read the
 * answer to EOF; keep-alive tests read one answer at a time off their own
 * socket (httpc_read_one). Every call is bounded by a deadline. Bodies and
 * answers are malloc'd; the caller frees them (httpc_resp_free). */
#ifndef JOBD_HTTPC_H
#define JOBD_HTTPC_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int status; /* -1: no (complete) answer */
    char *head; /* the status line and headers, NUL-terminated */
    char *body; /* the body, NUL-terminated (may hold NULs before len) */
    size_t len; /* body length */
    int closed; /* the server closed the connection after this answer */
} httpc_resp_t;

void httpc_resp_free(httpc_resp_t *r);

/* A connected TCP socket to 127.0.0.1:port (close-on-exec), or -1. */
int httpc_connect(int port);
/* Writes all of buf; returns 0 or -1. */
int httpc_write_all(int fd, const char *buf, size_t len);

/* Sends method path with extra header lines ("K: V\r\n", may be NULL) and
 * body (NULL: none; Content-Length is added) on a fresh connection, reads
 * the answer within ms. Returns the status (-1: none). */
int httpc_request(int port, const char *method, const char *path, const char *headers,
                  const char *body, int64_t ms, httpc_resp_t *out);

/* GET path on a fresh connection (10 s deadline, scaled like test_ms):
 * the body (malloc'd, NUL-terminated), or NULL if there was no answer. */
char *httpc_get_body(int port, const char *path);

/* Reads one answer (by Content-Length, else to EOF) from fd within ms.
 * Bytes read beyond it are kept for the next call on the same fd (one fd
 * at a time). Returns the status (-1: none). */
int httpc_read_one(int fd, int64_t ms, httpc_resp_t *out);

/* The value of header name in r->head (malloc'd), or NULL. */
char *httpc_header(const httpc_resp_t *r, const char *name);

/* The port jobd logged ("HTTP on ... (port N)"), waiting up to ms; -1. */
int httpc_jobd_port(const char *log, int64_t ms);

/* VmRSS of pid in KiB (from /proc), or -1. */
long httpc_rss_kib(int pid);

#endif
