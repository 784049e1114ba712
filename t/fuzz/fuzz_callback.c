/*
 * libFuzzer target of the callback validator and the URL checks
 * (qcc_callback.c): any input is a query string, parsed with and without
 * form decoding, and the invariants below must hold.  A valid input,
 * re-encoded, must parse again to the same values (round trip).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_callback.h"


#define KEY  "AppKey123"

#define need(cond)  do { if (!(cond)) abort(); } while (0)


static const qcc_url_host_t  hosts[] = {
    { 22, (const unsigned char *) "pro-files.qichacha.com" },
    { 10, (const unsigned char *) "[::1]:8443" },
    { 14, (const unsigned char *) "mock.test:8081" }
};


static size_t
escape(unsigned char *out, const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char *o;

    static const char  hex[] = "0123456789ABCDEF";

    o = out;

    for (i = 0; i < len; i++) {
        *o++ = '%';
        *o++ = hex[p[i] >> 4];
        *o++ = hex[p[i] & 0xf];
    }

    return o - out;
}


static void
check_ok(const qcc_callback_args_t *a, const unsigned char *scratch,
    size_t size, const qcc_callback_conf_t *conf)
{
    time_t          t;
    size_t          n;
    unsigned char  *in, *p, *scratch2;
    qcc_url_t       u;
    qcc_callback_args_t  b;

    /* values inside scratch, within their bounds, valid on their own */
    need(a->order_no >= scratch
         && a->order_no + a->order_no_len <= scratch + size);
    need(a->url >= scratch && a->url + a->url_len <= scratch + size);
    need(a->password >= scratch
         && a->password + a->password_len <= scratch + size);

    need(qcc_callback_check_order_no(a->order_no, a->order_no_len) == 0);
    need(qcc_callback_check_password(a->password, a->password_len) == 0);
    need(a->url_len <= QCC_CALLBACK_URL_MAX);
    need(qcc_url_parse(a->url, a->url_len, &u) == QCC_URL_OK);
    need(qcc_url_host_match(&u, hosts, 3) == QCC_URL_OK);
    need(qcc_url_host_allowed(a->url, a->url_len, hosts, 3) == QCC_URL_OK);
    need(u.host_len > 0 && u.port >= 1 && u.port <= 65535);
    need(memchr(a->url, '@', u.path - a->url) == NULL);

    /* round trip: every value escaped, in another order */
    n = 3 * (a->order_no_len + a->url_len + a->password_len + 64) + 256;
    in = malloc(n);
    scratch2 = malloc(n);
    need(in && scratch2);

    p = in;
    memcpy(p, "unzipPassword=", 14);
    p += 14;
    p += escape(p, a->password, a->password_len);
    memcpy(p, "&downloadUrl=", 13);
    p += 13;
    p += escape(p, a->url, a->url_len);
    memcpy(p, "&downloadUrlExpiredTime=", 24);
    p += 24;

    /* the time back from expires, as QCC would write it */
    {
        int64_t  s, days, y, m, d, era, doe, yoe, doy, mp;
        char     tb[32];

        s = (int64_t) a->expires + QCC_CALLBACK_TZ_OFFSET;
        days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
        s -= days * 86400;

        days += 719468;
        era = (days >= 0 ? days : days - 146096) / 146097;
        doe = days - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        m = mp < 10 ? mp + 3 : mp - 9;
        y += (m <= 2);

        snprintf(tb, sizeof(tb), "%04d-%02d-%02d %02d:%02d:%02d", (int) y,
                 (int) m, (int) d, (int) (s / 3600), (int) (s / 60 % 60),
                 (int) (s % 60));
        need(strlen(tb) == QCC_CALLBACK_TIME_LEN);
        need(qcc_callback_parse_time((unsigned char *) tb, 19, &t) == 0);
        need(t == a->expires);

        p += escape(p, (unsigned char *) tb, 19);
    }

    memcpy(p, "&orderNo=", 9);
    p += 9;
    p += escape(p, a->order_no, a->order_no_len);
    memcpy(p, "&key=" KEY, 5 + sizeof(KEY) - 1);
    p += 5 + sizeof(KEY) - 1;

    need(qcc_callback_parse(in, p - in, conf, scratch2, n, &b)
         == QCC_CALLBACK_OK);
    need(b.order_no_len == a->order_no_len
         && memcmp(b.order_no, a->order_no, a->order_no_len) == 0);
    need(b.url_len == a->url_len && memcmp(b.url, a->url, a->url_len) == 0);
    need(b.password_len == a->password_len
         && memcmp(b.password, a->password, a->password_len) == 0);
    need(b.expires == a->expires);

    free(in);
    free(scratch2);
}


