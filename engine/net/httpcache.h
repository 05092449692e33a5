/* httpcache.h - --http-cache DIR: GET responses kept on disk by URL and
 * replayed, so a script being tried again and again (`shoal try`,
 * `--watch`) does not hit the site again, and works offline.
 *
 * A development cache by choice, not an HTTP cache: cache headers are
 * ignored, every answer but a 5xx, a 429 or no answer at all is kept, and
 * an entry is replayed until its file is deleted. One file per URL,
 * DIR/<16 hex digits>.http, named by a hash of the URL and holding the URL
 * itself (a collision is a miss); written to a temporary file and renamed,
 * so a reader never sees half an entry and a crash leaves none. A file
 * that does not parse is a miss, never an error. Any thread. */
#ifndef SHOAL_HTTPCACHE_H
#define SHOAL_HTTPCACHE_H

#include <stddef.h>

struct httpcache_entry {
    long status;
    char *url;     /* after redirects, as fetched */
    char *headers; /* the raw header block */
    size_t headers_len;
    char *body;
    size_t body_len;
};

/* 1 and *e filled (free it with httpcache_entry_free) when dir holds url's
 * answer; 0 when it does not (or its file does not parse). */
int httpcache_load(const char *dir, const char *url, struct httpcache_entry *e);
void httpcache_entry_free(struct httpcache_entry *e);

/* 1 when an answer of this status is kept. */
int httpcache_keeps(long status);

/* Keeps url's answer. 0, or -1 with the reason in err (nothing left
 * behind). final_url: after redirects. */
int httpcache_store(const char *dir, const char *url, long status, const char *final_url,
                    const char *headers, size_t headers_len, const char *body, size_t body_len,
                    char *err, size_t errlen);

#endif
