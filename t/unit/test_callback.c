/* Unit tests of the callback validator and URL checks (qcc_callback.c). */

#define _GNU_SOURCE   /* memmem */
#include <stdlib.h>

#include "unit.h"
#include "qcc_callback.h"


#define KEY       "AppKey123"
#define ORDER     "DDMON2021031616145803273367"
#define URL_ENC   "http%3A%2F%2Fpro-files.qichacha.com%2FDdMonitor%2Fx.zip"  \
                  "%3FExpires%3D1%26OSSAccessKeyId%3Da%26Signature%3Db"
#define URL_DEC   "http://pro-files.qichacha.com/DdMonitor/x.zip"            \
                  "?Expires=1&OSSAccessKeyId=a&Signature=b"
#define TIME_ENC  "2021-03-16%2020%3A19%3A00"
#define PW        "Zx9%21pw"
#define PW_DEC    "Zx9!pw"

/* the callback of the documents */
#define DOC_CB    "key=" KEY "&orderNo=" ORDER "&downloadUrl=" URL_ENC       \
                  "&downloadUrlExpiredTime=" TIME_ENC "&unzipPassword=" PW


/* the answer QCC expects */
#define DOC_OK    "{\"status\":\"200\",\"msg\":\"成功\"}"


static const qcc_url_host_t  hosts[] = {
    { sizeof("pro-files.qichacha.com") - 1,
      (const unsigned char *) "pro-files.qichacha.com" },
    { sizeof("[::1]:8443") - 1, (const unsigned char *) "[::1]:8443" },
    { sizeof("mock.test:8081") - 1, (const unsigned char *) "mock.test:8081" }
};

static qcc_callback_conf_t  conf = {
    (const unsigned char *) KEY, sizeof(KEY) - 1,
    hosts, sizeof(hosts) / sizeof(hosts[0]), QCC_CALLBACK_PLUS_SPACE
};

static unsigned char        scratch[QCC_CALLBACK_MAX_INPUT + 64];


static int
parse(const char *in, qcc_callback_args_t *a)
{
    return qcc_callback_parse((const unsigned char *) in, strlen(in), &conf,
                              scratch, sizeof(scratch), a);
}


/* A callback with each value replaced (or left out if NULL). */
static const char *
cb(const char *key, const char *order, const char *url, const char *time,
    const char *pw)
{
    static char  buf[QCC_CALLBACK_MAX_INPUT * 2];

    buf[0] = '\0';

#define ADD(name, v)                                                         \
    if (v) {                                                                 \
        if (buf[0]) strcat(buf, "&");                                        \
        strcat(buf, name "=");                                               \
        strcat(buf, v);                                                      \
    }

    ADD("key", key);
    ADD("orderNo", order);
    ADD("downloadUrl", url);
    ADD("downloadUrlExpiredTime", time);
    ADD("unzipPassword", pw);

#undef ADD

    return buf;
}


typedef struct {
    const char  *what;
    const char  *in;
    int          rc;
    const char  *arg;
} case_t;


static void
check_case(const case_t *c)
{
    int                  rc;
    qcc_callback_args_t  a;

    rc = parse(c->in, &a);

    if (rc != c->rc) {
        fprintf(stderr, "case \"%s\": rc %d, expected %d (%s)\n",
                c->what, rc, c->rc, a.reason ? a.reason : "-");
    }

    CHECK_INT(rc, c->rc);

    if (c->arg) {
        CHECK(a.arg != NULL && strcmp(a.arg, c->arg) == 0);

    } else {
        CHECK(a.arg == NULL || c->rc == QCC_CALLBACK_OK);
    }

    /* failures name a static reason, never carry a value */
    if (rc != QCC_CALLBACK_OK) {
        CHECK(a.reason != NULL);
        CHECK(a.reason && strstr(a.reason, PW_DEC) == NULL);
        CHECK(a.reason && strstr(a.reason, KEY) == NULL);
    }
}


