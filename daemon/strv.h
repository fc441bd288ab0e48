/* strv.h - NULL-terminated vectors of malloc'd strings (argv, environment).
 *
 * DESIGN: a vector owns its strings; strv_free frees both. strv_copy never
 * returns a vector with a hole: on out-of-memory it frees what it made and
 * returns NULL. */
#ifndef JOBD_STRV_H
#define JOBD_STRV_H

/* A copy of v followed by extra (either may be NULL), or NULL. */
char **strv_copy(char *const *v, const char *const *extra);
/* Frees v and its strings (NULL is fine). */
void strv_free(char **v);

#endif