/* Masked where the parser says, the input gives the password as '*'s. */
static void
check_masked(const unsigned char *data, size_t size,
    const qcc_callback_args_t *a, const qcc_callback_conf_t *conf)
{
    size_t               i, off;
    unsigned char       *in, *scratch;
    qcc_callback_args_t  b;

    in = malloc(size ? size : 1);
    scratch = malloc(size ? size : 1);
    need(in && scratch);

    memcpy(in, data, size);
    off = a->password_raw - data;
    memset(in + off, '*', a->password_raw_len);

    /* the raw value may be longer than the decoded one may */
    if (a->password_raw_len > QCC_CALLBACK_PASSWORD_MAX) {
        need(qcc_callback_parse(in, size, conf, scratch, size, &b)
             == QCC_CALLBACK_TOO_LONG);
        need(strcmp(b.arg, "unzipPassword") == 0);
        free(in);
        free(scratch);
        return;
    }

    need(qcc_callback_parse(in, size, conf, scratch, size, &b)
         == QCC_CALLBACK_OK);
    need(b.password_len == a->password_raw_len);

    for (i = 0; i < b.password_len; i++) {
        need(b.password[i] == '*');
    }

    need(b.order_no_len == a->order_no_len
         && memcmp(b.order_no, a->order_no, a->order_no_len) == 0);

    free(in);
    free(scratch);
}


static void
check(const unsigned char *data, size_t size, unsigned flags)
{
    int                   rc, status, k;
    size_t                n;
    unsigned char        *scratch, body[QCC_CALLBACK_RESPONSE_MAX];
    qcc_callback_conf_t   conf;
    qcc_callback_args_t   a;

    static const char  *names[] = {
        "key", "orderNo", "downloadUrl", "downloadUrlExpiredTime",
        "unzipPassword"
    };

    conf.key = (const unsigned char *) KEY;
    conf.key_len = sizeof(KEY) - 1;
    conf.hosts = hosts;
    conf.nhosts = 3;
    conf.flags = flags;

    /* exactly the input's length: ASan sees any write past it */
    scratch = malloc(size ? size : 1);
    need(scratch);

    rc = qcc_callback_parse(data, size, &conf, scratch, size, &a);

    need(rc >= QCC_CALLBACK_OK && rc <= QCC_CALLBACK_TOO_LARGE);

    status = qcc_callback_http_status(rc);
    need(status == 200 || status == 400 || status == 403 || status == 414);
    need((rc == QCC_CALLBACK_OK) == (status == 200));
    need((rc == QCC_CALLBACK_BAD_KEY) == (status == 403));

    n = qcc_callback_response(rc, &a, body, sizeof(body));
    need(n > 0 && n <= sizeof(body) && body[0] == '{' && body[n - 1] == '}');

    /* after splitting, the password's raw value is where it says */
    need(a.split || a.password_raw == NULL);
    need(a.split == (rc != QCC_CALLBACK_TOO_LARGE
                     && rc != QCC_CALLBACK_REPEATED
                     && !(rc == QCC_CALLBACK_BAD_ENCODING && a.arg == NULL)));

    if (a.password_raw) {
        need(a.password_raw >= data
             && a.password_raw + a.password_raw_len <= data + size);
    }

    if (rc == QCC_CALLBACK_OK) {
        need(a.arg == NULL);
        need(a.split && a.password_raw != NULL);
        check_ok(&a, scratch, size, &conf);
        check_masked(data, size, &a, &conf);

    } else {
        need(a.reason != NULL);
        need(strchr(a.reason, '"') == NULL && strchr(a.reason, '\\') == NULL);
        need(memchr(body + 11, '\\', n - 11) == NULL);

        if (a.arg) {
            for (k = 0; k < 5; k++) {
                if (strcmp(a.arg, names[k]) == 0) {
                    break;
                }
            }

            need(k < 5);
        }
    }

    free(scratch);
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int        rc;
    time_t     t;
    qcc_url_t  u;

    check(data, size, 0);
    check(data, size, QCC_CALLBACK_PLUS_SPACE);

    /* the input as a URL, an allow-list entry and a time */
    rc = qcc_url_parse(data, size, &u);

    if (rc == QCC_URL_OK) {
        need(size <= QCC_CALLBACK_URL_MAX);
        need(u.host >= data && u.host + u.host_len <= data + size);
        need(u.path >= data && u.path + u.path_len == data + size);
        need(memchr(data, '@', u.path - data) == NULL);
        need(memchr(data, '\\', size) == NULL);
        need(u.port >= 1 && u.port <= 65535);

        rc = qcc_url_host_match(&u, hosts, 3);
        need(rc == QCC_URL_OK || rc == QCC_URL_HOST_DENIED);
    }

    need(qcc_url_strerror(rc) != NULL);

    (void) qcc_url_host_valid(data, size);

    if (qcc_callback_parse_time(data, size, &t) == 0) {
        need(size == QCC_CALLBACK_TIME_LEN);
        need(t >= -QCC_CALLBACK_TZ_OFFSET && t <= 253402271999LL);
    }

    return 0;
}
