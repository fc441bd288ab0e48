/* main.c - flags -> config -> handlers -> state dir -> journal -> daemon ->
 * uv_run -> exit status.
 *
 * Exit status (CONTRACT): 0 clean exit, 64 usage error, 78 configuration
 * error (including a Redis that holds an incompatible layout); with --once
 * 1 when a job it ran ended dead, 69 when Redis stayed unreachable past the
 * drain timeout, 75 when its drain hit the hard deadline (see drain.h).
 * Every step that acquires something has its cleanup label below, released
 * in reverse order; every error is a negative code with its text in err. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "cloexec.h"
#include "config.h"
#include "daemon.h"
#include "handlers.h"
#include "journal.h"
#include "log.h"
#include "orphans.h"
#include "redis_url.h"
#include "schedule.h"
#include "statedir.h"

/* The Redis URL parses and the password file is readable, as worker_init
 * will need them: refused here, at start and by --check-config alike. */
static int check_redis(const config_t *cfg, char *err, size_t errlen)
{
    redis_url_t url;
    int rc = redis_url_parse(cfg->redis_url, &url, err, errlen);
    if (rc == 0) rc = redis_url_password_file(&url, cfg->redis_password_file, err, errlen);
    memset(url.password, 0, sizeof url.password);
    return rc < 0 ? -1 : 0;
}

/* Raises the soft descriptor limit to the hard one: the common default
 * soft limit (1,024) is small for a daemon that holds pipes for every
 * handler, and the HTTP port keeps its connections to a quarter of it. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = was;
    }
    log_info("descriptor limit %llu (soft limit was %llu, hard limit %llu)",
             (unsigned long long)rl.rlim_cur, (unsigned long long)was,
             (unsigned long long)rl.rlim_max);
}

/* A configuration error at start: on stderr and in the log. */
static void refuse(const char *err)
{
    fprintf(stderr, "jobd: %s\n", err);
    log_error("configuration error: %s", err);
}

/* --check-config: everything main checks, and a usable state dir, without
 * creating it. Returns the exit status. */
static int check_only(const config_t *cfg, const handlers_t *handlers)
{
    char sd[1200];
    if (statedir_check(cfg->state_dir, sd, sizeof sd) < 0) {
        fprintf(stderr, "jobd: %s\n", sd);
        return CONFIG_INVALID;
    }
    printf("jobd: configuration OK (%d queues, %zu handlers from file; %s)\n", cfg->nqueues,
           handlers->n, sd);
    return 0;
}

/* The process's settings for a long run. Built-ins run on libuv's pool:
 * give it a thread per slot, so one slow built-in never queues behind
 * another (must precede the pool's start). A peer that goes away is an
 * error return, not a signal. */
static void prepare_process(const config_t *cfg)
{
    char pool[16];
    snprintf(pool, sizeof pool, "%d", cfg->concurrency < 1024 ? cfg->concurrency : 1024);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
}

int main(int argc, char **argv)
{
    config_t cfg;
    handlers_t handlers = {0};
    char err[1024];
    int code = CONFIG_INVALID, lock = -1, ran = 0;
    journal_t *jn = NULL;
    uv_loop_t loop;
    daemon_t d;
    orphans_t orphans;
    /* Whatever jobd inherited from its parent is not for its handlers
     * (CONTRACT guarantee 8); what jobd opens itself is close-on-exec. */
    cloexec_sweep(0);
    int rc = config_load(&cfg, argc, argv, err, sizeof err);
    if (rc != CONFIG_OK) {
        if (rc != CONFIG_DONE) fprintf(stderr, "jobd: %s\n", err);
        code = rc == CONFIG_DONE ? 0 : rc;
        goto out_config;
    }
    log_setup((log_level_t)cfg.log_level, cfg.log_json);
    if (handlers_load(&handlers, cfg.handlers_file, err, sizeof err) < 0 ||
        handlers_check_resources(&handlers, cfg.resources, err, sizeof err) < 0 ||
        schedule_check(&cfg, err, sizeof err) < 0 || check_redis(&cfg, err, sizeof err) < 0) {
        refuse(err);
        goto out_handlers;
    }
    if (cfg.check_config) {
        code = check_only(&cfg, &handlers);
        goto out_handlers;
    }
    /* The state dir's lock before anything else in it: a second jobd on the
     * same dir must not open the journal, let alone run its recovery, which
     * stops the process groups the journal names (the first one's
     * handlers). The lock is held until the process exits. */
    if ((lock = statedir_lock(cfg.state_dir, err, sizeof err)) < 0) {
        refuse(err);
        goto out_handlers;
    }
    /* The journal next: a state dir we cannot use is a configuration error
     * at start (exit 78), never a crash later. */
    if (journal_open(&jn, cfg.state_dir, err, sizeof err) < 0) {
        refuse(err);
        goto out_lock;
    }
    prepare_process(&cfg);
    if ((rc = uv_loop_init(&loop)) < 0) {
        snprintf(err, sizeof err, "cannot set up the event loop: %s", uv_strerror(rc));
        refuse(err);
        goto out_journal;
    }
    if (daemon_init(&d, &loop, &cfg, &handlers, jn, &orphans, err, sizeof err) < 0) {
        refuse(err);
        goto out_loop;
    }
    /* A subreaper before the first handler starts (PID 1 in a container). */
    orphans_start(&orphans, &loop);
    if (daemon_start(&d, err, sizeof err) < 0) fprintf(stderr, "jobd: %s\n", err);
    uv_run(&loop, UV_RUN_DEFAULT);
    code = daemon_exit_status(&d);
    ran = 1;
    if (daemon_forced(&d)) {
        /* Handler threads still run: freeing what they use would be a use
         * after free. The journal is committed; the process exit ends them. */
        log_info("jobd exiting with status %d", code);
        return code;
    }
    daemon_free(&d);
    orphans_close(&orphans);
    uv_run(&loop, UV_RUN_DEFAULT); /* finishes the closes */
out_loop:
    if (uv_loop_close(&loop) != 0) log_error("event loop closed with handles still open");
out_journal:
    journal_close(jn);
out_lock:
    statedir_unlock(lock);
out_handlers:
    handlers_free(&handlers);
out_config:
    config_free(&cfg);
    if (ran) log_info("jobd exiting with status %d", code);
    return code;
}
