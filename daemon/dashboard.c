/* dashboard.c - see dashboard.h. */
#define _GNU_SOURCE
#include <string.h>

#include "dashboard.h"
#include "embedded.h"

/* Generated from daemon/dashboard/ by schema/embed.cmake, in the order
 * CMakeLists.txt lists the files: index.html, app.js, style.css. */
extern const jobd_embedded_t jobd_dashboard_files[];

static const char headers[] =
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n";

static const jobd_embedded_t *file(const char *name)
{
    for (const jobd_embedded_t *f = jobd_dashboard_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

void dashboard_serve(http_req_t *req)
{
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond(req, 405, "text/plain", "method not allowed\n", 19, "Allow: GET, HEAD\r\n");
        return;
    }
    const char *name, *ctype;
    if (strcmp(req->path, "/app.js") == 0) {
        name = "app";
        ctype = "text/javascript; charset=utf-8";
    } else if (strcmp(req->path, "/style.css") == 0) {
        name = "style";
        ctype = "text/css; charset=utf-8";
    } else if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/index.html") == 0) {
        name = "index";
        ctype = "text/html; charset=utf-8";
    } else {
        http_respond(req, 404, "text/plain", "not found\n", 10, NULL);
        return;
    }
    const jobd_embedded_t *f = file(name);
    if (!f) {
        http_respond(req, 404, "text/plain", "not found\n", 10, NULL);
        return;
    }
    http_respond(req, 200, ctype, f->text, f->len, headers);
}
