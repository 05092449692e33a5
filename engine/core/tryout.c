/* tryout.c - the report of `shoal try` (tryout.h). */
#include "core/tryout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/logtext.h"

char *tryout_job(const char *target)
{
    const char *p = target + strspn(target, " \t\r\n");
    if (*p == '{')
        return strdup(p);
    size_t cap = strlen(target) * 6 + 16;
    char *job = malloc(cap + 16);
    if (!job)
        return NULL;
    memcpy(job, "{\"url\":", 7);
    size_t n = logtext_json(job + 7, cap, target, strlen(target));
    memcpy(job + 7 + n, "}", 2);
    return job;
}

void tryout_request(const char *method, const char *url, long status, size_t bytes,
                    double seconds, const char *error)
{
    char safe[2048];
    logtext_redact(safe, sizeof safe, url, strlen(url));
    if (status)
        printf("request %s %s -> %ld, %zu bytes, %.1f ms\n", method, safe, status, bytes,
               seconds * 1e3);
    else
        printf("request %s %s -> no answer: %s\n", method, safe, error ? error : "?");
    fflush(stdout);
}

void tryout_push(const char *job, size_t len, const char *key, size_t key_len, const char *what)
{
    /* cjson writes "/" as "\/": shown plain, still JSON */
    fputs("push ", stdout);
    for (size_t i = 0; i < len; i++) {
        if (job[i] == '\\' && i + 1 < len && job[i + 1] == '/')
            continue;
        if (job[i] == '\\' && i + 1 < len) {
            putchar(job[i]);
            i++;
        }
        putchar(job[i]);
    }
    if (key)
        printf(" key=%.*s", (int)key_len, key);
    printf(" -> %s\n", what);
    fflush(stdout);
}

void tryout_item(const char *json, size_t len)
{
    printf("item %.*s\n", (int)len, json);
    fflush(stdout);
}
