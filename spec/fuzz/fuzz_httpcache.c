/* fuzz_httpcache.c - fuzz target for httpcache_load (net/httpcache.c), which
 * reads back the files --http-cache keeps: a file damaged on disk (cut
 * short, edited, another program's) must be a miss or a whole entry, never
 * a crash or a read past what it holds.
 *
 * The input is written as the cache file of one URL, then loaded. On a
 * hit: the lengths are those of the blocks read (each NUL-terminated), and
 * the status is one the cache keeps. A store then load of what was read
 * gives it back unchanged. Any breach aborts. */
#include "net/httpcache.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define URL "http://example.com/a?b=1"

static char dir[64];

/* the file httpcache keeps URL in: found by storing once */
static char path[256];

static void setup(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof dir, "/tmp/fuzz_httpcache.%ld", (long)getpid());
    char err[300];
    must(httpcache_store(dir, URL, 200, URL, "", 0, "", 0, err, sizeof err) == 0);
    struct httpcache_entry e;
    must(httpcache_load(dir, URL, &e) == 1);
    httpcache_entry_free(&e);
    /* the one file in dir */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls %s/*.http", dir);
    FILE *p = popen(cmd, "r");
    must(p && fgets(path, sizeof path, p));
    pclose(p);
    path[strcspn(path, "\n")] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    FILE *f = fopen(path, "wb");
    must(f != NULL);
    must(fwrite(data, 1, size, f) == size);
    must(fclose(f) == 0);
    struct httpcache_entry e;
    if (httpcache_load(dir, URL, &e) != 1)
        return 0;
    must(httpcache_keeps(e.status));
    must(strlen(e.url) < 8000);
    must(e.headers[e.headers_len] == 0 && e.body[e.body_len] == 0);
    must(e.headers_len + e.body_len <= size);
    /* what was read stores and loads back the same */
    char err[300];
    must(httpcache_store(dir, URL, e.status, e.url, e.headers, e.headers_len, e.body, e.body_len,
                         err, sizeof err) == 0);
    struct httpcache_entry g;
    must(httpcache_load(dir, URL, &g) == 1);
    must(g.status == e.status && !strcmp(g.url, e.url) && g.body_len == e.body_len &&
         g.headers_len == e.headers_len && !memcmp(g.body, e.body, e.body_len) &&
         !memcmp(g.headers, e.headers, e.headers_len));
    httpcache_entry_free(&g);
    httpcache_entry_free(&e);
    return 0;
}
