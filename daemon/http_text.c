/* http_text.c - the HTTP module's pure text helpers (http.h): status
 * reason phrases, percent-decoding, query strings. */
#define _GNU_SOURCE
#include <string.h>

#include "http.h"

const char *http_reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* ---- pure helpers ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int http_percent_decode(const char *in, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int a = hexval(in[i + 1]), b = hexval(in[i + 2]);
            if (a < 0 || b < 0) return -1;
            ch = (char)(unsigned char)(a * 16 + b);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= len) return -1;
        out[o++] = ch;
    }
    if (len == 0) return -1;
    out[o] = '\0';
    return (int)o;
}

int http_query_get(const char *query, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg >= nl && strncmp(p, name, nl) == 0 && (seg == nl || p[nl] == '=')) {
            const char *v = seg == nl ? p + seg : p + nl + 1;
            size_t vn = (size_t)(p + seg - v);
            char tmp[HTTP_URL_MAX];
            if (vn >= sizeof tmp) return -1;
            memcpy(tmp, v, vn);
            for (size_t i = 0; i < vn; i++)
                if (tmp[i] == '+') tmp[i] = ' ';
            return http_percent_decode(tmp, vn, out, len);
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}
