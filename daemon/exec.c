/* exec.c - see exec.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "cloexec.h"
#include "exec.h"
#include "orphans.h"
#include "spawner.h"

struct exec {
    spawn_req_t req; /* exec_start: the spawn, on the spawner thread */
    uv_loop_t *loop;
    char *vecs; /* exec_start: argv and env, copied for the spawner thread */
    char **sargv, **senv;
    int spawn_rc;    /* the spawner thread's result */
    child_t child;   /* and the child */
    int spawned;     /* the child runs and its handles are open */
    int stop_wanted; /* exec_stop before that: applied once spawned */
    int64_t stop_grace;
    int kill_wanted; /* exec_kill before that */
    int pid;
    int64_t start_ticks; /* its start time, as child_start_time gives it */
    int pidfd;
    uv_poll_t exit_watch; /* the pidfd turns readable when the child exits */
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
    int persistent;   /* exec_spawn: stdin stays open, output goes raw */
    int input_closed; /* stdin closed (or closing) */
    size_t max_value; /* bound on a checkpoint's or result's JSON text */
    size_t line_max;  /* max_value + EXEC_LINE_ROOM */
    char *line;       /* partial stdout line (grows up to line_max) */
    size_t line_len, line_cap;
    size_t line_total; /* its full length, kept or not */
    int line_cut;      /* the current line went over line_max */
    exec_tail_t stderr_tail, output_tail;
    exec_cbs_t cbs;
    void (*on_line)(void *arg, const char *line, size_t len, size_t total, int cut);
    void (*on_stderr)(void *arg, const char *buf, size_t len);
    void *arg;
};

/* One queued write to a persistent child's stdin (exec_write). */
typedef struct {
    uv_write_t req;
    char data[];
} exec_wreq_t;

