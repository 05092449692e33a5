/* fuzz_css.c - fuzz target for base/css.c: selectors come from scripts, and
 * some scripts build them from page text.
 *
 * The input is a selector, translated from an exact-size copy (ASan sees a
 * read past it) for a document and below a node. Either way: a failure
 * leaves a message that names a column inside the selector (or says it is
 * too long); a success is an XPath expression that libxml2 compiles, and
 * that evaluates on a small page to a node-set, never an error or a
 * number. Any breach aborts. */
#include "base/css.h"

#include "fuzz_util.h"

#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char PAGE[] = "<html><head><title>t</title></head><body><div id=a class='x y'>"
                           "<p lang=en-GB>one<p>two<ul><li>1<li class=x>2<li>3</ul></div>"
                           "<table><tr><td>c<td></table><a href='/p.pdf' rel=next>l</a>";

static htmlDocPtr page;

static void quiet(void *ctx, const char *msg, ...) {}

static void check(const uint8_t *data, size_t size, const char *axis, xmlNodePtr at)
{
    char *sel = malloc(size ? size : 1);
    must(sel != NULL);
    memcpy(sel, data, size);
    char err[CSS_ERR_MAX];
    memset(err, 'x', sizeof err);
    char *x = css_to_xpath(sel, size, axis, err);
    free(sel);
    if (!x) {
        size_t n = strnlen(err, sizeof err);
        must(n > 0 && n < sizeof err);
        const char *col = strstr(err, " at column ");
        if (col) {
            long c = strtol(col + 11, NULL, 10);
            must(c >= 1 && (size_t)c <= size + 1);
        } else {
            must(strstr(err, "longer than") != NULL || strstr(err, "out of memory") != NULL);
        }
        return;
    }
    must(strncmp(x, axis, strlen(axis)) == 0 || strncmp(x, "child::", 7) == 0 ||
         strncmp(x, "following-sibling::", 19) == 0);
    xmlXPathCompExprPtr comp = xmlXPathCompile((const xmlChar *)x);
    if (!comp)
        fprintf(stderr, "fuzz_css: does not compile: %s\n", x);
    must(comp != NULL);
    xmlXPathContextPtr ctx = xmlXPathNewContext(page);
    must(ctx != NULL);
    ctx->node = at;
    xmlXPathObjectPtr r = xmlXPathCompiledEval(comp, ctx);
    if (!r || r->type != XPATH_NODESET)
        fprintf(stderr, "fuzz_css: no node-set from: %s\n", x);
    must(r != NULL && r->type == XPATH_NODESET);
    xmlXPathFreeObject(r);
    xmlXPathFreeContext(ctx);
    xmlXPathFreeCompExpr(comp);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!page) {
        xmlSetGenericErrorFunc(NULL, quiet);
        page = htmlReadMemory(PAGE, (int)sizeof PAGE - 1, NULL, NULL,
                              HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
        must(page != NULL);
    }
    check(data, size, "descendant-or-self::", (xmlNodePtr)page);
    xmlNodePtr body = xmlDocGetRootElement(page)->children->next;
    check(data, size, "descendant::", body);
    return 0;
}
