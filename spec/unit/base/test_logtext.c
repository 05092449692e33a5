/* A log value is one JSON string whatever its bytes, and secrets in URLs or
 * key=value parameters never reach the log. */
#include "check.h"
#include "base/logtext.h"

#include <stdlib.h>

/* Strict check that s (n bytes) is exactly one JSON string (RFC 8259):
 * no raw control byte, only the defined escapes, valid UTF-8, and no
 * unpaired surrogate escape. */
static int hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

static int json_string_ok(const char *s, size_t n)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return 0;
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"')
            return 0;
        if (c == '\\') {
            if (i + 1 >= n - 1)
                return 0;
            char e = s[i + 1];
            if (e == 'u') {
                unsigned v, w;
                if (i + 6 > n - 1 || !hex4(s + i + 2, &v))
                    return 0;
                i += 6;
                if (v >= 0xdc00 && v <= 0xdfff)
                    return 0;
                if (v >= 0xd800 && v <= 0xdbff) {
                    if (i + 6 > n - 1 || s[i] != '\\' || s[i + 1] != 'u' ||
                        !hex4(s + i + 2, &w) || w < 0xdc00 || w > 0xdfff)
                        return 0;
                    i += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0)
                return 0;
            i += 2;
            continue;
        }
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (k == 0 || i + k > n - 1)
            return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xc0) != 0x80)
                return 0;
        unsigned char c1 = (unsigned char)s[i + 1];
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
            (c == 0xf4 && c1 >= 0x90))
            return 0;
        i += k;
    }
    return 1;
}

static char buf[512];

static const char *json(const char *in, size_t len, size_t outlen)
{
    memset(buf, 'G', sizeof buf);
    size_t n = logtext_json(buf, outlen, in, len);
    if (n != strlen(buf) || n >= outlen || buf[outlen] != 'G' || !json_string_ok(buf, n))
        return "(bad)";
    return buf;
}

#define J(s) json(s, sizeof(s) - 1, sizeof buf - 1)

static const char *redact(const char *in, size_t outlen)
{
    memset(buf, 'G', sizeof buf);
    size_t n = logtext_redact(buf, outlen, in, strlen(in));
    if (n != strlen(buf) || n >= outlen || buf[outlen] != 'G')
        return "(bad)";
    return buf;
}

#define R(s) redact(s, sizeof buf - 1)