void exec_tail_add(exec_tail_t *t, const char *s, size_t n)
{
    t->total += n;
    if (!t->buf && n) t->buf = malloc(EXEC_TAIL_MAX);
    if (!t->buf) return; /* out of memory: counted, not kept */
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

size_t exec_tail_copy(const exec_tail_t *t, char *out)
{
    if (!t->len) return 0;
    size_t first = t->len < EXEC_TAIL_MAX - t->start ? t->len : EXEC_TAIL_MAX - t->start;
    memcpy(out, t->buf + t->start, first);
    memcpy(out + first, t->buf, t->len - first);
    return t->len;
}

void exec_tail_reset(exec_tail_t *t)
{
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static void exec_free(exec_t *e)
{
    exec_tail_reset(&e->stderr_tail);
    exec_tail_reset(&e->output_tail);
    free(e->line);
    free(e->stdin_copy);
    free(e);
}

static void on_close(uv_handle_t *h)
{
    exec_t *e = h->data;
    if (--e->pending_closes > 0 || !e->closing) return;
    if (e->pidfd >= 0) close(e->pidfd); /* after its poll handle is closed */
    e->pidfd = -1;
    if (!e->cbs.on_exit) { /* spawn failed: nobody is told */
        exec_free(e);
        return;
    }
    /* The rings in order, in one buffer (the stderr one, then stdout's). */
    char *linear = malloc(e->stderr_tail.len + e->output_tail.len + 1);
    size_t nerr = linear ? exec_tail_copy(&e->stderr_tail, linear) : 0;
    size_t nout = linear ? exec_tail_copy(&e->output_tail, linear + nerr) : 0;
    exec_exit_t x = {
        .exit_status = e->exit_status,
        .term_signal = e->term_signal,
        .stderr_tail = linear ? linear : "",
        .stderr_len = nerr,
        .stderr_total = e->stderr_tail.total,
        .output_tail = linear ? linear + nerr : "",
        .output_len = nout,
        .output_total = e->output_tail.total,
    };
    e->cbs.on_exit(e->arg, &x);
    free(linear);
    exec_free(e);
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
    close_one(e, (uv_handle_t *)&e->exit_watch);
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
    if (e->on_line) {
        e->on_line(e->arg, s, n, e->line_total, e->line_cut);
        goto reset;
    }
    hproto_msg_t m;
    if (e->line_cut)
        hproto_parse_cut(s, n, e->line_total, e->max_value, &m);
    else
        hproto_parse(s, n, e->max_value, &m);
    if (m.kind == HPROTO_OUTPUT) {
        exec_tail_add(&e->output_tail, s, n);
        e->output_tail.total += e->line_total - n; /* what a cut line lost counts too */
        exec_tail_add(&e->output_tail, "\n", 1);
    } else {
        e->cbs.on_message(e->arg, &m);
    }
    hproto_clear(&m);
reset:
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
    if (n > 0 && e->on_stderr)
        e->on_stderr(e->arg, buf->base, (size_t)n);
    else if (n > 0)
        exec_tail_add(&e->stderr_tail, buf->base, (size_t)n);
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
    if (!e->exited) kill(-e->pid, SIGKILL);
}

static void on_exit_watch(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    exec_t *e = p->data;
    /* Looked at before it is reaped: while the exited leader is a zombie,
     * its pid, and so its group's id, cannot be reused, so the group kill
     * cannot hit another process (a spawner thread may start a handler at
     * any moment). Whatever the handler left in its group goes with it. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int looked = waitid(P_PID, (id_t)e->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if (looked == 0 && si.si_pid == 0) return; /* not yet (a spurious wake-up) */
    if (looked == 0) kill(-e->pid, SIGKILL);
    int st;
    pid_t r;
    while ((r = waitpid(e->pid, &st, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == 0) return; /* cannot be: it was seen exited */
    uv_poll_stop(p);
    e->exited = 1;
    if (r == e->pid) {
        e->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
        e->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    } else { /* ECHILD: cannot happen while orphans.c knows the pid */
        e->exit_status = 0;
        e->term_signal = SIGKILL;
    }
    orphans_disown(e->pid);
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

/* Loop thread: the handles that watch started child c. On failure the
 * child is stopped and reaped, and e is freed (at once, or by the last
 * close callback) without on_exit; returns a negative libuv error then. */
static int watch_child(exec_t *e, uv_loop_t *loop, child_t *c)
{
    e->pid = c->pid;
    e->pidfd = c->pidfd;
    e->start_ticks = c->start_ticks;
    int rc = uv_poll_init(loop, &e->exit_watch, e->pidfd);
    if (rc < 0) {
        child_abandon(c);
        free(e->stdin_copy);
        free(e);
        return rc;
    }
    uv_pipe_init(loop, &e->in, 0);
    uv_pipe_init(loop, &e->out, 0);
    uv_pipe_init(loop, &e->err, 0);
    uv_timer_init(loop, &e->timer);
    e->in.data = e->out.data = e->err.data = e->timer.data = e->exit_watch.data = e;
    uv_pipe_t *pipes[3] = {&e->in, &e->out, &e->err};
    for (int i = 0; i < 3; i++) {
        int r = rc == 0 ? uv_pipe_open(pipes[i], c->fds[i]) : UV_ECANCELED;
        if (r < 0) {
            close(c->fds[i]); /* not taken by the handle */
            rc = r;
        }
    }
    if (rc == 0) rc = uv_poll_start(&e->exit_watch, UV_READABLE, on_exit_watch);
    if (rc < 0) {
        /* Every handle is initialised: close them all; e is freed by the
         * last close callback, without calling on_exit. */
        c->pidfd = -1;                          /* the poll handle's: closed with it */
        c->fds[0] = c->fds[1] = c->fds[2] = -1; /* the pipe handles' or closed */
        child_abandon(c);
        e->exited = 1;
        e->cbs.on_exit = NULL;
        close_all(e);
        return rc;
    }
    uv_read_start((uv_stream_t *)&e->out, on_alloc, on_read_out);
    uv_read_start((uv_stream_t *)&e->err, on_alloc, on_read_err);
    e->spawned = 1;
    return 0;
}

/* Defence in depth, twice: the child closes everything above 2 before
 * execve (closefrom), and jobd looks for descriptors it opened without
 * close-on-exec (a bug of ours, named in a warning) -- at most once a
 * second, since listing /proc/self/fd cost as much as the spawn. */
static void sweep_now_and_then(uv_loop_t *loop)
{
    static uint64_t last_sweep;
    static int swept;
    if (!swept || uv_now(loop) - last_sweep >= 1000) {
        cloexec_sweep(1);
        swept = 1;
        last_sweep = uv_now(loop);
    }
}

/* argv and env copied into one block, for the spawner thread. */
static int copy_vecs(exec_t *e, char *const argv[], char *const env[])
{
    size_t na = 0, ne = 0, bytes = 0;
    for (; argv[na]; na++)
        bytes += strlen(argv[na]) + 1;
    for (; env[ne]; ne++)
        bytes += strlen(env[ne]) + 1;
    size_t ptrs = (na + 1 + ne + 1) * sizeof(char *);
    e->vecs = malloc(ptrs + bytes);
    if (!e->vecs) return UV_ENOMEM;
    char **v = (char **)(void *)e->vecs;
    char *p = e->vecs + ptrs;
    e->sargv = v;
    for (size_t i = 0; i < na; i++, v++) {
        size_t n = strlen(argv[i]) + 1;
        *v = memcpy(p, argv[i], n);
        p += n;
    }
    *v++ = NULL;
    e->senv = v;
    for (size_t i = 0; i < ne; i++, v++) {
        size_t n = strlen(env[i]) + 1;
        *v = memcpy(p, env[i], n);
        p += n;
    }
    *v = NULL;
    return 0;
}

/* Spawner thread. */
static void spawn_work(spawn_req_t *r)
{
    exec_t *e = (exec_t *)(void *)r; /* req is its first member */
    e->spawn_rc = child_start(&e->child, e->sargv, e->senv);
}

/* Loop thread, after spawn_work. */
static void spawn_done(spawn_req_t *r)
{
    exec_t *e = (exec_t *)(void *)r;
    free(e->vecs);
    e->vecs = NULL;
    e->sargv = e->senv = NULL;
    exec_cbs_t cbs = e->cbs;
    void *arg = e->arg;
    int rc = e->spawn_rc;
    if (rc < 0) {
        cbs.on_spawned(arg, rc);
        free(e->stdin_copy);
        free(e);
        return;
    }
    rc = watch_child(e, e->loop, &e->child); /* on failure e is freed, or will be */
    cbs.on_spawned(arg, rc);
    if (rc < 0) return;
    if (e->kill_wanted) exec_kill(e);
    if (e->stop_wanted) exec_stop(e, e->stop_grace);
}

int exec_start(exec_t **out, uv_loop_t *loop, spawner_t *sp, char *const argv[], char *const env[],
               const char *stdin_line, size_t len, size_t max_value, const exec_cbs_t *cbs,
               void *arg)
{
    exec_t *e = calloc(1, sizeof *e);
    if (!e) return UV_ENOMEM;
    e->cbs = *cbs;
    e->arg = arg;
    e->loop = loop;
    e->max_value = max_value;
    e->line_max = max_value + EXEC_LINE_ROOM;
    e->pidfd = -1;
    e->stdin_copy = malloc(len + 1);
    if (!e->stdin_copy || copy_vecs(e, argv, env) < 0) {
        free(e->stdin_copy);
        free(e);
        return UV_ENOMEM;
    }
    memcpy(e->stdin_copy, stdin_line, len);
    e->stdin_copy[len] = '\n';
    e->wbuf = uv_buf_init(e->stdin_copy, (unsigned)len + 1);
    sweep_now_and_then(loop);
    e->req.work = spawn_work;
    e->req.done = spawn_done;
    spawner_submit(sp, &e->req);
    *out = e;
    return 0;
}

int exec_spawn(exec_t **out, uv_loop_t *loop, const exec_opts_t *o, const exec_cbs_t *cbs,
               void *arg)
{
    exec_t *e = calloc(1, sizeof *e);
    if (!e) return UV_ENOMEM;
    e->cbs = *cbs;
    e->arg = arg;
    e->loop = loop;
    e->max_value = o->max_value;
    e->line_max = o->max_value + EXEC_LINE_ROOM;
    e->persistent = 1;
    e->input_sent = 1; /* exec_send_input does nothing: exec_write instead */
    e->on_line = o->on_line;
    e->on_stderr = o->on_stderr;
    sweep_now_and_then(loop);
    child_t c;
    int rc = child_start(&c, o->argv, o->env);
    if (rc < 0) {
        free(e);
        return rc;
    }
    rc = watch_child(e, loop, &c);
    if (rc < 0) return rc;
    *out = e;
    return 0;
}

static void on_wrote(uv_write_t *w, int status)
{
    (void)status; /* EPIPE: the child is gone; its exit says the rest */
    free(w);
}

int exec_write(exec_t *e, const char *buf, size_t len)
{
    if (e->input_closed || e->closing) return UV_EPIPE;
    exec_wreq_t *r = malloc(sizeof *r + len);
    if (!r) return UV_ENOMEM;
    memcpy(r->data, buf, len);
    uv_buf_t b = uv_buf_init(r->data, (unsigned)len);
    int rc = uv_write(&r->req, (uv_stream_t *)&e->in, &b, 1, on_wrote);
    if (rc < 0) free(r);
    return rc;
}

void exec_drain_stderr(exec_t *e)
{
    uv_os_fd_t fd;
    if (e->err_eof || e->closing || uv_fileno((uv_handle_t *)&e->err, &fd) < 0) return;
    char buf[16384];
    for (int i = 0; i < 64; i++) { /* bounded: 1 MiB at most per call */
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return; /* EAGAIN, or end of file (the loop sees it too) */
        if (e->on_stderr)
            e->on_stderr(e->arg, buf, (size_t)n);
        else
            exec_tail_add(&e->stderr_tail, buf, (size_t)n);
    }
}

void exec_close_input(exec_t *e)
{
    if (!e->spawned || e->input_closed) return;
    e->input_closed = 1;
    e->input_sent = 1; /* exec_send_input: nothing left to send */
    close_one(e, (uv_handle_t *)&e->in);
}

void exec_kill(exec_t *e)
{
    if (!e->spawned)
        e->kill_wanted = 1;
    else if (!e->exited)
        kill(-e->pid, SIGKILL);
}

int exec_exited(const exec_t *e)
{
    return e->exited;
}

void exec_send_input(exec_t *e)
{
    if (!e->spawned || e->input_sent || e->closing || e->exited) return;
    e->input_sent = 1;
    e->wreq.data = e;
    /* Without its line (out of memory) the child sees end of file at once. */
    if (!e->wbuf.len || uv_write(&e->wreq, (uv_stream_t *)&e->in, &e->wbuf, 1, on_written) < 0)
        close_one(e, (uv_handle_t *)&e->in);
}

void exec_stop(exec_t *e, int64_t grace_ms)
{
    if (!e->spawned) {
        e->stop_wanted = 1;
        e->stop_grace = grace_ms;
        return;
    }
    if (e->exited || e->stopping) return;
    e->stopping = 1;
    kill(-e->pid, SIGTERM);
    uv_timer_start(&e->timer, on_kill_grace, (uint64_t)(grace_ms > 0 ? grace_ms : 0), 0);
}

int exec_pid(const exec_t *e)
{
    return e->spawned ? e->pid : 0;
}

int64_t exec_start_ticks(const exec_t *e)
{
    return e->spawned ? e->start_ticks : -1;
}
