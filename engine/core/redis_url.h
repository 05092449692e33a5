/* redis_url.h - the shared queue's address, as --queue and `shoal items`
 * take it: "redis://[user:pass@]host[:port][/db][?prefix=NAME]".
 *
 * The host may be a name, an IPv4 address or an IPv6 one in brackets
 * ("[::1]:6379"). %XX is decoded in the user, the password, the host and
 * the prefix, so any byte can be written (a '@', '/' or '?' in a password
 * must be). A password alone ("redis://secret@host") is AUTH with it; a
 * user and a password log in as that ACL user. Defaults: host 127.0.0.1,
 * port 6379, db 0, prefix "shoal". */
#ifndef SHOAL_REDIS_URL_H
#define SHOAL_REDIS_URL_H

#include <stddef.h>

struct redis_url {
    char *host, *user, *pass, *prefix; /* user and pass NULL when not given */
    int port, db;
};

/* Parses url (it starts with "redis://") into u; -1 with what is wrong,
 * and how to write it, in err (u then holds nothing to free). */
int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t errlen);
void redis_url_free(struct redis_url *u);

#endif