static void test_json_escapes(void)
{
    CHECK_STR(J("plain"), "\"plain\"");
    CHECK_STR(J(""), "\"\"");
    CHECK_STR(J("say \"hi\""), "\"say \\\"hi\\\"\"");
    CHECK_STR(J("C:\\tmp"), "\"C:\\\\tmp\"");
    CHECK_STR(J("a=b c"), "\"a=b c\"");
    /* a newline cannot start a forged line or field */
    CHECK_STR(J("a\nlevel=ERROR msg=forged"), "\"a\\nlevel=ERROR msg=forged\"");
    CHECK_STR(J("\r\t"), "\"\\r\\t\"");
    CHECK_STR(J("\x01\x1b[31m\x7f"), "\"\\u0001\\u001b[31m\\u007f\"");
    CHECK_STR(json("a\0b", 3, sizeof buf - 1), "\"a\\u0000b\"");
    CHECK_STR(J("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f\"");
}

static void test_json_invalid_utf8(void)
{
    CHECK_STR(J("a\xff" "b"), "\"a\\ufffdb\"");
    CHECK_STR(J("\xc3"), "\"\\ufffd\"");                    /* truncated */
    CHECK_STR(J("\xc0\xaf"), "\"\\ufffd\\ufffd\"");         /* overlong */
    CHECK_STR(J("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    CHECK_STR(J("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    CHECK_STR(J("\xe2\x82" "x"), "\"\\ufffd\\ufffdx\"");
}

static void test_json_cut(void)
{
    const char *ten = "0123456789";
    CHECK_STR(json(ten, 10, 13), "\"0123456789\""); /* 12 bytes + NUL: fits */
    CHECK_STR(json(ten, 10, 12), "\"012345...\"");
    CHECK_STR(json(ten, 10, 8), "\"01...\"");
    CHECK_STR(json(ten, 10, 9), "\"012...\"");
    /* escapes and characters are never split */
    CHECK_STR(json("\n\n\n\n\n", 5, 10), "\"\\n\\n...\"");
    CHECK_STR(json("\n\n\n\n\n", 5, 11), "\"\\n\\n...\"");
    CHECK_STR(json("\n\n\n\n\n", 5, 12), "\"\\n\\n\\n...\"");
    CHECK_STR(json("\x01\x01", 2, 10), "\"...\"");
    CHECK_STR(json("\x01\x01", 2, 11), "\"...\"");
    CHECK_STR(json("\x01\x01", 2, 12), "\"\\u0001...\"");
    CHECK_STR(json("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 10), "\"\xe2\x82\xac...\"");
    CHECK_STR(json("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 11), "\"\xe2\x82\xac...\"");
    CHECK_STR(json("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 12),
              "\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"");
    CHECK_STR(json("\xff\xff\xff", 3, 16), "\"\\ufffd...\"");

    /* every outlen gives valid JSON for a mix of everything */
    const char mix[] = "q\"b\\n\n\x01\xe2\x82\xac\xff\xf0\x9f\x90\x9f end";
    for (size_t outlen = 8; outlen < 64; outlen++)
        CHECK(strcmp(json(mix, sizeof mix - 1, outlen), "(bad)") != 0);

    /* too small a buffer: empty, never overrun */
    char tiny[4] = "xyz";
    CHECK_EQ_INT(logtext_json(tiny, 3, "abc", 3), 0);
    CHECK_STR(tiny, "");
}

static void test_redact_userinfo(void)
{
    CHECK_STR(R("https://bob:hunter2@example.com/x"), "https://bob:REDACTED@example.com/x");
    CHECK_STR(R("https://ghp_abc123@github.com/o/r.git"), "https://REDACTED@github.com/o/r.git");
    CHECK_STR(R("fetch redis://:pw@10.0.0.1:6379 failed"),
              "fetch redis://:REDACTED@10.0.0.1:6379 failed");
    CHECK_STR(R("http://u:p@ss@h/"), "http://u:REDACTED@h/");
    CHECK_STR(R("a http://h:8080/p and ftp://x:y@z"), "a http://h:8080/p and ftp://x:REDACTED@z");
    /* an @ in the path is not userinfo */
    CHECK_STR(R("http://h/users/@me"), "http://h/users/@me");
    CHECK_STR(R("mailto:bob@example.com"), "mailto:bob@example.com");
}

static void test_redact_params(void)
{
    CHECK_STR(R("http://h/?token=abc&x=1"), "http://h/?token=REDACTED&x=1");
    CHECK_STR(R("http://h/?a=1&password=pw&api_key=k1&b=2#frag"),
              "http://h/?a=1&password=REDACTED&api_key=REDACTED&b=2#frag");
    CHECK_STR(R("http://h/?Access_Token=t&APIKEY=k"),
              "http://h/?Access_Token=REDACTED&APIKEY=REDACTED");
    CHECK_STR(R("http://h/#secret=s&pwd=p"), "http://h/#secret=REDACTED&pwd=REDACTED");
    CHECK_STR(R("body: user=bob&passwd=x&client_secret=y"),
              "body: user=bob&passwd=REDACTED&client_secret=REDACTED");
    CHECK_STR(R("login password=x ok"), "login password=REDACTED ok");
    CHECK_STR(R("auth=Bearer"), "auth=REDACTED");
    CHECK_STR(R("?key=v"), "?key=REDACTED");
    CHECK_STR(R("config.token=v"), "config.token=REDACTED");
    CHECK_STR(R("token=a;b,c d"), "token=REDACTED d");
    /* an empty value hides nothing */
    CHECK_STR(R("?token=&x=1"), "?token=&x=1");
    /* names that merely contain a secret name are left alone */
    CHECK_STR(R("keyboard=1 monkey=2 tokens=3 my_password=4 key2=5"),
              "keyboard=1 monkey=2 tokens=3 my_password=4 key2=5");
    CHECK_STR(R("https://u:p@h/?token=t"), "https://u:REDACTED@h/?token=REDACTED");
    CHECK_STR(R("no secrets here"), "no secrets here");
}

static void test_redact_cut(void)
{
    CHECK_STR(redact("abcdef", 4), "abc");
    CHECK_STR(redact("?token=abcdef", 12), "?token=REDA");
    CHECK_STR(redact("\xe2\x82\xac\xe2\x82\xac", 6), "\xe2\x82\xac");
    CHECK_STR(redact("abc", 1), "");
    char one[2] = "z";
    CHECK_EQ_INT(logtext_redact(one, 0, "abc", 3), 0);
    CHECK(one[0] == 'z');
    /* a cut never shows the secret, whatever the size */
    const char *in = "x https://u:SECRETpw@h/?token=SECRETtok&b=1";
    for (size_t outlen = 1; outlen < 64; outlen++)
        CHECK(!strstr(redact(in, outlen), "SECRET"));
}

int main(void)
{
    test_json_escapes();
    test_json_invalid_utf8();
    test_json_cut();
    test_redact_userinfo();
    test_redact_params();
    test_redact_cut();
    return check_done();
}