static void
test_doc_callback(void)
{
    int                  rc;
    size_t               n;
    unsigned char        body[QCC_CALLBACK_RESPONSE_MAX];
    qcc_callback_args_t  a;

    rc = parse(DOC_CB, &a);
    CHECK_INT(rc, QCC_CALLBACK_OK);
    CHECK_MEM(a.order_no, a.order_no_len, ORDER, sizeof(ORDER) - 1);
    CHECK_MEM(a.url, a.url_len, URL_DEC, sizeof(URL_DEC) - 1);
    CHECK_MEM(a.password, a.password_len, PW_DEC, sizeof(PW_DEC) - 1);
    CHECK_INT(a.expires, 1615897140);
    CHECK_MEM(a.parsed.host, a.parsed.host_len, "pro-files.qichacha.com",
              22);
    CHECK_INT(a.parsed.port, 80);
    CHECK(a.arg == NULL);

    /* the key is wiped from scratch */
    CHECK(memmem(scratch, sizeof(scratch), KEY, sizeof(KEY) - 1) == NULL);

    CHECK_INT(qcc_callback_http_status(rc), 200);
    CHECK_STR(qcc_callback_status(rc), "200");
    n = qcc_callback_response(rc, &a, body, sizeof(body));
    /* written in UTF-8 here, in \x escapes in the header */
    CHECK_MEM(body, n, DOC_OK, sizeof(DOC_OK) - 1);
    CHECK_MEM(QCC_CALLBACK_OK_BODY, sizeof(QCC_CALLBACK_OK_BODY) - 1,
              DOC_OK, sizeof(DOC_OK) - 1);

    /* the scratch buffer needs no more than the input */
    rc = qcc_callback_parse((const unsigned char *) DOC_CB,
                            sizeof(DOC_CB) - 1, &conf, scratch,
                            sizeof(DOC_CB) - 1, &a);
    CHECK_INT(rc, QCC_CALLBACK_OK);
    rc = qcc_callback_parse((const unsigned char *) DOC_CB,
                            sizeof(DOC_CB) - 1, &conf, scratch,
                            sizeof(DOC_CB) - 2, &a);
    CHECK_INT(rc, QCC_CALLBACK_TOO_LARGE);
}


static void
test_responses(void)
{
    size_t               n;
    unsigned char        body[QCC_CALLBACK_RESPONSE_MAX];
    qcc_callback_args_t  a;

    CHECK_INT(parse(cb(KEY, ORDER, URL_ENC, TIME_ENC, PW) , &a), 0);

    CHECK_INT(parse(cb("nope", ORDER, URL_ENC, TIME_ENC, PW), &a),
              QCC_CALLBACK_BAD_KEY);
    CHECK_INT(qcc_callback_http_status(QCC_CALLBACK_BAD_KEY), 403);
    n = qcc_callback_response(QCC_CALLBACK_BAD_KEY, &a, body, sizeof(body));
    CHECK_MEM(body, n, "{\"status\":\"403\",\"msg\":\"key invalid\"}",
              strlen("{\"status\":\"403\",\"msg\":\"key invalid\"}"));

    CHECK_INT(parse(DOC_CB "&orderNo=x", &a), QCC_CALLBACK_REPEATED);
    CHECK_INT(qcc_callback_http_status(QCC_CALLBACK_REPEATED), 400);
    n = qcc_callback_response(QCC_CALLBACK_REPEATED, &a, body, sizeof(body));
    CHECK_MEM(body, n,
              "{\"status\":\"400\",\"msg\":\"argument orderNo repeated\"}",
              50);

    /* too small a buffer: nothing written */
    CHECK_INT(qcc_callback_response(QCC_CALLBACK_REPEATED, &a, body, 49), 0);
    CHECK_INT(qcc_callback_response(QCC_CALLBACK_OK, &a, body, 10), 0);

    CHECK_INT(qcc_callback_http_status(QCC_CALLBACK_TOO_LARGE), 414);
    CHECK_STR(qcc_callback_status(QCC_CALLBACK_TOO_LARGE), "414");
    CHECK_STR(qcc_callback_status(QCC_CALLBACK_HOST_DENIED), "400");
    CHECK_STR(qcc_callback_status(QCC_CALLBACK_BAD_KEY), "403");

    /* every reason fits and is JSON-safe */
    {
        int          rc;
        size_t       i;
        const char  *in[][3] = {
            { "http%3A%2F%2F169.254.169.254%2F", TIME_ENC, PW },
            { URL_ENC, "2021-03-16%2024%3A00%3A00", PW },
            { URL_ENC, TIME_ENC, "%01" },
            { URL_ENC, "%zz", PW },
            { URL_ENC, NULL, PW },
            { URL_ENC, TIME_ENC, PW },
            { "x", TIME_ENC, PW },
            { "http://a@b/", TIME_ENC, PW },
        };

        for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
            rc = parse(cb(KEY, "downloadUrlExpiredTime", in[i][0], in[i][1],
                          in[i][2]), &a);
            n = qcc_callback_response(rc, &a, body, sizeof(body));
            CHECK(n > 0);
            CHECK(memchr(body + 20, '\\', n - 20) == NULL);
            CHECK(n < 20 || body[n - 1] == '}');
        }
    }
}


