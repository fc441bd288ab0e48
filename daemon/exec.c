/* exec.c - see exec.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloexec.h"
#include "exec.h"

/* A bounded tail: keeps the last EXEC_TAIL_MAX bytes written. */
typedef struct {
    char buf[EXEC_TAIL_MAX];
    size_t start, len;
    uint64_t total; /* every byte written, kept or not */
} tail_t;

struct exec {
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer; /* kill grace, then the post-exit drain bound */
    uv_write_t wreq;
    uv_buf_t wbuf;
    char *stdin_copy;
    int pending_closes;
    int exited, out_eof, err_eof, stopping, closing;
    int64_t exit_status;
    int term_signal;
    int input_sent;
    size_t max_value; /* bound on a checkpoint's or result's JSON text */
    size_t line_max;  /* max_value + EXEC_LINE_ROOM */
    char *line;       /* partial stdout line (grows up to line_max) */
    size_t line_len, line_cap;
    size_t line_total; /* its full length, kept or not */
    int line_cut;      /* the current line went over line_max */
    tail_t stderr_tail, output_tail;
    char linear_err[EXEC_TAIL_MAX], linear_out[EXEC_TAIL_MAX];
    exec_cbs_t cbs;
    void *arg;
};

static void tail_add(tail_t *t, const char *s, size_t n)
{
    t->total += n;
    if (n >= EXEC_TAIL_MAX) {
        s += n - EXEC_TAIL_MAX;
        n = EXEC_TAIL_MAX;
    }
    /* Two copies at most: up to the end of the ring, then from its start. */
    size_t end = (t->start + t->len) % EXEC_TAIL_MAX;
    size_t first = n < EXEC_TAIL_MAX - end ? n : EXEC_TAIL_MAX - end;
    memcpy(t->buf + end, s, first);
    memcpy(t->buf, s + first, n - first);
    size_t over = t->len + n > EXEC_TAIL_MAX ? t->len + n - EXEC_TAIL_MAX : 0;
    t->start = (t->start + over) % EXEC_TAIL_MAX;
    t->len += n - over;
}

static size_t tail_copy(const tail_t *t, char *out)
{
    size_t first = t->len < EXEC_TAIL_MAX - t->start ? t->len : EXEC_TAIL_MAX - t->start;
    memcpy(out, t->buf + t->start, first);
    memcpy(out + first, t->buf, t->len - first);
    return t->len;
}

static void on_close(uv_handle_t *h)
{
    exec_t *e = h->data;
    if (--e->pending_closes > 0 || !e->closing) return;
    if (!e->cbs.on_exit) { /* spawn failed: nobody is told */
        free(e);
        return;
    }
    exec_exit_t x = {
        .exit_status = e->exit_status,
        .term_signal = e->term_signal,
        .stderr_tail = e->linear_err,
        .stderr_len = tail_copy(&e->stderr_tail, e->linear_err),
        .stderr_total = e->stderr_tail.total,
        .output_tail = e->linear_out,
        .output_len = tail_copy(&e->output_tail, e->linear_out),
        .output_total = e->output_tail.total,
    };
    e->cbs.on_exit(e->arg, &x);
    free(e->line);
    free(e->stdin_copy);
    free(e);
}

static void close_one(exec_t *e, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        e->pending_closes++;
        uv_close(h, on_close);
    }
}

static void close_all(exec_t *e)
{
    if (e->closing) return;
    e->closing = 1;
    close_one(e, (uv_handle_t *)&e->timer);
    close_one(e, (uv_handle_t *)&e->in);
    close_one(e, (uv_handle_t *)&e->out);
    close_one(e, (uv_handle_t *)&e->err);
    close_one(e, (uv_handle_t *)&e->proc);
}

static void maybe_done(exec_t *e)
{
    if (e->exited && e->out_eof && e->err_eof) close_all(e);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

/* One whole stdout line (or the kept prefix of a cut one) is in e->line. */
static void emit_line(exec_t *e)
{
    const char *s = e->line ? e->line : "";
    size_t n = e->line_len;
    hproto_msg_t m;
    if (e->line_cut)
        hproto_parse_cut(s, n, e->line_total, e->max_value, &m);
    else
        hproto_parse(s, n, e->max_value, &m);
    if (m.kind == HPROTO_OUTPUT) {
        tail_add(&e->output_tail, s, n);
        e->output_tail.total += e->line_total - n; /* what a cut line lost counts too */
        tail_add(&e->output_tail, "\n", 1);
    } else {
        e->cbs.on_message(e->arg, &m);
    }
    hproto_clear(&m);
    e->line_len = e->line_total = 0;
    e->line_cut = 0;
    if (e->line_cap > EXEC_LINE_ROOM) {
        /* Do not hold a big buffer for a handler that wrote one big line. */
        free(e->line);
        e->line = NULL;
        e->line_cap = 0;
    }
}

/* Appends n bytes to the current line, up to the line bound; the rest of a
 * longer line is only counted. */
static void line_append(exec_t *e, const char *p, size_t n)
{
    e->line_total += n;
    if (e->line_cut) return;
    if (n > e->line_max - e->line_len) {
        e->line_cut = 1;
        n = e->line_max - e->line_len;
    }
    if (!n) return;
    if (e->line_len + n > e->line_cap) {
        size_t cap = e->line_cap ? e->line_cap : 4096;
        while (cap < e->line_len + n)
            cap *= 2;
        if (cap > e->line_max) cap = e->line_max;
        char *grown = realloc(e->line, cap);
        if (!grown) { /* out of memory: judge the line by what we have */
            e->line_cut = 1;
            return;
        }
        e->line = grown;
        e->line_cap = cap;
    }
    memcpy(e->line + e->line_len, p, n);
    e->line_len += n;
}

static void split_lines(exec_t *e, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        line_append(e, p, take);
        if (!nl) return;
        emit_line(e);
        n -= take + 1;
        p = nl + 1;
    }
}

