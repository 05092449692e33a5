/* fuzz_robots_origin.c - fuzz target for robots_origin (core/robots_cache.c),
 * which splits every URL a crawl requests into the origin whose robots.txt
 * rules it and the path those rules match.
 *
 * The input is the URL (up to its first NUL), copied to an allocation of
 * exactly its length and NUL, so ASan sees a read past it. When the split
 * succeeds: the origin is "http://" or "https://", a host with no upper
 * case, ":" and a port of 1 to 5 digits up to 65535, shorter than
 * ROBOTS_ORIGIN_MAX; the path points into the URL, starts with "/" (or is
 * the "/" of an empty path), and holds no fragment; and polite_group,
 * which groups the same URL's jobs, names the same host, with the port
 * when it is not the scheme's default. Any breach aborts. */
#include "core/polite.h"
#include "core/robots_cache.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    char *url = malloc(n + 1);
    must(url != NULL);
    memcpy(url, data, n);
    url[n] = 0;

    char origin[ROBOTS_ORIGIN_MAX];
    const char *path = NULL;
    size_t plen = 0;
    if (robots_origin(url, origin, &path, &plen) != 0) {
        free(url);
        return 0;
    }
    size_t on = strnlen(origin, sizeof origin);
    must(on < sizeof origin);
    int https = strncmp(origin, "https://", 8) == 0;
    must(https || strncmp(origin, "http://", 7) == 0);
    size_t hs = https ? 8 : 7; /* where the host starts */

    /* ":PORT" at the end */
    size_t d = on;
    while (d > hs && origin[d - 1] >= '0' && origin[d - 1] <= '9')
        d--;
    must(on - d >= 1 && on - d <= 5 && d > hs + 1 && origin[d - 1] == ':');
    long port = strtol(origin + d, NULL, 10);
    must(port <= 65535);
    size_t he = d - 1; /* where the host ends */
    for (size_t i = hs; i < he; i++)
        must(!(origin[i] >= 'A' && origin[i] <= 'Z'));

    /* the path: inside the URL, or the "/" an empty path stands for */
    must(plen >= 1 && path[0] == '/');
    int inside = path >= url && path + plen <= url + n;
    must(inside || (plen == 1 && strcmp(path, "/") == 0));
    if (inside)
        must(memchr(path, '#', plen) == NULL);

    /* polite_group names the same host (a group too long has none) */
    char group[POLITE_GROUP_MAX];
    size_t gn = polite_group(url, group);
    if (gn > 0) {
        size_t hn = he - hs;
        must(gn >= hn && memcmp(group, origin + hs, hn) == 0);
        int dflt = port == (https ? 443 : 80);
        if (dflt)
            must(gn == hn);
        else
            must(gn == hn + 1 + (on - d) && group[hn] == ':' &&
                 memcmp(group + hn + 1, origin + d, on - d) == 0);
    }
    free(url);
    return 0;
}
