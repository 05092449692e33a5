/* httpd.h - the engine's own HTTP server (libmicrohttpd).
 *
 * Serves /healthz, the demo site under /demo/ (demo_site.c) and whatever
 * other subsystems register (the metrics issue adds /metrics). Started by the
 * main thread before workers, stopped after they are joined. Handlers run on
 * libmicrohttpd's threads: a handler may only read state that is safe to read
 * from another thread. A response may ask to be delayed; the connection is
 * then suspended and resumed by a timer, so a slow page holds no thread. */
#ifndef SHOAL_HTTPD_H
#define SHOAL_HTTPD_H

#include <stddef.h>

struct httpd_request {
    const char *method;
    const char *path;   /* without the query string */
    const char *query;  /* raw query string without '?', or "" */
    const char *accept; /* Accept header, or "" */
};

struct httpd_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd; the server frees it */
    size_t len;
    unsigned delay_ms; /* answer only after this long, without holding a thread */
};

/* Returns 0 and fills *resp, or -1 (the server answers 500 and frees
 * resp->body if the handler set it). */
typedef int (*httpd_handler)(void *arg, const struct httpd_request *req,
                             struct httpd_response *resp);

typedef struct httpd httpd;

/* listen is "HOST:PORT", "HOST:0" (a free port; see httpd_port) or "off".
 * Returns 0 and sets *out (NULL for "off"), or -1 with a message in err
 * naming the --listen flag and what to do (port in use, bad address). */
int httpd_start(const char *listen, httpd **out, char *err, size_t errlen);

/* Adds a handler for every path under prefix: "/demo/" takes "/demo/..."
 * and "/metrics" takes "/metrics" and "/metrics/...", but not "/metricsx".
 * Call before requests arrive (right after httpd_start). Returns 0 or -1. */
int httpd_route(httpd *h, const char *prefix, httpd_handler fn, void *arg);

int httpd_port(const httpd *h);
/* As given, e.g. "127.0.0.1" or "[::1]" (brackets kept, so host:port is a URL
 * authority). */
const char *httpd_host(const httpd *h);

/* Parses a --listen value without touching the network: "HOST:PORT",
 * "[IPV6]:PORT", "HOST:0" or "off". Returns 0 with host (brackets removed) and
 * *port (0..65535; -1 and host "" for "off"), or -1 with a message in err that
 * names --listen. Never writes past hostlen/errlen; any thread. */
int httpd_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                       size_t errlen);

/* Stops serving and frees. NULL is a no-op. */
void httpd_stop(httpd *h);

#endif