/* Where the password is in the input, for the caller to mask it. */
static void
test_password_raw(void)
{
    const char           *in;
    qcc_callback_args_t   a;

    in = DOC_CB;
    CHECK_INT(parse(in, &a), QCC_CALLBACK_OK);
    CHECK_INT(a.split, 1);
    CHECK(a.password_raw == (const unsigned char *) strstr(in, PW));
    CHECK_INT(a.password_raw_len, strlen(PW));

    /* a wrong key: every argument was seen all the same */
    in = cb("nope", ORDER, URL_ENC, TIME_ENC, PW);
    CHECK_INT(parse(in, &a), QCC_CALLBACK_BAD_KEY);
    CHECK_INT(a.split, 1);
    CHECK(a.password_raw == (const unsigned char *) strstr(in, PW));

    /* any spelling of the name */
    in = "key=nope&UNZIP%50assword=s%26cret&x=1";
    CHECK_INT(parse(in, &a), QCC_CALLBACK_BAD_KEY);
    CHECK(a.password_raw == (const unsigned char *) strstr(in, "s%26cret"));
    CHECK_INT(a.password_raw_len, 8);

    /* none, or not every argument seen: the caller masks it all */
    CHECK_INT(parse(cb(KEY, ORDER, URL_ENC, TIME_ENC, NULL), &a),
              QCC_CALLBACK_MISSING);
    CHECK_INT(a.split, 1);
    CHECK(a.password_raw == NULL);
    CHECK_INT(parse("unzipPassword=a&unzipPassword=b", &a),
              QCC_CALLBACK_REPEATED);
    CHECK_INT(a.split, 0);
    CHECK(a.password_raw == NULL);
    CHECK_INT(parse("x%=1&unzipPassword=a", &a), QCC_CALLBACK_BAD_ENCODING);
    CHECK_INT(a.split, 0);
}


