/* httpcache.c - GET responses on disk by URL (httpcache.h).
 *
 * A file: a first line "shoal-http-cache 1", then "status N", "url URL",
 * "headers N", "body N" lines, an empty line, and the header block and
 * the body, N bytes each. */
#include "net/httpcache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hash.h"

#define MAGIC "shoal-http-cache 1\n"

static void path_of(const char *dir, const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016llx.http", dir, (unsigned long long)fnv1a(url, strlen(url)));
}

int httpcache_keeps(long status)
{
    return status >= 100 && status < 500 && status != 429;
}

void httpcache_entry_free(struct httpcache_entry *e)
{
    free(e->url);
    free(e->headers);
    free(e->body);
    memset(e, 0, sizeof *e);
}

/* The next "name value" line of the header, or -1. */
static int field(FILE *f, const char *name, char *value, size_t cap)
{
    char line[8192 + 64];
    if (!fgets(line, sizeof line, f))
        return -1;
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != ' ')
        return -1;
    line[strcspn(line, "\n")] = 0;
    snprintf(value, cap, "%s", line + n + 1);
    return 0;
}

static char *read_block(FILE *f, size_t n)
{
    char *p = malloc(n + 1);
    if (!p || fread(p, 1, n, f) != n) {
        free(p);
        return NULL;
    }
    p[n] = 0;
    return p;
}

int httpcache_load(const char *dir, const char *url, struct httpcache_entry *e)
{
    memset(e, 0, sizeof *e);
    char path[4096];
    path_of(dir, url, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char magic[sizeof MAGIC], status[32], stored[8192], final[8192], hl[32], bl[32], blank[4];
    int ok = fgets(magic, sizeof magic, f) && strcmp(magic, MAGIC) == 0 &&
             field(f, "key", stored, sizeof stored) == 0 && strcmp(stored, url) == 0 &&
             field(f, "status", status, sizeof status) == 0 &&
             field(f, "url", final, sizeof final) == 0 &&
             field(f, "headers", hl, sizeof hl) == 0 && field(f, "body", bl, sizeof bl) == 0 &&
             fgets(blank, sizeof blank, f) && blank[0] == '\n';
    if (ok) {
        e->status = strtol(status, NULL, 10);
        e->headers_len = strtoull(hl, NULL, 10);
        e->body_len = strtoull(bl, NULL, 10);
        /* the two blocks are the rest of the file, exactly: a length that
         * says otherwise is damage, and is never allocated */
        long here = ftell(f);
        struct stat st;
        ok = here >= 0 && fstat(fileno(f), &st) == 0 && e->headers_len <= (size_t)st.st_size &&
             e->body_len <= (size_t)st.st_size &&
             (off_t)(here + e->headers_len + e->body_len) == st.st_size;
    }
    if (ok) {
        e->url = strdup(final);
        e->headers = read_block(f, e->headers_len);
        e->body = read_block(f, e->body_len);
        ok = e->url && e->headers && e->body && httpcache_keeps(e->status);
    }
    fclose(f);
    if (!ok)
        httpcache_entry_free(e);
    return ok;
}

int httpcache_store(const char *dir, const char *url, long status, const char *final_url,
                    const char *headers, size_t headers_len, const char *body, size_t body_len,
                    char *err, size_t errlen)
{
    if (strlen(url) >= 8000 || strlen(final_url) >= 8000 || strpbrk(url, "\r\n") ||
        strpbrk(final_url, "\r\n")) {
        snprintf(err, errlen, "URL too long to keep");
        return -1;
    }
    char path[4096], tmp[4200];
    path_of(dir, url, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid() ^ (long)(uintptr_t)&path);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fprintf(f, MAGIC "key %s\nstatus %ld\nurl %s\nheaders %zu\nbody %zu\n\n", url, status,
                     final_url, headers_len, body_len) > 0 &&
             fwrite(headers, 1, headers_len, f) == headers_len &&
             fwrite(body, 1, body_len, f) == body_len;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(ok ? errno : saved));
        unlink(tmp);
        return -1;
    }
    return 0;
}
