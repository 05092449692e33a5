/* sessions.h - named cookie jars for shoal.http's `session` option, and
 * the proxies of --proxy-list.
 *
 * A session is a jar of cookies that requests naming it share, whichever
 * worker makes them: curl's own cookie engine, in a curl share handle per
 * name, guarded by a lock (curl calls it around each use). A script keeps
 * a session per job chain by carrying its name in the jobs it pushes, or
 * per host by naming it after the host. Requests with no session send and
 * keep no cookies.
 *
 * --proxy-list FILE names one proxy URL per line (blank lines and lines
 * starting with '#' skipped); each host's requests take them in turn, so
 * one host's load spreads over every proxy. A request's own `proxy` option
 * wins. Thread safety: any worker may call; one mutex each. */
#ifndef SHOAL_SESSIONS_H
#define SHOAL_SESSIONS_H

#include <curl/curl.h>
#include <stddef.h>

struct sessions;

struct sessions *sessions_new(void);
void sessions_free(struct sessions *s);
/* The share handle of the session called name (made on first use); NULL
 * when out of memory. */
CURLSH *sessions_get(struct sessions *s, const char *name, size_t len);

struct proxies;

/* Reads path. NULL with the reason in err: unreadable, or no proxy in it. */
struct proxies *proxies_load(const char *path, char *err, size_t errlen);
void proxies_free(struct proxies *p);
/* The proxy for the next request to host (its group key), in turn. */
const char *proxies_pick(struct proxies *p, const char *host, size_t len);
int proxies_count(const struct proxies *p);

#endif
