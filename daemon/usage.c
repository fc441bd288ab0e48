/* usage.c - jobd --help: every flag with its default, the Redis URL forms
 * and the exit statuses (config_usage in config.h). Text only: the
 * defaults it states are the ones config.c's defaults() sets. */
#include <stdio.h>

#include "config.h"

void config_usage(void)
{
    printf("usage: jobd [--config FILE] [--redis URL] [--queues q1:3,q2:1] [--concurrency N]\n"
           "            [--handlers FILE] [--state-dir DIR] [--http HOST:PORT] [--lease SECONDS]\n"
           "            [--drain-timeout SECONDS] [--once] [--worker-id ID]\n"
           "            [--log-format json|text] [--log-level LEVEL] [--check-config]\n"
           "            [--version] [--help]\n"
           "Defaults: --redis redis://127.0.0.1:6379/0, --queues default, --concurrency 4,\n"
           "  --state-dir ./jobd-state (relative to the working directory; it holds the\n"
           "  journal and the lock file jobd.lock: one jobd per state dir), --http\n"
           "  127.0.0.1:9090 (\"off\": none), --lease 30s, --drain-timeout 25s, --kill-grace 5s,\n"
           "  --sync-interval 1s, --retry-base 1s, --retry-cap 1h, --prefix jobd,\n"
           "  --log-format json, --log-level info, --worker-id HOST-PID; no handlers file\n"
           "  (built-ins only).\n"
           "more: [--prefix P] [--kill-grace SECONDS] [--sync-interval SECONDS]\n"
           "      [--retry-base SECONDS] [--retry-cap SECONDS] [--redis-password-file F]\n"
           "      [--max-output-bytes N]  largest result or checkpoint a handler may report,\n"
           "                              as JSON text (default 1048576, 1024..67108864)\n"
           "      [--no-progress-attempts N] (3; 0 off) [--unknown-type-tries N] (10)\n"
           "      [--unknown-type-delay SECONDS] (1s): README, \"Scheduling the work\"\n"
           "      [--schedule-catch-up SECONDS]  a cron tick missed while no jobd ran is\n"
           "                              enqueued on start if at most this old (default 1h)\n"
           "Cron schedules live in the config file: \"schedules\": [{\"name\", \"cron\",\n"
           "  \"tz\" (default UTC), \"queue\", \"type\", \"payload\", \"priority\",\n"
           "  \"max_attempts\", \"timeout_s\"}]; every jobd that has one enqueues each tick,\n"
           "  once in all.\n\n"
           "Every flag has a variable (--concurrency: JOBD_CONCURRENCY, ...) and a key in the\n"
           "JSON config file (concurrency); a flag beats the environment, which beats the file.\n"
           "Redis URL:\n"
           "  redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]\n"
           "  unix://[USER[:PASSWORD]@]/path.sock[?db=N]\n"
           "  redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...] (Redis Cluster;\n"
           "    a redis:// URL naming a cluster node is found to be one on connect)\n"
           "  redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,...]/MASTER[/DB] (Sentinel)\n"
           "  rediss:// (TLS) needs a build with TLS; use a sidecar (deploy/redis/)\n"
           "  USER is a Redis ACL user (none: the default user). --redis-password-file F\n"
           "  (JOBD_REDIS_PASSWORD_FILE) supplies the password of the URL's user, its first\n"
           "  line; a password in the URL wins. Neither is ever logged.\n"
           "Durations take a number of seconds or 250ms, 30s, 5m, 2h.\n"
           "--once: run until every queue is empty and nothing is in flight, then exit (cron).\n"
           "Exit status: 0 clean exit, 64 usage error, 78 configuration error; with --once\n"
           "also 1 a job ended dead, 69 Redis unreachable longer than the drain timeout\n"
           "(jobd drains first), 75 stopped by a signal and the drain did not complete\n"
           "(leases left to expire; run again).\n");
}
