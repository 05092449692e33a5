/* http_get.h - a small blocking HTTP client for unit tests of the engine's
 * server and what it serves: one libcurl easy handle, the body gathered in
 * memory. Header-only: static functions, one copy per test. */
#ifndef SHOAL_SPEC_HTTP_GET_H
#define SHOAL_SPEC_HTTP_GET_H

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/httpd.h"

struct body {
    char *p;
    size_t len;
};

static inline size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    char *p = realloc(b->p, b->len + size * n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, size * n);
    b->p = p;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One request on easy handle e (reused, so keep-alive can apply). Returns
 * the status, or -1 on a transport error; *b receives the body. */
static inline long fetch(CURL *e, const char *url, const char *method, struct body *b)
{
    long status = -1;
    free(b->p);
    *b = (struct body){NULL, 0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(e, CURLOPT_NOBODY, method && strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                     method && strcmp(method, "HEAD") != 0 ? method : NULL);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (!b->p) {
        b->p = calloc(1, 1);
    }
    return status;
}

static inline void url_of(char *out, size_t len, const httpd *h, const char *path)
{
    snprintf(out, len, "http://%s:%d%s", httpd_host(h), httpd_port(h), path);
}

#endif
