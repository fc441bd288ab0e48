/* statedir.h - the state directory (--state-dir): one jobd per directory.
 *
 * DESIGN: before jobd touches anything in the directory (the journal, and
 * the recovery that stops process groups its journal names), it takes an
 * exclusive flock on STATE_DIR/jobd.lock and writes its pid there. The
 * lock is held for the life of the process (the kernel drops it when jobd
 * exits, kill -9 included), and its descriptor is close-on-exec, so a
 * handler that outlives jobd never keeps it. A second jobd on the same
 * directory is refused with the holder's pid and changes nothing (the lock
 * file is opened, never truncated, before the lock is ours).
 * statedir_check is the --check-config variant: it creates nothing. */
#ifndef JOBD_STATEDIR_H
#define JOBD_STATEDIR_H

#include <stddef.h>

#define STATEDIR_LOCK_FILE "jobd.lock"

/* Creates dir if missing (mode 0700, one level), locks STATE_DIR/jobd.lock
 * and writes our pid into it. Returns the lock's descriptor (keep it open
 * for the process's life; statedir_unlock releases it), or -1 with err
 * naming the path and the cause, or the pid of the jobd that holds it. */
int statedir_lock(const char *dir, char *err, size_t errlen);
void statedir_unlock(int fd);

/* Checks, creating nothing, that jobd could use dir: it exists as a
 * writable directory, or can be created (its parent is). Returns 0 with
 * what it found in msg, or -1 with the reason in msg. */
int statedir_check(const char *dir, char *msg, size_t len);

#endif
