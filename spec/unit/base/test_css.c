/* test_css.c - base/css.c: the XPath each supported selector form becomes
 * (as a whole document is searched, and below a node), every one of them
 * compiled by libxml2's XPath compiler; the errors for malformed and
 * unsupported selectors, each naming its column. */
#include "base/css.h"
#include "check.h"

#include <libxml/xpath.h>
#include <stdlib.h>
#include <string.h>

#define DOC "descendant-or-self::"

static const struct {
    const char *css, *xpath;
} forms[] = {
    {"p", DOC "p"},
    {"*", DOC "*"},
    {"DIV", DOC "div"},
    {"#main", DOC "*[@id = 'main']"},
    {"div#main", DOC "div[@id = 'main']"},
    {".a", DOC "*[@class and contains(concat(' ', normalize-space(@class), ' '), ' a ')]"},
    {"p.a.b", DOC "p[@class and contains(concat(' ', normalize-space(@class), ' '), ' a ') and "
                  "@class and contains(concat(' ', normalize-space(@class), ' '), ' b ')]"},
    {"[href]", DOC "*[@href]"},
    {"[ HREF ]", DOC "*[@href]"},
    {"a[href=x]", DOC "a[@href = 'x']"},
    {"a[href='it''s']", NULL}, /* two strings: an error, below */
    {"a[title=\"it's\"]", DOC "a[@title = \"it's\"]"},
    {"a[title='say \"it\\'s\"']", DOC "a[@title = concat('say \"it', \"'\", 's\"')]"},
    {"[rel~=next]", DOC "*[@rel and contains(concat(' ', normalize-space(@rel), ' '), ' next ')]"},
    {"[rel~='']", DOC "*[false()]"},
    {"[rel~='a b']", DOC "*[false()]"},
    {"[lang|=en]", DOC "*[@lang and (@lang = 'en' or starts-with(@lang, 'en-'))]"},
    {"[href^=http]", DOC "*[@href and starts-with(@href, 'http')]"},
    {"[href^='']", DOC "*[false()]"},
    {"[href$='.pdf']", DOC "*[@href and substring(@href, string-length(@href) - "
                           "string-length('.pdf') + 1) = '.pdf']"},
    {"[href*=shop]", DOC "*[@href and contains(@href, 'shop')]"},
    {"[data-x\\:y=x\\30 ]", DOC "*[@*[name() = 'data-x:y'] = 'x0']"},
    {"div p", DOC "div/descendant::p"},
    {"div  >  p", DOC "div/p"},
    {"div>p", DOC "div/p"},
    {"h1 + p", DOC "h1/following-sibling::*[1][self::p]"},
    {"h1 + .x", DOC "h1/following-sibling::*[1][@class and contains(concat(' ', "
                    "normalize-space(@class), ' '), ' x ')]"},
    {"h1 + *", DOC "h1/following-sibling::*[1]"},
    {"h1 ~ p", DOC "h1/following-sibling::p"},
    {"ul li > a", DOC "ul/descendant::li/a"},
    {"a, b", DOC "a | " DOC "b"},
    {" a ,b ", DOC "a | " DOC "b"},
    {"li:first-child", DOC "li[count(preceding-sibling::*) = 0]"},
    {"li:last-child", DOC "li[count(following-sibling::*) = 0]"},
    {"li:only-child", DOC "li[count(preceding-sibling::*) = 0 and "
                          "count(following-sibling::*) = 0]"},
    {"p:first-of-type", DOC "p[count(preceding-sibling::p) = 0]"},
    {"p:last-of-type", DOC "p[count(following-sibling::p) = 0]"},
    {"p:only-of-type", DOC "p[count(preceding-sibling::p) = 0 and "
                           "count(following-sibling::p) = 0]"},
    {"li:nth-child(3)", DOC "li[count(preceding-sibling::*) = 2]"},
    {"li:nth-child(0)", DOC "li[false()]"},
    {"li:nth-child(odd)", DOC "li[count(preceding-sibling::*) mod 2 = 0]"},
    {"li:nth-child(EVEN)", DOC "li[count(preceding-sibling::*) mod 2 = 1]"},
    {"li:nth-child(2n+1)", DOC "li[count(preceding-sibling::*) mod 2 = 0]"},
    {"li:nth-child( 3n - 1 )", DOC "li[count(preceding-sibling::*) mod 3 = 1]"},
    {"li:nth-child(n+3)", DOC "li[count(preceding-sibling::*) >= 2]"},
    {"li:nth-child(n)", DOC "li[true()]"},
    {"li:nth-child(-n+3)", DOC "li[count(preceding-sibling::*) <= 2]"},
    {"li:nth-child(-2n+5)", DOC "li[count(preceding-sibling::*) <= 4 and "
                                "count(preceding-sibling::*) mod 2 = 0]"},
    {"li:nth-child(-n-1)", DOC "li[false()]"},
    {"li:nth-child(4n+6)", DOC "li[count(preceding-sibling::*) >= 5 and "
                               "count(preceding-sibling::*) mod 4 = 1]"},
    {"li:nth-last-child(2)", DOC "li[count(following-sibling::*) = 1]"},
    {"p:nth-of-type(2)", DOC "p[count(preceding-sibling::p) = 1]"},
    {"p:nth-last-of-type(1)", DOC "p[count(following-sibling::p) = 0]"},
    {"p:not(.x)", DOC "p[not((@class and contains(concat(' ', normalize-space(@class), ' '), "
                      "' x ')))]"},
    {"li:not(:first-child)", DOC "li[not((count(preceding-sibling::*) = 0))]"},
    {":not(p, div#a)", DOC "*[not((self::p) or (self::div and @id = 'a'))]"},
    {":not(*)", DOC "*[not((true()))]"},
    {"p:empty", DOC "p[not(*) and not(string-length())]"},
    {":root", DOC "*[not(parent::*)]"},
    {"p:contains('a b')", DOC "p[contains(string(.), 'a b')]"},
    {"p:contains(ab)", DOC "p[contains(string(.), 'ab')]"},
    {"> li", "child::li"},
    {"+ p", "following-sibling::*[1][self::p]"},
    {"~ p", "following-sibling::p"},
    {"caf\xc3\xa9", DOC "*[name() = 'caf\xc3\xa9']"},
    {"[title='a\\1 \\FFFE b\tc']", DOC "*[@title = 'a\xef\xbf\xbd\xef\xbf\xbd"
                                       "b\tc']"},
    {".\\31 23", DOC "*[@class and contains(concat(' ', normalize-space(@class), ' '), ' 123 ')]"},
};