static void on_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    exec_t *e = s->data;
    if (n > 0) split_lines(e, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        if (e->line_total) emit_line(e);
        uv_read_stop(s);
        e->out_eof = 1;
        maybe_done(e);
    }
}

static void on_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    exec_t *e = s->data;
    if (n > 0) tail_add(&e->stderr_tail, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        e->err_eof = 1;
        maybe_done(e);
    }
}

static void on_drain_bound(uv_timer_t *t)
{
    /* The child exited but something it started (in another session) still
     * holds a pipe open: stop waiting for it. */
    close_all(t->data);
}

static void on_kill_grace(uv_timer_t *t)
{
    exec_t *e = t->data;
    if (!e->exited) uv_kill(-e->proc.pid, SIGKILL);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    exec_t *e = p->data;
    e->exited = 1;
    e->exit_status = status;
    e->term_signal = sig;
    /* Whatever the handler left behind in its group goes with it. */
    uv_kill(-p->pid, SIGKILL);
    uv_timer_stop(&e->timer);
    uv_timer_start(&e->timer, on_drain_bound, 2000, 0);
    maybe_done(e);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* EPIPE: the child did not read its stdin; not our error */
    exec_t *e = w->data;
    close_one(e, (uv_handle_t *)&e->in);
}

int exec_start(exec_t **out, uv_loop_t *loop, char *const argv[], char *const env[],
               const char *stdin_line, size_t len, size_t max_value, const exec_cbs_t *cbs,
               void *arg)
{
    exec_t *e = calloc(1, sizeof *e);
    if (!e) return UV_ENOMEM;
    e->cbs = *cbs;
    e->arg = arg;
    e->max_value = max_value;
    e->line_max = max_value + EXEC_LINE_ROOM;
    uv_pipe_init(loop, &e->in, 0);
    uv_pipe_init(loop, &e->out, 0);
    uv_pipe_init(loop, &e->err, 0);
    uv_timer_init(loop, &e->timer);
    e->in.data = e->out.data = e->err.data = e->timer.data = e->proc.data = e;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&e->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->err},
    };
    uv_process_options_t o = {
        .exit_cb = on_proc_exit,
        .file = argv[0],
        .args = (char **)argv,
        .env = (char **)env,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    cloexec_sweep(1); /* defence in depth: the child gets stdio only */
    int rc = uv_spawn(loop, &e->proc, &o);
    if (rc < 0) {
        /* uv_spawn needs uv_close even when it fails; e is freed by the
         * last close callback, without calling on_exit. */
        e->cbs.on_exit = NULL;
        close_all(e);
        return rc;
    }
    e->stdin_copy = malloc(len + 1);
    if (e->stdin_copy) {
        memcpy(e->stdin_copy, stdin_line, len);
        e->stdin_copy[len] = '\n';
    }
    e->wbuf = uv_buf_init(e->stdin_copy, e->stdin_copy ? (unsigned)len + 1 : 0);
    uv_read_start((uv_stream_t *)&e->out, on_alloc, on_read_out);
    uv_read_start((uv_stream_t *)&e->err, on_alloc, on_read_err);
    *out = e;
    return 0;
}

void exec_send_input(exec_t *e)
{
    if (e->input_sent || e->closing || e->exited) return;
    e->input_sent = 1;
    e->wreq.data = e;
    /* Without its line (out of memory) the child sees end of file at once. */
    if (!e->wbuf.len || uv_write(&e->wreq, (uv_stream_t *)&e->in, &e->wbuf, 1, on_written) < 0)
        close_one(e, (uv_handle_t *)&e->in);
}

void exec_stop(exec_t *e, int64_t grace_ms)
{
    if (e->exited || e->stopping) return;
    e->stopping = 1;
    uv_kill(-e->proc.pid, SIGTERM);
    uv_timer_start(&e->timer, on_kill_grace, (uint64_t)(grace_ms > 0 ? grace_ms : 0), 0);
}

int exec_pid(const exec_t *e)
{
    return e->proc.pid;
}

int64_t exec_start_time(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces: count fields after ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    long long v = -1;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
        if (++field == 22) {
            v = atoll(tok);
            break;
        }
    return v;
}
