/* fetch.h - one reusable HTTP transfer: a curl easy handle and its buffers.
 *
 * A worker keeps one transfer per coroutine slot and reuses it for every
 * request made from that slot, so steady-state requests allocate nothing
 * and connections stay in the worker's multi handle cache (keep-alive).
 * Owned and used by one worker thread. */
#ifndef SHOAL_FETCH_H
#define SHOAL_FETCH_H

#include <curl/curl.h>
#include <stddef.h>

struct http_request {
    const char *method; /* upper case */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    int nheaders;
    const char *body; /* NULL for none */
    size_t body_len;
    double timeout; /* seconds; 0 = none (the caller enforces a deadline) */
    int follow;     /* follow redirects */
    int insecure;   /* skip TLS verification */
    int compressed; /* send Accept-Encoding and decode the body */
    int max_redirects; /* redirects followed at most; 0: FETCH_MAX_REDIRECTS */
    const char *proxy; /* proxy URL, or NULL: none (the environment's if set) */
    void *share;       /* a CURLSH whose cookies the request sends and keeps, or NULL */
    const char *traceparent; /* W3C header value to send, or NULL */
};

struct http_result {
    long status; /* 0 on transport failure */
    const char *body;
    size_t body_len;
    const char *url; /* after redirects */
    double elapsed;  /* seconds */
    const char *headers; /* raw header block of the final response */
    size_t headers_len;
    const char *error; /* set when status == 0 */
};

struct buf {
    char *data;
    size_t len, cap;
};

struct transfer {
    CURL *easy;
    struct curl_slist *req_headers;
    struct buf body, headers;
    int dirty; /* options beyond a plain GET were set: reset before reuse */
    int too_big;
    size_t max_body; /* bytes a response body may have */
    int timeout_set; /* CURLOPT_TIMEOUT_MS is set on the handle */
    int pipewait;    /* CURLOPT_PIPEWAIT is set (https: may be HTTP/2) */
    int uncompressed; /* CURLOPT_ACCEPT_ENCODING is off */
    struct curl_slist *tp; /* one "traceparent: ..." line, rewritten in place */
    int tp_set;            /* CURLOPT_HTTPHEADER points at tp */
    char error[CURL_ERROR_SIZE];
    void *owner; /* the slot, for CURLINFO_PRIVATE */
    const char *user_agent; /* the User-Agent header, kept by the caller */
    long max_redirects;     /* of the request in flight */
    int cookies;            /* CURLOPT_COOKIEFILE is set (a session) */
    struct loop *loop; /* told about the sockets curl opens and closes */
};

struct loop;
#define FETCH_MAX_BODY ((size_t)64 << 20) /* --max-body's default */
#define FETCH_MAX_REDIRECTS 10L

/* Creates the easy handle with the options every request shares; loop
 * (loop.h; may be NULL) hears of every socket it opens and closes; a response body
 * over max_body bytes (0: FETCH_MAX_BODY) fails its request; user_agent
 * (NULL: "shoal/VERSION") must outlive the transfer. 0 / -1. */
int fetch_init(struct transfer *t, void *owner, struct loop *loop, size_t max_body,
               const char *user_agent);
void fetch_cleanup(struct transfer *t);

/* Sets up t for req. Returns 0, or -1 with a message in err (bad URL etc.). */
int fetch_prepare(struct transfer *t, const struct http_request *req, char *err, size_t errlen);

/* Fills res from a finished transfer; pointers stay valid until the next
 * fetch_prepare or fetch_release. */
void fetch_result(struct transfer *t, CURLcode code, struct http_result *res);

/* Frees per-request memory after the result has been consumed; keeps buffers
 * up to a bound so the next request allocates nothing. */
void fetch_release(struct transfer *t);

#endif