static void
test_cases(void)
{
    size_t  i;
    char    long_order[80], long_pw[140], long_url[2100], enc_url[2200];
    char    big[QCC_CALLBACK_MAX_INPUT + 100];

    static char  in[96][QCC_CALLBACK_MAX_INPUT * 2];

    case_t  cases[96];
    size_t  n = 0;

#define CASE(w, input, r, a)                                                 \
    do {                                                                     \
        if (n == 96) abort();                                                \
        strcpy(in[n], input);                                                \
        cases[n].what = w;                                                   \
        cases[n].in = in[n];                                                 \
        cases[n].rc = r;                                                     \
        cases[n].arg = a;                                                    \
        n++;                                                                 \
    } while (0)

    CASE("doc", DOC_CB, QCC_CALLBACK_OK, NULL);
    CASE("other order, unknown args ignored",
         "x=1&unzipPassword=" PW "&&foo&downloadUrlExpiredTime=" TIME_ENC
         "&bar=%zz&downloadUrl=" URL_ENC "&orderNo=" ORDER "&key=" KEY "&",
         QCC_CALLBACK_OK, NULL);
    CASE("encoded names and key",
         "%6bey=%41ppKey123&order%4Eo=" ORDER "&downloadUrl=" URL_ENC
         "&downloadUrlExpiredTime=" TIME_ENC "&unzipPassword=" PW,
         QCC_CALLBACK_OK, NULL);
    CASE("form '+' in the time",
         cb(KEY, ORDER, URL_ENC, "2021-03-16+20:19:00", PW),
         QCC_CALLBACK_OK, NULL);

    /* missing arguments */
    CASE("no key", cb(NULL, ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("no orderNo", cb(KEY, NULL, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_MISSING, "orderNo");
    CASE("no url", cb(KEY, ORDER, NULL, TIME_ENC, PW),
         QCC_CALLBACK_MISSING, "downloadUrl");
    CASE("no time", cb(KEY, ORDER, URL_ENC, NULL, PW),
         QCC_CALLBACK_MISSING, "downloadUrlExpiredTime");
    CASE("no password", cb(KEY, ORDER, URL_ENC, TIME_ENC, NULL),
         QCC_CALLBACK_MISSING, "unzipPassword");
    CASE("empty input", "", QCC_CALLBACK_BAD_KEY, "key");
    CASE("name without '='", "orderNo&key=" KEY, QCC_CALLBACK_MISSING,
         "downloadUrl");

    /* wrong keys: 403 before any other complaint */
    CASE("wrong key", cb("AppKey124", "bad order", NULL, NULL, NULL),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("key prefix", cb("AppKey12", ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("key longer", cb("AppKey1234", ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("key case", cb("appkey123", ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("empty key", cb("", ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("key double-encoded", cb("%2541ppKey123", ORDER, URL_ENC, TIME_ENC,
         PW), QCC_CALLBACK_BAD_KEY, "key");

    /* repeats, names without regard to case */
    CASE("key twice", DOC_CB "&key=" KEY, QCC_CALLBACK_REPEATED, "key");
    CASE("KEY and key", "KEY=x&" DOC_CB, QCC_CALLBACK_REPEATED, "key");
    CASE("orderNo twice", DOC_CB "&ORDERNO=" ORDER, QCC_CALLBACK_REPEATED,
         "orderNo");
    CASE("url twice", DOC_CB "&downloadUrl=" URL_ENC, QCC_CALLBACK_REPEATED,
         "downloadUrl");
    CASE("time twice", DOC_CB "&downloadUrlExpiredTime=" TIME_ENC,
         QCC_CALLBACK_REPEATED, "downloadUrlExpiredTime");
    CASE("password twice", DOC_CB "&unzipPassword", QCC_CALLBACK_REPEATED,
         "unzipPassword");
    CASE("encoded name twice", DOC_CB "&unzip%50assword=x",
         QCC_CALLBACK_REPEATED, "unzipPassword");
    CASE("long names folded, tail too", DOC_CB "&DOWNLOADURLEXPIREDTIME=x",
         QCC_CALLBACK_REPEATED, "downloadUrlExpiredTime");
    CASE("URL folded", DOC_CB "&DownloadURL=x", QCC_CALLBACK_REPEATED,
         "downloadUrl");

    /* names of a known length, one byte off: unknown, ignored */
    CASE("near names ignored",
         DOC_CB "&kez=1&orderNp=1&downloadUrm=1&downloadUrlExpiredTimf=1"
         "&unzipPasswore=1&dOwnloadUrlExpiredT1me=1&unzip@assword=1",
         QCC_CALLBACK_OK, NULL);

    /* encoding */
    CASE("bad escape in value", cb(KEY, "%4", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ENCODING, "orderNo");
    CASE("bad hex in value", cb(KEY, ORDER, URL_ENC, TIME_ENC, "%g1"),
         QCC_CALLBACK_BAD_ENCODING, "unzipPassword");
    CASE("bad escape in name", DOC_CB "&x%=1", QCC_CALLBACK_BAD_ENCODING,
         NULL);
    CASE("bad escape in key", cb("AppKey12%3", ORDER, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ENCODING, "key");
    CASE("wrong key before a bad escape in another value",
         cb("AppKey124", "%4", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("no key before a bad escape in another value",
         cb(NULL, ORDER, URL_ENC, TIME_ENC, "%zz"),
         QCC_CALLBACK_BAD_KEY, "key");
    CASE("bad escape before a missing argument",
         cb(KEY, "%4", URL_ENC, NULL, PW),
         QCC_CALLBACK_BAD_ENCODING, "orderNo");
    CASE("bad escapes: the first argument in the documents' order",
         "unzipPassword=%g&key=" KEY "&orderNo=%4&downloadUrl=" URL_ENC
         "&downloadUrlExpiredTime=" TIME_ENC,
         QCC_CALLBACK_BAD_ENCODING, "orderNo");
    CASE("a repeated argument before a bad escape",
         "orderNo=%4&" DOC_CB, QCC_CALLBACK_REPEATED, "orderNo");
    CASE("double-encoded orderNo: %2541 is %41, not A",
         cb(KEY, "%2541", URL_ENC, TIME_ENC, PW), QCC_CALLBACK_BAD_ARG,
         "orderNo");
    CASE("double-encoded URL",
         cb(KEY, ORDER, "http%253A%252F%252Fpro-files.qichacha.com%252F",
            TIME_ENC, PW), QCC_CALLBACK_BAD_ARG, "downloadUrl");

    /* orderNo */
    memset(long_order, 'A', 64);
    long_order[64] = '\0';
    CASE("orderNo of 64", cb(KEY, long_order, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_OK, NULL);
    long_order[64] = 'A';
    long_order[65] = '\0';
    CASE("orderNo of 65", cb(KEY, long_order, URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_TOO_LONG, "orderNo");
    CASE("orderNo empty", cb(KEY, "", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");
    CASE("orderNo _-", cb(KEY, "a_b-C9", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_OK, NULL);
    CASE("orderNo space", cb(KEY, "a+b", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");
    CASE("orderNo dot", cb(KEY, "a.b", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");
    CASE("orderNo slash", cb(KEY, "..%2Fetc", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");
    CASE("orderNo NUL", cb(KEY, "A%00", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");
    CASE("orderNo UTF-8", cb(KEY, "%E5%B0%8F", URL_ENC, TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "orderNo");

    /* downloadUrlExpiredTime */
    CASE("time 2021-02-29", cb(KEY, ORDER, URL_ENC, "2021-02-29+00:00:00",
         PW), QCC_CALLBACK_BAD_ARG, "downloadUrlExpiredTime");
    CASE("time T", cb(KEY, ORDER, URL_ENC, "2021-03-16T20:19:00", PW),
         QCC_CALLBACK_BAD_ARG, "downloadUrlExpiredTime");
    CASE("time empty", cb(KEY, ORDER, URL_ENC, "", PW),
         QCC_CALLBACK_BAD_ARG, "downloadUrlExpiredTime");
    CASE("time unix", cb(KEY, ORDER, URL_ENC, "1615897140", PW),
         QCC_CALLBACK_BAD_ARG, "downloadUrlExpiredTime");

    /* unzipPassword */
    memset(long_pw, '~', 128);
    long_pw[128] = '\0';
    CASE("password of 128", cb(KEY, ORDER, URL_ENC, TIME_ENC, long_pw),
         QCC_CALLBACK_OK, NULL);
    long_pw[128] = '~';
    long_pw[129] = '\0';
    CASE("password of 129", cb(KEY, ORDER, URL_ENC, TIME_ENC, long_pw),
         QCC_CALLBACK_TOO_LONG, "unzipPassword");
    CASE("password empty", cb(KEY, ORDER, URL_ENC, TIME_ENC, ""),
         QCC_CALLBACK_BAD_ARG, "unzipPassword");
    CASE("password space", cb(KEY, ORDER, URL_ENC, TIME_ENC, "a+%20b"),
         QCC_CALLBACK_OK, NULL);
    CASE("password %2541", cb(KEY, ORDER, URL_ENC, TIME_ENC, "%2541"),
         QCC_CALLBACK_OK, NULL);
    CASE("password tab", cb(KEY, ORDER, URL_ENC, TIME_ENC, "a%09b"),
         QCC_CALLBACK_BAD_ARG, "unzipPassword");
    CASE("password DEL", cb(KEY, ORDER, URL_ENC, TIME_ENC, "a%7F"),
         QCC_CALLBACK_BAD_ARG, "unzipPassword");
    CASE("password UTF-8", cb(KEY, ORDER, URL_ENC, TIME_ENC, "%C3%A9"),
         QCC_CALLBACK_BAD_ARG, "unzipPassword");

    /* downloadUrl: the four SSRF URLs of the issue */
    CASE("ssrf loopback",
         cb(KEY, ORDER, "http%3A%2F%2F127.0.0.1%2F", TIME_ENC, PW),
         QCC_CALLBACK_HOST_DENIED, "downloadUrl");
    CASE("ssrf metadata",
         cb(KEY, ORDER, "http://169.254.169.254/", TIME_ENC, PW),
         QCC_CALLBACK_HOST_DENIED, "downloadUrl");
    CASE("ssrf userinfo",
         cb(KEY, ORDER, "http%3A%2F%2Fpro-files.qichacha.com%40evil.example"
            "%2F", TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "downloadUrl");
    CASE("ssrf suffix",
         cb(KEY, ORDER, "http://pro-files.qichacha.com.evil.example/",
            TIME_ENC, PW),
         QCC_CALLBACK_HOST_DENIED, "downloadUrl");

    /* 2048 decoded bytes pass, 2049 do not */
    strcpy(long_url, "http://pro-files.qichacha.com/");
    memset(long_url + 30, 'a', 2048 - 30);
    long_url[2048] = '\0';
    CASE("url of 2048", cb(KEY, ORDER, long_url, TIME_ENC, PW),
         QCC_CALLBACK_OK, NULL);

    /* the same, percent-encoded: the bound is on the decoded length */
    strcpy(enc_url, "http%3A%2F%2Fpro-files.qichacha.com%2F");
    memset(enc_url + 38, 'a', 2048 - 30);
    enc_url[38 + 2048 - 30] = '\0';
    CASE("url of 2048 encoded", cb(KEY, ORDER, enc_url, TIME_ENC, PW),
         QCC_CALLBACK_OK, NULL);
    long_url[2048] = 'a';
    long_url[2049] = '\0';
    CASE("url of 2049", cb(KEY, ORDER, long_url, TIME_ENC, PW),
         QCC_CALLBACK_TOO_LONG, "downloadUrl");
    CASE("url empty", cb(KEY, ORDER, "", TIME_ENC, PW),
         QCC_CALLBACK_BAD_ARG, "downloadUrl");

    /* the whole input */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "key=" KEY "&", sizeof("key=" KEY "&") - 1);
    CASE("too large", big, QCC_CALLBACK_TOO_LARGE, NULL);

    for (i = 0; i < n; i++) {
        check_case(&cases[i]);
    }

#undef CASE
}


typedef struct {
    const char  *url;
    int          rc;     /* of qcc_url_host_allowed() */
} url_case_t;


static void
test_urls(void)
{
    int        rc;
    size_t     i;
    qcc_url_t  u;

    static const url_case_t  urls[] = {
        { "http://pro-files.qichacha.com/DdMonitor/x.zip?a=1&b=%2F",
          QCC_URL_OK },
        { "https://pro-files.qichacha.com/x", QCC_URL_OK },
        { "HTTP://PRO-FILES.QICHACHA.COM/x", QCC_URL_OK },
        { "http://pro-files.qichacha.com", QCC_URL_OK },
        { "http://pro-files.qichacha.com?x", QCC_URL_OK },
        { "http://pro-files.qichacha.com:8080/x", QCC_URL_OK },
        { "http://pro-files.qichacha.com/a@b:c", QCC_URL_OK },

        /* the four SSRF URLs */
        { "http://127.0.0.1/", QCC_URL_HOST_DENIED },
        { "http://169.254.169.254/", QCC_URL_HOST_DENIED },
        { "http://pro-files.qichacha.com@evil.example/", QCC_URL_USERINFO },
        { "http://pro-files.qichacha.com.evil.example/",
          QCC_URL_HOST_DENIED },

        /* more tricks */
        { "http://pro-files.qichacha.com./x", QCC_URL_BAD_HOST },
        { "http://.pro-files.qichacha.com/x", QCC_URL_BAD_HOST },
        { "http://pro-files..qichacha.com/x", QCC_URL_BAD_HOST },
        { "http://evil.example/pro-files.qichacha.com", QCC_URL_HOST_DENIED },
        { "http://qichacha.com/", QCC_URL_HOST_DENIED },
        { "http://files.qichacha.com/", QCC_URL_HOST_DENIED },
        { "http://user:pw@pro-files.qichacha.com/", QCC_URL_USERINFO },
        { "http://@pro-files.qichacha.com/", QCC_URL_USERINFO },
        { "http://evil.example\\@pro-files.qichacha.com/",
          QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com\\.evil.example/",
          QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com%2eevil.example/",
          QCC_URL_BAD_HOST },
        { "http://pro-files.qichacha.com%00.evil/", QCC_URL_BAD_HOST },
        { "http://pro-files.qichacha.com /", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/\r\nHost: x", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/x#frag", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/x\x7f", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/\xe5\xb0\x8f", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/<x>", QCC_URL_BAD_CHAR },
        { "http://pro-files.qichacha.com/x%2", QCC_URL_BAD_ESCAPE },
        { "http://pro-files.qichacha.com/x%zz", QCC_URL_BAD_ESCAPE },
        { "http:///x", QCC_URL_BAD_HOST },
        { "http://", QCC_URL_BAD_HOST },
        { "http://:80/", QCC_URL_BAD_HOST },
        { "http://pro-files.qichacha.com:/", QCC_URL_BAD_PORT },
        { "http://pro-files.qichacha.com:0/", QCC_URL_BAD_PORT },
        { "http://pro-files.qichacha.com:65536/", QCC_URL_BAD_PORT },
        { "http://pro-files.qichacha.com:123456/", QCC_URL_BAD_PORT },
        { "http://pro-files.qichacha.com:8a/", QCC_URL_BAD_PORT },
        { "http://pro-files.qichacha.com:80:80/", QCC_URL_BAD_PORT },
        { "ftp://pro-files.qichacha.com/", QCC_URL_BAD_SCHEME },
        { "//pro-files.qichacha.com/", QCC_URL_BAD_SCHEME },
        { "/DdMonitor/x.zip", QCC_URL_BAD_SCHEME },
        { "http:/pro-files.qichacha.com/", QCC_URL_BAD_SCHEME },
        { "httpx://pro-files.qichacha.com/", QCC_URL_BAD_SCHEME },
        { "", QCC_URL_BAD_SCHEME },

        /* IPv6 literals only when listed, with the listed port */
        { "http://[::1]/", QCC_URL_HOST_DENIED },
        { "https://[::1]:8443/x", QCC_URL_OK },
        { "https://[::1]:8444/x", QCC_URL_HOST_DENIED },
        { "http://[::ffff:127.0.0.1]:8443/", QCC_URL_HOST_DENIED },
        { "http://[fe80::1%25eth0]/", QCC_URL_BAD_HOST },
        { "http://[]/", QCC_URL_BAD_HOST },
        { "http://[::1/", QCC_URL_BAD_HOST },
        { "http://[::1]x/", QCC_URL_BAD_HOST },
        { "http://[g::1]/", QCC_URL_BAD_HOST },

        /* a host listed with a port allows only that port */
        { "http://mock.test:8081/x.zip", QCC_URL_OK },
        { "http://MOCK.test:8081/x.zip", QCC_URL_OK },
        { "http://mock.test/x.zip", QCC_URL_HOST_DENIED },
        { "http://mock.test:8082/x.zip", QCC_URL_HOST_DENIED },
    };

    for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        rc = qcc_url_host_allowed((const unsigned char *) urls[i].url,
                                  strlen(urls[i].url), hosts,
                                  sizeof(hosts) / sizeof(hosts[0]));
        if (rc != urls[i].rc) {
            fprintf(stderr, "url \"%s\": %d (%s), expected %d\n",
                    urls[i].url, rc, qcc_url_strerror(rc), urls[i].rc);
        }

        CHECK_INT(rc, urls[i].rc);
    }

    /* no allow-list: nothing passes */
    CHECK_INT(qcc_url_host_allowed((const unsigned char *) "http://a/", 9,
                                   NULL, 0), QCC_URL_HOST_DENIED);

    rc = qcc_url_parse((const unsigned char *)
                       "HTTPS://Pro-Files.qichacha.com:8443/a/b?c=d", 43, &u);
    CHECK_INT(rc, QCC_URL_OK);
    CHECK(u.https);
    CHECK(u.port_explicit);
    CHECK_INT(u.port, 8443);
    CHECK_MEM(u.host, u.host_len, "Pro-Files.qichacha.com", 22);
    CHECK_MEM(u.path, u.path_len, "/a/b?c=d", 8);

    rc = qcc_url_parse((const unsigned char *) "https://h", 9, &u);
    CHECK_INT(rc, QCC_URL_OK);
    CHECK_INT(u.port, 443);
    CHECK(!u.port_explicit);
    CHECK_INT(u.path_len, 0);

    rc = qcc_url_parse((const unsigned char *) "http://[::1]:81?q", 17, &u);
    CHECK_INT(rc, QCC_URL_OK);
    CHECK_MEM(u.host, u.host_len, "[::1]", 5);
    CHECK_INT(u.port, 81);
    CHECK_MEM(u.path, u.path_len, "?q", 2);

    /* allow-list entries */
    CHECK(qcc_url_host_valid((const unsigned char *) "a.b", 3));
    CHECK(qcc_url_host_valid((const unsigned char *) "a.b:1", 5));
    CHECK(qcc_url_host_valid((const unsigned char *) "[::1]", 5));
    CHECK(qcc_url_host_valid((const unsigned char *) "127.0.0.1:65535", 15));
    CHECK(!qcc_url_host_valid((const unsigned char *) "a.b.", 4));
    CHECK(!qcc_url_host_valid((const unsigned char *) "", 0));
    CHECK(!qcc_url_host_valid((const unsigned char *) "a:0", 3));
    CHECK(!qcc_url_host_valid((const unsigned char *) "a/b", 3));
    CHECK(!qcc_url_host_valid((const unsigned char *) "u@a", 3));
    CHECK(!qcc_url_host_valid((const unsigned char *) "[::1", 4));

    CHECK_STR(qcc_url_strerror(QCC_URL_USERINFO), "URL has userinfo");
    CHECK_STR(qcc_url_strerror(-1), "URL invalid");
    CHECK_STR(qcc_url_strerror(99), "URL invalid");
}


typedef struct {
    const char  *in;
    int          rc;
    long long    t;
} time_case_t;


static void
test_times(void)
{
    int     rc;
    size_t  i;
    time_t  t;

    static const time_case_t  times[] = {
        { "2021-03-16 20:19:00", 0, 1615897140 },
        { "1970-01-01 08:00:00", 0, 0 },
        { "1970-01-01 00:00:00", 0, -28800 },
        { "2000-02-29 12:34:56", 0, 951798896 },
        { "2020-02-29 00:00:00", 0, 1582905600 },
        { "2038-01-19 11:14:08", 0, 2147483648LL },
        { "2100-03-01 00:00:00", 0, 4107513600LL },
        { "9999-12-31 23:59:59", 0, 253402271999LL },
        { "2021-02-29 00:00:00", -1, 0 },
        { "2100-02-29 00:00:00", -1, 0 },
        { "2021-04-31 00:00:00", -1, 0 },
        { "2021-00-10 00:00:00", -1, 0 },
        { "2021-13-10 00:00:00", -1, 0 },
        { "2021-03-00 00:00:00", -1, 0 },
        { "2021-03-32 00:00:00", -1, 0 },
        { "2021-03-16 24:00:00", -1, 0 },
        { "2021-03-16 23:60:00", -1, 0 },
        { "2021-03-16 23:59:60", -1, 0 },
        { "1969-12-31 23:59:59", -1, 0 },
        { "2021-3-16 20:19:00", -1, 0 },
        { "2021-03-16 20:19:00 ", -1, 0 },
        { "2021-03-16 20:19", -1, 0 },
        { "2021/03/16 20:19:00", -1, 0 },
        { "2021-03-16\t20:19:00", -1, 0 },
        { "2021-03-16 20-19-00", -1, 0 },
        { "+021-03-16 20:19:00", -1, 0 },
        { "2021-03-1a 20:19:00", -1, 0 },
        { "2021-03-16 2 :19:00", -1, 0 },
        { "", -1, 0 },
    };

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        t = 12345;
        rc = qcc_callback_parse_time((const unsigned char *) times[i].in,
                                     strlen(times[i].in), &t);
        if (rc != times[i].rc) {
            fprintf(stderr, "time \"%s\": %d\n", times[i].in, rc);
        }

        CHECK_INT(rc, times[i].rc);

        if (rc == 0) {
            CHECK_INT(t, times[i].t);
        }
    }
}


static void
test_key_equal(void)
{
    const unsigned char  *k = (const unsigned char *) "secret";

    CHECK(qcc_callback_key_equal(k, 6, k, 6));
    CHECK(!qcc_callback_key_equal((const unsigned char *) "secreT", 6, k, 6));
    CHECK(!qcc_callback_key_equal((const unsigned char *) "secre", 5, k, 6));
    CHECK(!qcc_callback_key_equal((const unsigned char *) "secret\0", 7,
                                  k, 6));
    CHECK(!qcc_callback_key_equal((const unsigned char *) "", 0, k, 6));
    CHECK(!qcc_callback_key_equal(NULL, 0, k, 0));
    CHECK(!qcc_callback_key_equal(k, 6, k, 0));
}


static void
test_flags(void)
{
    qcc_callback_args_t  a;
    qcc_callback_conf_t  save;

    save = conf;

    /* without form decoding, '+' stays '+' */
    conf.flags = 0;
    CHECK_INT(parse(cb(KEY, ORDER, URL_ENC, "2021-03-16+20:19:00", PW), &a),
              QCC_CALLBACK_BAD_ARG);
    CHECK_INT(parse(cb(KEY, ORDER, URL_ENC, TIME_ENC, "a+b"), &a),
              QCC_CALLBACK_OK);
    CHECK_MEM(a.password, a.password_len, "a+b", 3);

    conf.flags = QCC_CALLBACK_PLUS_SPACE;
    CHECK_INT(parse(cb(KEY, ORDER, URL_ENC, TIME_ENC, "a+b%2B"), &a),
              QCC_CALLBACK_OK);
    CHECK_MEM(a.password, a.password_len, "a b+", 4);

    /* no key configured: every callback refused */
    conf.key_len = 0;
    CHECK_INT(parse(DOC_CB, &a), QCC_CALLBACK_BAD_KEY);
    CHECK_INT(parse(cb("", ORDER, URL_ENC, TIME_ENC, PW), &a),
              QCC_CALLBACK_BAD_KEY);

    /* no hosts: every URL refused */
    conf = save;
    conf.nhosts = 0;
    CHECK_INT(parse(DOC_CB, &a), QCC_CALLBACK_HOST_DENIED);

    conf = save;
}


int
main(void)
{
    test_doc_callback();
    test_responses();
    test_password_raw();
    test_cases();
    test_urls();
    test_times();
    test_key_equal();
    test_flags();

    return UNIT_DONE("test_callback");
}
