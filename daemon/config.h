/* config.h - jobd's configuration: flags beat environment beats file.
 *
 * DESIGN: one table lists every setting once with its flag, its JOBD_*
 * variable and its config-file key, so the three sources cannot drift.
 * config_load reads the config file (JSON) and nothing else; it does no I/O
 * after that. Errors name the bad key and the source it came from. */
#ifndef JOBD_CONFIG_H
#define JOBD_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_QUEUES 32
#define CONFIG_OUTPUT_MIN 1024        /* --max-output-bytes range */
#define CONFIG_OUTPUT_MAX 67108864    /* 64 MiB */
#define CONFIG_OUTPUT_DEFAULT 1048576 /* 1 MiB */

typedef struct {
    char name[129];
    int weight; /* >= 1 */
    int limit;  /* most jobs of this queue in flight; 0: only --concurrency */
} config_queue_t;

typedef struct {
    char *config_file;
    char *redis_url;
    char *redis_password_file;
    char *prefix;
    config_queue_t queues[CONFIG_MAX_QUEUES];
    int nqueues;
    int concurrency;
    char *handlers_file;
    char *state_dir;
    char *http; /* HOST:PORT */
    int64_t lease_ms;
    int64_t drain_timeout_ms;
    int64_t kill_grace_ms;
    int64_t sync_interval_ms;
    int64_t retry_base_ms, retry_cap_ms;
    int64_t ttl_succeeded_ms, ttl_dead_ms;
    int64_t max_output_bytes; /* a handler's result or checkpoint, as JSON text */
    int once;
    char *worker_id;
    int log_json;
    int log_level;
    int check_config;
    json_t *resources;        /* config file "resources" as {"name": concurrency limit}; new ref or
                                 NULL (a resource with only a rate: CONFIG_RES_UNLIMITED) */
    json_t *rates;            /* {"name": [count, window ms]} for the resources with a "rate";
                                 new ref or NULL */
    int no_progress_attempts; /* poison: dead after this many attempts without a new
                                 checkpoint (fail.lua, reap.lua); 0: off */
    int unknown_type_tries;   /* a job of a type with no handler here is passed on
                                 (deferred) this many times, then dead; 0: dead at once */
    int64_t unknown_type_delay_ms; /* how long such a job waits before it is claimed again */
    json_t *schedules;             /* config file "schedules": [{"name", "cron", ...}]; new ref or
                                      NULL (checked by schedule_check) */
    int64_t schedule_catch_up_ms;  /* a tick missed while no jobd ran is enqueued on start
                                      if it is at most this old */
} config_t;

enum {
    CONFIG_OK = 0,
    CONFIG_DONE = 1,    /* --help or --version was printed: exit 0 */
    CONFIG_USAGE = 64,  /* unknown flag, missing value */
    CONFIG_INVALID = 78 /* bad value, unreadable file */
};

/* Fills c from defaults, the config file, the environment (envp, NULL for
 * the process environment) and argv. Returns a CONFIG_* code; on 64 or 78
 * err holds a message naming the bad key. --help and --version print to
 * stdout and return CONFIG_DONE. */
int config_load(config_t *c, int argc, char **argv, char *err, size_t errlen);
void config_free(config_t *c);

/* The concurrency limit of a resource that sets only a rate. */
#define CONFIG_RES_UNLIMITED 1000000
#define CONFIG_RATE_MAX 1000000 /* most units per rate window */

/* Parses a rate "600/1m", "20/1s", "5/250ms" or "100/s" (COUNT/DURATION,
 * a bare unit meaning 1 of it) into *count (1..CONFIG_RATE_MAX) and
 * *window_ms (1 ms .. 1 day). Returns 0 or -1. Pure. */
int config_parse_rate(const char *s, int64_t *count, int64_t *window_ms);

/* Parses "a:3,b:1" (weights default to 1) into c->queues. Returns 0, -1
 * (a bad name or weight), or -2 (a queue listed twice: a usage error);
 * err names the queue. */
int config_parse_queues(config_t *c, const char *s, char *err, size_t errlen);

void config_usage(void);

#endif
