/* links.h - the links of an HTML page, without building its DOM.
 *
 * links_scan reads a page once, left to right, the way an HTML5 tokenizer
 * reads tags (quoted values, attributes without values, a tag never closed
 * ends the page), skipping comments, CDATA sections and the bodies of
 * <script>, <style> and the other raw-text elements, and hands each link
 * reference to a callback as it is written in the page: a slice of the
 * page, entities still in it. It allocates nothing and keeps no state
 * between calls, so any thread may call it, on any bytes of any length, in
 * time linear in the page.
 *
 * links_decode then decodes an attribute value's character references as
 * HTML5 does inside attributes (the whole named table, numeric ones with
 * their replacement rules), links_clean trims a reference as a browser does
 * before resolving it, and links_refresh_url / links_srcset_next take the
 * URLs out of a <meta http-equiv=refresh> content and a srcset. Resolving
 * and normalising is url.h's work (lua_links.c puts the two together). */
#ifndef SHOAL_LINKS_H
#define SHOAL_LINKS_H

#include <stdbool.h>
#include <stddef.h>

enum link_kind {
    LINK_A,       /* <a href> */
    LINK_AREA,    /* <area href> */
    LINK_IFRAME,  /* <iframe src> */
    LINK_FRAME,   /* <frame src> */
    LINK_REFRESH, /* <meta http-equiv=refresh content="N; url=...">: the content */
    LINK_LINK,    /* <link href>, with its rel */
    LINK_IMG,     /* <img src>, <img srcset>, <source srcset> (LINK_SRCSET) */
    LINK_KINDS,
    /* not links, but what the scanner must report too */
    LINK_BASE = LINK_KINDS, /* the first <base href>: v is its href */
    LINK_ROBOTS_NOFOLLOW,   /* <meta name=robots content=nofollow (or none)> */
};

#define LINK_NOFOLLOW 1u /* rel holds the token "nofollow" (a, area, link) */
#define LINK_SRCSET 2u   /* v is a srcset: a list of candidates */

struct link_ref {
    enum link_kind kind;
    unsigned flags;
    const char *v; /* the attribute value as written (inside the page) */
    size_t n;
    const char *rel; /* <link>'s rel as written (NULL when none) */
    size_t rel_n;
};

/* Calls fn for each link reference of html[0..n), in page order; fn
 * returns nonzero to stop the scan. */
typedef int (*links_fn)(void *ud, const struct link_ref *r);
void links_scan(const char *html, size_t n, links_fn fn, void *ud);

/* The name of a kind ("a", "area", "iframe", "frame", "refresh", "link",
 * "img"), and the kind of a name (-1 when it is none of them). */
const char *links_kind_name(enum link_kind k);
int links_kind_of(const char *name, size_t n);

/* Bytes links_decode may write for an n-byte value: decoding never grows a
 * value by more than a fifth ("&nLt;" is 5 bytes, its value 6). */
static inline size_t links_decode_size(size_t n)
{
    return n + n / 4 + 8;
}
/* v[0..n) with its character references decoded into out (of
 * links_decode_size(n) bytes); returns the decoded length. */
size_t links_decode(const char *v, size_t n, char *out);

/* Trims s[0..n) in place as a browser trims an href before resolving it:
 * spaces and control bytes off both ends, tabs and newlines inside dropped,
 * "\" read as "/" before the query. Returns the new length; 0 for a
 * reference that is empty or only a fragment, which links nothing. */
size_t links_clean(char *s, size_t n);

/* The URL in a refresh content (s, n): true with *off and *len set, false
 * when it names none (a bare delay, or not a refresh at all). */
bool links_refresh_url(const char *s, size_t n, size_t *off, size_t *len);

/* The next URL of a srcset s[0..n) from *pos on: true with *off and *len
 * set and *pos moved past the candidate, false at the end. */
bool links_srcset_next(const char *s, size_t n, size_t *pos, size_t *off, size_t *len);

#endif
