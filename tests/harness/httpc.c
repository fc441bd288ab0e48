/* httpc.c - see httpc.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

void httpc_resp_free(httpc_resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
    r->status = -1;
}

int httpc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int httpc_write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Bytes read past the last answer on stash_fd. */
static int stash_fd = -1;
static char *stash;
static size_t stash_len;

/* Reads more of fd into *buf within the deadline. Returns the bytes read,
 * 0 at EOF, -1 on timeout or error. */
static ssize_t read_more(int fd, int64_t deadline, char **buf, size_t *len, size_t *cap)
{
    for (;;) {
        int64_t left = deadline - test_now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (*len + 4096 + 1 > *cap) {
            *cap = (*cap ? *cap * 2 : 8192) + 4096;
            *buf = realloc(*buf, *cap);
        }
        ssize_t r = read(fd, *buf + *len, *cap - *len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno == ECONNRESET ? 0 : -1;
        *len += (size_t)r;
        (*buf)[*len] = '\0';
        return r;
    }
}

int httpc_read_one(int fd, int64_t ms, httpc_resp_t *out)
{
    memset(out, 0, sizeof *out);
    out->status = -1;
    int64_t deadline = test_now_ms() + ms;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (stash_fd == fd && stash_len) {
        cap = stash_len + 8192;
        buf = malloc(cap);
        memcpy(buf, stash, stash_len);
        len = stash_len;
        buf[len] = '\0';
    }
    free(stash);
    stash = NULL;
    stash_len = 0;
    stash_fd = fd;
    char *end = NULL;
    int eof = 0;
    while (!(end = buf ? strstr(buf, "\r\n\r\n") : NULL)) {
        ssize_t r = read_more(fd, deadline, &buf, &len, &cap);
        if (r <= 0) {
            free(buf);
            return -1;
        }
    }
    size_t hlen = (size_t)(end - buf) + 4;
    out->head = strndup(buf, hlen);
    sscanf(buf, "HTTP/1.%*d %d", &out->status);
    char *cl = httpc_header(out, "Content-Length");
    long long want = cl ? atoll(cl) : -1;
    free(cl);
    while (want < 0 ? !eof : (long long)(len - hlen) < want) {
        ssize_t r = read_more(fd, deadline, &buf, &len, &cap);
        if (r == 0) {
            eof = 1;
            if (want >= 0) break;
        } else if (r < 0) {
            break;
        }
    }
    size_t blen = want < 0 || (long long)(len - hlen) < want ? len - hlen : (size_t)want;
    out->body = malloc(blen + 1);
    memcpy(out->body, buf + hlen, blen);
    out->body[blen] = '\0';
    out->len = blen;
    if (len > hlen + blen) {
        stash_len = len - hlen - blen;
        stash = malloc(stash_len);
        memcpy(stash, buf + hlen + blen, stash_len);
    }
    char *conn = httpc_header(out, "Connection");
    out->closed = eof || (conn && strcasecmp(conn, "close") == 0);
    free(conn);
    free(buf);
    return out->status;
}

int httpc_request(int port, const char *method, const char *path, const char *headers,
                  const char *body, int64_t ms, httpc_resp_t *out)
{
    memset(out, 0, sizeof *out);
    out->status = -1;
    int fd = httpc_connect(port);
    if (fd < 0) return -1;
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(path) + (headers ? strlen(headers) : 0) + blen + 256;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s",
                     method, path, port, headers ? headers : "");
    if (body)
        n += snprintf(req + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    int rc = httpc_write_all(fd, req, (size_t)n);
    free(req);
    if (rc == 0) httpc_read_one(fd, ms, out);
    if (stash_fd == fd) {
        free(stash);
        stash = NULL;
        stash_len = 0;
        stash_fd = -1;
    }
    close(fd);
    return out->status;
}

char *httpc_get_body(int port, const char *path)
{
    httpc_resp_t r = {0};
    httpc_request(port, "GET", path, NULL, NULL, test_ms(10000), &r);
    char *body = r.status >= 0 ? r.body : NULL;
    if (body) r.body = NULL;
    httpc_resp_free(&r);
    return body;
}

char *httpc_header(const httpc_resp_t *r, const char *name)
{
    if (!r->head) return NULL;
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            return strndup(v, strcspn(v, "\r\n"));
        }
    }
    return NULL;
}

int httpc_jobd_port(const char *log, int64_t ms)
{
    if (test_wait_log(log, ms, "HTTP on", NULL) < 0) return -1;
    char *s = test_read_file(log);
    const char *p = s ? strstr(s, "(port ") : NULL;
    int port = p ? atoi(p + 6) : -1;
    free(s);
    return port;
}

long httpc_rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    char *s = test_read_file(path);
    const char *p = s ? strstr(s, "VmRSS:") : NULL;
    long kib = p ? strtol(p + 6, NULL, 10) : -1;
    free(s);
    return kib;
}
