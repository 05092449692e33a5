/* css.h - CSS selectors translated to XPath 1.0, as cssselect does for lxml:
 * shoal.html (engine/lua/lua_html.c) compiles the result with libxml2's
 * XPath engine. Pure string work, no state: any thread may call it.
 *
 * Supported: type selectors and *, #id, .class, [attr], [attr=v], ~=, |=,
 * ^=, $=, *=, the combinators (descendant, >, +, ~), selector lists (a, b),
 * :first-child, :last-child, :only-child, :first-of-type, :last-of-type,
 * :only-of-type (these three after a tag name), :nth-child(), :nth-last-child(),
 * :nth-of-type(), :nth-last-of-type() with an+b, odd or even, :not(list of
 * compound selectors), :empty, :root and :contains("text"). A selector may
 * start with a combinator ("> li"): it is then relative to the context node.
 * Element and attribute names are matched in lower case (libxml2's HTML
 * parser lowers them); attribute values are compared as written. */
#ifndef SHOAL_CSS_H
#define SHOAL_CSS_H

#include <stddef.h>

#define CSS_ERR_MAX 160
/* Longest selector taken: a query string, not a document. */
#define CSS_SELECTOR_MAX 4096

/* The XPath for the selector sel (n bytes, need not be NUL-terminated),
 * each of its alternatives starting with axis ("descendant-or-self::" to
 * search a whole document, "descendant::" below a node). Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL with err (CSS_ERR_MAX
 * bytes) saying what is wrong and at which column (1-based) of sel, or that
 * memory ran out. */
char *css_to_xpath(const char *sel, size_t n, const char *axis, char *err);

#endif
