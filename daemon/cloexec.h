/* cloexec.h - no descriptor of jobd crosses execve into a handler.
 *
 * DESIGN: a handler gets its stdin, stdout and stderr and nothing else of
 * jobd (CONTRACT guarantee 8): a Redis socket it inherited would let it send
 * commands authenticated as jobd. Every descriptor jobd opens is therefore
 * close-on-exec: libuv and SQLite open theirs with O_CLOEXEC/SOCK_CLOEXEC,
 * hiredis 0.14 does not, so rq sets the flag right after each connect. A
 * handler spawned on a spawner thread (spawner.h) in the moment between
 * that connect and the flag still gets nothing: every child closes all
 * descriptors above 2 before execve (child.h). As a further defence, a
 * sweep at most once a second before a spawn marks whatever is left
 * (descriptors jobd inherited from its own parent included) and names each
 * one it had to fix, which is a bug of ours, in a warning. */
#ifndef JOBD_CLOEXEC_H
#define JOBD_CLOEXEC_H

/* Sets FD_CLOEXEC on fd. Returns 0 or -errno. */
int cloexec_set(int fd);

/* Sets FD_CLOEXEC on every open descriptor above 2 that lacks it. With warn,
 * logs a warning naming each one (fd and what it is). Returns how many it
 * had to mark, or -errno if /proc/self/fd cannot be read. Any thread. */
int cloexec_sweep(int warn);

#endif
