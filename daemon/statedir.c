/* statedir.c - see statedir.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statedir.h"

/* The pid the holder wrote into the lock file, 0 if none (yet). */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int statedir_lock(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "state dir %s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "state dir %s: cannot open its lock file %s: %s", dir, path,
                 strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            long pid = holder_pid(fd);
            char who[48] = "another jobd";
            if (pid > 0) snprintf(who, sizeof who, "jobd pid %ld", pid);
            snprintf(err, errlen,
                     "state dir %s is in use by %s (lock file %s); one jobd per state dir: "
                     "give this one its own --state-dir",
                     dir, who, path);
        } else {
            snprintf(err, errlen, "state dir %s: cannot lock %s: %s", dir, path, strerror(e));
        }
        close(fd);
        return -1;
    }
    /* Ours now: say who holds it, for the next one that tries. */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "state dir %s: cannot write %s: %s", dir, path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void statedir_unlock(int fd)
{
    if (fd >= 0) close(fd); /* releases the flock; the file stays for the next jobd */
}

int statedir_check(const char *dir, char *msg, size_t len)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(msg, len, "state dir %s: not a directory", dir);
            return -1;
        }
        if (access(dir, W_OK | X_OK) < 0) {
            snprintf(msg, len, "state dir %s: not writable: %s", dir, strerror(errno));
            return -1;
        }
        snprintf(msg, len, "state dir %s exists and is writable", dir);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(msg, len, "state dir %s: %s", dir, strerror(errno));
        return -1;
    }
    char *copy = strdup(dir);
    if (!copy) {
        snprintf(msg, len, "state dir %s: out of memory", dir);
        return -1;
    }
    const char *parent = dirname(copy), *why = NULL;
    if (stat(parent, &st) < 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    else if (access(parent, W_OK | X_OK) < 0)
        why = strerror(errno);
    if (why)
        snprintf(msg, len, "state dir %s does not exist and cannot be created (parent %s: %s)", dir,
                 parent, why);
    else
        snprintf(msg, len, "state dir %s does not exist yet; jobd will create it", dir);
    free(copy);
    return why ? -1 : 0;
}