static const struct {
    const char *css, *err;
} errors[] = {
    {"", "empty selector at column 1"},
    {"   ", "empty selector at column 4"},
    {"a,", "the selector ends after ',' at column 3"},
    {"a[href", "expected ']' or an operator (=, ~=, |=, ^=, $=, *=) in [href at column 7"},
    {"a[href=x", "expected ']' to close '[' at column 9"},
    {"a[href='it''s']", "expected ']' to close '[' at column 12"},
    {"a[href='x", "unterminated string at column 8"},
    {"a[href!=x]", "[attr!=value] is jQuery's, not CSS: write :not([attr=value]) at column 7"},
    {"a[href=x i]", "attribute flags ([attr=v i]) are not supported at column 10"},
    {"a[=x]", "expected an attribute name after '[' at column 3"},
    {"svg|a", "namespaces (ns|tag) are not supported at column 4"},
    {"p::text", "pseudo-elements (::name) are not supported at column 2"},
    {"a:hover", "unsupported pseudo-class ':hover' at column 2"},
    {"a:has(b)", "unsupported pseudo-class ':has()' at column 2"},
    {"*:first-of-type", ":first-of-type needs a tag name before it (p:first-of-type, "
                        "not *:first-of-type) at column 2"},
    {"li:nth-child(x)", "expected an+b, odd or even at column 14"},
    {"li:nth-child(2n+)", "expected a number after '+' in an+b at column 17"},
    {"li:nth-child(2", "expected ')' to close :nth-child( at column 3"},
    {"li:nth-child(999999999999)", "a number in an+b larger than 100000000 at column 14"},
    {"p:not(a b)", "expected ',' or ')' in :not() (it takes compound selectors, no "
                   "combinators) at column 9"},
    {"p:not(a", "unclosed :not( at column 2"},
    {"p >", "the selector ends where a tag, #id, .class, [attr] or :pseudo should follow "
            "at column 4"},
    {"p > > a", "unexpected '>': expected a tag, *, #id, .class, [attr] or :pseudo at column 5"},
    {"p)", "unexpected ')' at column 2"},
    {"#", "expected a name after '#' at column 2"},
    {". a", "expected a class name after '.' at column 2"},
    {"a\\", "a backslash ends the selector at column 2"},
    {"p\xff", "a byte that is not UTF-8 at column 2"},
    {"[title='a\x16']", "a control character at column 10"},
    {"[title='a\xef\xbf\xbf']", "a control character at column 10"},
    {":not(:not(:not(:not(:not(:not(:not(:not(:not(a)))))))))",
     ":not() nested deeper than 8 at column 41"},
};

