/* fuzz_listen.c - fuzz target for the --listen parser (httpd_parse_listen).
 *
 * Whatever the bytes, the parser must answer 0 or -1, keep every string it
 * writes terminated inside its buffer, report a port in range on success and
 * an error naming --listen on failure, and behave the same with buffers too
 * small for its answer. Any breach aborts, which libFuzzer and the CTest
 * replay both report. */
#include "net/httpd.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_one(const char *s, size_t hostlen, size_t errlen)
{
    /* Guard bytes after each buffer catch writes past the stated length. */
    char host[300], err[300];
    int port = 12345;

    memset(host, 'G', sizeof host);
    memset(err, 'G', sizeof err);
    int rc = httpd_parse_listen(s, host, hostlen, &port, err, errlen);
    must(rc == 0 || rc == -1);
    must(host[hostlen] == 'G' && err[errlen] == 'G');
    if (hostlen)
        must(memchr(host, '\0', hostlen) != NULL);
    if (errlen)
        must(memchr(err, '\0', errlen) != NULL);
    if (rc == 0) {
        must(port >= -1 && port <= 65535);
        must(port >= 0 || host[0] == '\0');
        if (errlen)
            must(err[0] == '\0');
    } else {
        must(port == -1);
        if (errlen > 9)
            must(strncmp(err, "--listen", 8) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_one(s, 256, 256);
    check_one(s, 1, 1);
    check_one(s, 8, 12);
    check_one(s, 0, 0);
    free(s);
    return 0;
}