static int compiles(const char *xpath)
{
    xmlXPathCompExprPtr c = xmlXPathCompile((const xmlChar *)xpath);
    xmlXPathFreeCompExpr(c);
    return c != NULL;
}

static void quiet(void *ctx, const char *msg, ...) {}

int main(void)
{
    char err[CSS_ERR_MAX];
    char *x;
    static char big[CSS_SELECTOR_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    xmlSetGenericErrorFunc(NULL, quiet);
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        if (!forms[k].xpath)
            continue;
        const char *css = forms[k].css;
        const char *axis = css[0] == '>' || css[0] == '+' || css[0] == '~' ? "X::" : DOC;
        char *x = css_to_xpath(css, strlen(css), axis, err);
        if (!x)
            fprintf(stderr, "%s: %s\n", css, err);
        CHECK_STR(x, forms[k].xpath);
        if (x) {
            if (!compiles(x))
                fprintf(stderr, "does not compile: %s\n", x);
            CHECK(compiles(x));
        }
        free(x);
    }

    for (size_t k = 0; k < sizeof errors / sizeof errors[0]; k++) {
        const char *css = errors[k].css;
        char *x = css_to_xpath(css, strlen(css), DOC, err);
        if (x)
            fprintf(stderr, "%s: no error, got %s\n", css, x);
        CHECK(x == NULL);
        CHECK_STR(err, errors[k].err);
        free(x);
    }

    /* a long name in a message is cut, its column never */
    static char longname[300] = "a:";
    memset(longname + 2, 'n', sizeof longname - 3);
    x = css_to_xpath(longname, strlen(longname), DOC, err);
    CHECK(x == NULL);
    CHECK(strstr(err, "unsupported pseudo-class ':nnnn") == err);
    CHECK(strstr(err, " at column 2") != NULL);

    /* below a node: every alternative starts with the axis it is given */
    x = css_to_xpath("a, b > i", 8, "descendant::", err);
    CHECK_STR(x, "descendant::a | descendant::b/i");
    free(x);

    /* a NUL inside the given length is refused, not cut short */
    x = css_to_xpath("a\0b", 3, DOC, err);
    CHECK(x == NULL);
    CHECK_STR(err, "a NUL byte at column 2");

    /* length bound, and one just inside it */
    x = css_to_xpath(big, CSS_SELECTOR_MAX + 1, DOC, err);
    CHECK(x == NULL);
    CHECK(strstr(err, "longer than 4096 bytes") != NULL);
    x = css_to_xpath(big, CSS_SELECTOR_MAX, DOC, err);
    CHECK(x != NULL && strlen(x) == strlen(DOC) + CSS_SELECTOR_MAX);
    free(x);
    return check_done();
}
