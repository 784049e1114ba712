/*
 * QCC push callback arguments and download URLs, nginx-free.
 */

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "qcc_callback.h"


#define QCC_CALLBACK_NAME_MAX  24
#define QCC_URL_HOST_MAX       253
#define QCC_URL_V6_MAX         47    /* "[" 45 characters "]" */

enum {
    QCC_CALLBACK_ARG_KEY = 0,
    QCC_CALLBACK_ARG_ORDER_NO,
    QCC_CALLBACK_ARG_URL,
    QCC_CALLBACK_ARG_TIME,
    QCC_CALLBACK_ARG_PASSWORD,
    QCC_CALLBACK_NARGS
};


typedef struct {
    const char  *name;
    size_t       len;
    const char  *repeated;
    const char  *missing;
    const char  *encoding;
} qcc_callback_arg_t;


typedef struct {
    const unsigned char  *data;
    size_t                len;
    unsigned              seen;
} qcc_callback_val_t;


#define qcc_callback_arg(name)                                               \
    { name, sizeof(name) - 1, "argument " name " repeated",                  \
      "argument " name " missing", "argument " name " badly encoded" }

static const qcc_callback_arg_t  qcc_callback_args[QCC_CALLBACK_NARGS] = {
    qcc_callback_arg("key"),
    qcc_callback_arg("orderNo"),
    qcc_callback_arg("downloadUrl"),
    qcc_callback_arg("downloadUrlExpiredTime"),
    qcc_callback_arg("unzipPassword")
};


/* indexed by qcc_url_rc_e */
static const char  *qcc_url_errors[] = {
    "URL ok",
    "URL too long",
    "URL has a forbidden character",
    "URL is not absolute http or https",
    "URL has userinfo",
    "URL has a bad host",
    "URL has a bad port",
    "URL has a bad percent-escape",
    "URL host not allowed"
};

static const char  *qcc_callback_url_errors[] = {
    "ok",
    "downloadUrl too long",
    "downloadUrl has a forbidden character",
    "downloadUrl is not absolute http or https",
    "downloadUrl has userinfo",
    "downloadUrl has a bad host",
    "downloadUrl has a bad port",
    "downloadUrl has a bad percent-escape",
    "downloadUrl host not allowed"
};


/* the value of a hex digit, or -1: one load instead of three compares */
static const signed char  qcc_callback_hexval[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
};


/*
 * The bytes unescape() does more with than copy: '%' (1) always, and '+'
 * (2) where it stands for a space.
 */
static const unsigned char  qcc_callback_special[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


static int
qcc_callback_hex(unsigned char c)
{
    return qcc_callback_hexval[c];
}


/*
 * Decodes src once into dst (room for len bytes), or only checks the
 * escapes if dst is NULL.  Returns the decoded length, or -1 on a
 * malformed escape.
 */
static long
qcc_callback_unescape(const unsigned char *src, size_t len,
    unsigned char *dst, unsigned flags)
{
    int                   hi, lo;
    unsigned char         c, *d, mask;
    const unsigned char  *p, *end;

    p = src;
    end = src + len;
    d = dst;

    if (dst == NULL) {
        for ( /* void */ ; p < end; p++) {
            if (*p != '%') {
                continue;
            }

            if (end - p < 3 || qcc_callback_hexval[p[1]] < 0
                || qcc_callback_hexval[p[2]] < 0)
            {
                return -1;
            }

            len -= 2;
            p += 2;
        }

        return (long) len;
    }

    /* a byte is copied as it is, unless the table says '%' or '+' */
    mask = (flags & QCC_CALLBACK_PLUS_SPACE) ? 3 : 1;

    while (p < end) {
        c = *p++;

        if (qcc_callback_special[c] & mask) {
            if (c == '+') {
                c = ' ';

            } else {
                if (end - p < 2) {
                    return -1;
                }

                hi = qcc_callback_hexval[p[0]];
                lo = qcc_callback_hexval[p[1]];

                if ((hi | lo) < 0) {
                    return -1;
                }

                c = (unsigned char) (hi << 4 | lo);
                p += 2;
            }
        }

        *d++ = c;
    }

    return (long) (d - dst);
}


/*
 * The known names are letters only, so "| 0x20" on every byte folds case
 * exactly; here eight bytes at a time.
 */

static int
qcc_callback_fold8_equal(const unsigned char *a, const char *b)
{
    uint64_t        x, y;
    const uint64_t  fold = 0x2020202020202020ULL;

    memcpy(&x, a, 8);
    memcpy(&y, b, 8);

    return (x | fold) == (y | fold);
}


static int
qcc_callback_name_equal(const unsigned char *a, const char *b, size_t len)
{
    size_t  i;

    if (len < 8) {
        for (i = 0; i < len; i++) {
            if ((a[i] | 0x20) != (b[i] | 0x20)) {
                return 0;
            }
        }

        return 1;
    }

    /* the last eight bytes, overlapping the block before them if need be */

    for (i = 0; i + 8 < len; i += 8) {
        if (!qcc_callback_fold8_equal(a + i, b + i)) {
            return 0;
        }
    }

    return qcc_callback_fold8_equal(a + len - 8, b + len - 8);
}


/* The known names differ in length: the length picks the one to compare. */

static int
qcc_callback_find_arg(const unsigned char *name, size_t len)
{
    int  k;

    switch (len) {

    case sizeof("key") - 1:
        k = QCC_CALLBACK_ARG_KEY;
        break;

    case sizeof("orderNo") - 1:
        k = QCC_CALLBACK_ARG_ORDER_NO;
        break;

    case sizeof("downloadUrl") - 1:
        k = QCC_CALLBACK_ARG_URL;
        break;

    case sizeof("downloadUrlExpiredTime") - 1:
        k = QCC_CALLBACK_ARG_TIME;
        break;

    case sizeof("unzipPassword") - 1:
        k = QCC_CALLBACK_ARG_PASSWORD;
        break;

    default:
        return -1;
    }

    return qcc_callback_name_equal(name, qcc_callback_args[k].name, len)
           ? k : -1;
}


int
qcc_callback_key_equal(const unsigned char *got, size_t got_len,
    const unsigned char *want, size_t want_len)
{
    size_t                  i;
    volatile unsigned char  diff;

    /* runs over want: its length, not the guess, sets the time */
    diff = (got_len != want_len);

    for (i = 0; i < want_len; i++) {
        diff |= want[i] ^ (i < got_len ? got[i] : 0);
    }

    return want_len != 0 && diff == 0;
}


int
qcc_callback_check_order_no(const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > QCC_CALLBACK_ORDER_NO_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return -1;
        }
    }

    return 0;
}


int
qcc_callback_check_password(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > QCC_CALLBACK_PASSWORD_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e) {
            return -1;
        }
    }

    return 0;
}


/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
qcc_callback_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


static int
qcc_callback_digits(const unsigned char *p, size_t n)
{
    int     v;
    size_t  i;

    v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    return v;
}


int
qcc_callback_parse_time(const unsigned char *p, size_t len, time_t *out)
{
    int  y, mo, d, h, mi, s, mdays;

    static const unsigned char  mlen[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (len != QCC_CALLBACK_TIME_LEN
        || p[4] != '-' || p[7] != '-' || p[10] != ' '
        || p[13] != ':' || p[16] != ':')
    {
        return -1;
    }

    y = qcc_callback_digits(p, 4);
    mo = qcc_callback_digits(p + 5, 2);
    d = qcc_callback_digits(p + 8, 2);
    h = qcc_callback_digits(p + 11, 2);
    mi = qcc_callback_digits(p + 14, 2);
    s = qcc_callback_digits(p + 17, 2);

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23
        || mi < 0 || mi > 59 || s < 0 || s > 59)
    {
        return -1;
    }

    mdays = mlen[mo - 1];

    if (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
        mdays = 29;
    }

    if (d > mdays) {
        return -1;
    }

    *out = (time_t) (qcc_callback_days_from_civil(y, mo, d) * 86400
                     + h * 3600 + mi * 60 + s - QCC_CALLBACK_TZ_OFFSET);

    return 0;
}


/* --- URLs ---------------------------------------------------------------- */


static int
qcc_url_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9');
}


/*
 * Classes of URL bytes, one load per byte: QCC_URL_BAD, never fine
 * anywhere (control, space, non-ASCII, '\\', '#'); QCC_URL_PATH, RFC 3986
 * pchar, '/' and '?' (unreserved, sub-delims, ':', '@', '%'); QCC_URL_PCT,
 * '%'.  So a byte of a path that needs no second look is QCC_URL_PATH
 * alone.
 */
#define QCC_URL_BAD   1
#define QCC_URL_PATH  2
#define QCC_URL_PCT   4

static const unsigned char  qcc_url_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 2, 0, 1, 2, 6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 0, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 1, 0, 0, 2,
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};


/*
 * host[:port] or [v6][:port]; host and port out.  The port stays 0 if
 * absent.  Returns a qcc_url_rc_e.
 */
static int
qcc_url_parse_authority(const unsigned char *p, size_t len,
    const unsigned char **host, size_t *host_len, unsigned *port)
{
    size_t         i, n, label, colons;
    unsigned       v;
    unsigned char  c;

    *port = 0;

    if (len == 0) {
        return QCC_URL_BAD_HOST;
    }

    if (p[0] == '[') {
        colons = 0;

        for (n = 1; n < len && p[n] != ']'; n++) {
            c = p[n];

            if (c == ':') {
                colons++;

            } else if (c != '.' && qcc_callback_hex(c) < 0) {
                return QCC_URL_BAD_HOST;
            }
        }

        if (n == len || n == 1 || n + 1 > QCC_URL_V6_MAX || colons < 2) {
            return QCC_URL_BAD_HOST;
        }

        n++;   /* the ']' */

    } else {
        label = 0;

        for (n = 0; n < len && p[n] != ':'; n++) {
            c = p[n];

            if (c == '.') {
                /* no empty label: no leading, double or trailing dot */
                if (label == 0) {
                    return QCC_URL_BAD_HOST;
                }

                label = 0;
                continue;
            }

            if (!qcc_url_alnum(c) && c != '-' && c != '_') {
                return QCC_URL_BAD_HOST;
            }

            label++;
        }

        if (n == 0 || label == 0 || n > QCC_URL_HOST_MAX) {
            return QCC_URL_BAD_HOST;
        }
    }

    *host = p;
    *host_len = n;

    if (n == len) {
        return QCC_URL_OK;
    }

    if (p[n] != ':') {
        return QCC_URL_BAD_HOST;
    }

    n++;

    if (n == len || len - n > 5) {
        return QCC_URL_BAD_PORT;
    }

    v = 0;

    for (i = n; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return QCC_URL_BAD_PORT;
        }

        v = v * 10 + (p[i] - '0');
    }

    if (v == 0 || v > 65535) {
        return QCC_URL_BAD_PORT;
    }

    *port = v;

    return QCC_URL_OK;
}


int
qcc_url_parse(const unsigned char *url, size_t len, qcc_url_t *u)
{
    int                   rc;
    size_t                i, n;
    unsigned              port;
    unsigned char         c;
    const unsigned char  *p, *end, *auth;

    memset(u, 0, sizeof(qcc_url_t));

    if (len > QCC_CALLBACK_URL_MAX) {
        return QCC_URL_TOO_LONG;
    }

    /* one pass for the bytes that are never fine anywhere */
    for (i = 0; i < len; i++) {
        if (qcc_url_class[url[i]] & QCC_URL_BAD) {
            return QCC_URL_BAD_CHAR;
        }
    }

    end = url + len;

    if (len >= 7 && strncasecmp((const char *) url, "http://", 7) == 0) {
        p = url + 7;

    } else if (len >= 8
               && strncasecmp((const char *) url, "https://", 8) == 0)
    {
        p = url + 8;
        u->https = 1;

    } else {
        return QCC_URL_BAD_SCHEME;
    }

    auth = p;

    while (p < end && *p != '/' && *p != '?') {
        if (*p == '@') {
            return QCC_URL_USERINFO;
        }

        p++;
    }

    rc = qcc_url_parse_authority(auth, p - auth, &u->host, &u->host_len,
                                 &port);
    if (rc != QCC_URL_OK) {
        return rc;
    }

    u->port_explicit = (port != 0);
    u->port = port ? port : (u->https ? 443 : 80);

    u->path = p;
    u->path_len = end - p;

    n = u->path_len;

    for (i = 0; i < n; i++) {
        c = p[i];

        if (qcc_url_class[c] == QCC_URL_PATH) {
            continue;
        }

        if (!(qcc_url_class[c] & QCC_URL_PATH)) {
            return QCC_URL_BAD_CHAR;
        }

        if (c == '%') {
            if (n - i < 3 || qcc_callback_hex(p[i + 1]) < 0
                || qcc_callback_hex(p[i + 2]) < 0)
            {
                return QCC_URL_BAD_ESCAPE;
            }

            i += 2;
        }
    }

    return QCC_URL_OK;
}


int
qcc_url_host_valid(const unsigned char *host, size_t len)
{
    size_t                hl;
    unsigned              port;
    const unsigned char  *h;

    return qcc_url_parse_authority(host, len, &h, &hl, &port) == QCC_URL_OK;
}


int
qcc_url_host_match(const qcc_url_t *u, const qcc_url_host_t *hosts,
    size_t nhosts)
{
    size_t                k, hl;
    unsigned              port;
    const unsigned char  *h;

    for (k = 0; k < nhosts; k++) {

        /* a plain name (valid, as the directive checked): itself, any port */
        if (hosts[k].len == u->host_len && hosts[k].data[0] != '['
            && memchr(hosts[k].data, ':', hosts[k].len) == NULL)
        {
            if (strncasecmp((const char *) hosts[k].data,
                            (const char *) u->host, u->host_len)
                == 0)
            {
                return QCC_URL_OK;
            }

            continue;
        }

        if (qcc_url_parse_authority(hosts[k].data, hosts[k].len, &h, &hl,
                                    &port)
            != QCC_URL_OK)
        {
            continue;
        }

        if (hl == u->host_len
            && strncasecmp((const char *) h, (const char *) u->host, hl)
               == 0
            && (port == 0 || port == u->port))
        {
            return QCC_URL_OK;
        }
    }

    return QCC_URL_HOST_DENIED;
}


int
qcc_url_host_allowed(const unsigned char *url, size_t len,
    const qcc_url_host_t *hosts, size_t nhosts)
{
    int        rc;
    qcc_url_t  u;

    rc = qcc_url_parse(url, len, &u);
    if (rc != QCC_URL_OK) {
        return rc;
    }

    return qcc_url_host_match(&u, hosts, nhosts);
}


const char *
qcc_url_strerror(int rc)
{
    if (rc < 0 || (size_t) rc >= sizeof(qcc_url_errors) / sizeof(char *)) {
        return "URL invalid";
    }

    return qcc_url_errors[rc];
}


/* --- the callback -------------------------------------------------------- */


static int
qcc_callback_fail(qcc_callback_args_t *out, int rc, int arg,
    const char *reason)
{
    out->arg = (arg >= 0) ? qcc_callback_args[arg].name : NULL;
    out->reason = reason;

    return rc;
}


int
qcc_callback_parse(const unsigned char *in, size_t len,
    const qcc_callback_conf_t *conf, unsigned char *scratch,
    size_t scratch_size, qcc_callback_args_t *out)
{
    int                   k, key_ok, rc;
    long                  n;
    size_t                name_len;
    unsigned char        *p, name[3 * QCC_CALLBACK_NAME_MAX];
    const unsigned char  *arg, *end, *amp, *eq;
    qcc_callback_val_t    v[QCC_CALLBACK_NARGS];

    memset(out, 0, sizeof(qcc_callback_args_t));
    memset(v, 0, sizeof(v));

    if (len > QCC_CALLBACK_MAX_INPUT || len > scratch_size) {
        return qcc_callback_fail(out, QCC_CALLBACK_TOO_LARGE, -1,
                                 "request too large");
    }

    end = in + len;

    /*
     * Splitting finds the known arguments and keeps their raw values;
     * values are decoded only below, the key's first, so that a wrong
     * key costs no more than decoding the key.
     */

    for (arg = in; arg < end; arg = amp + 1) {
        amp = memchr(arg, '&', end - arg);
        if (amp == NULL) {
            amp = end;
        }

        if (amp == arg) {
            continue;   /* "a=1&&b=2" */
        }

        eq = memchr(arg, '=', amp - arg);
        name_len = (eq ? eq : amp) - arg;

        /*
         * As it is first: a known name is letters only, so one that
         * matches has nothing to decode ('+' would be a space, in no
         * known name), and one with a '%' does not match.
         */
        k = qcc_callback_find_arg(arg, name_len);

        if (k < 0 && memchr(arg, '%', name_len) != NULL) {
            /* a longer name cannot decode to a known one: only checked */
            n = qcc_callback_unescape(arg, name_len,
                                      name_len <= sizeof(name) ? name : NULL,
                                      conf->flags);
            if (n < 0) {
                return qcc_callback_fail(out, QCC_CALLBACK_BAD_ENCODING, -1,
                                         "argument name badly encoded");
            }

            k = (name_len <= sizeof(name)) ? qcc_callback_find_arg(name, n)
                                           : -1;
        }

        if (k < 0) {
            continue;
        }

        if (v[k].seen) {
            return qcc_callback_fail(out, QCC_CALLBACK_REPEATED, k,
                                     qcc_callback_args[k].repeated);
        }

        v[k].seen = 1;

        /* the raw value for now: "name" alone is an empty value */
        v[k].data = eq ? eq + 1 : amp;
        v[k].len = eq ? (size_t) (amp - eq - 1) : 0;
    }

    /* every argument seen: where the password is, for the caller to mask */

    out->split = 1;

    k = QCC_CALLBACK_ARG_PASSWORD;

    if (v[k].seen) {
        out->password_raw = v[k].data;
        out->password_raw_len = v[k].len;
    }

    /* the key before anything about the other values */

    p = scratch;
    k = QCC_CALLBACK_ARG_KEY;

    if (!v[k].seen) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_KEY, k,
                                 qcc_callback_args[k].missing);
    }

    n = qcc_callback_unescape(v[k].data, v[k].len, p, conf->flags);
    if (n < 0) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_ENCODING, k,
                                 qcc_callback_args[k].encoding);
    }

    key_ok = qcc_callback_key_equal(p, n, conf->key, conf->key_len);

    OPENSSL_cleanse(p, n);

    if (!key_ok) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_KEY, k,
                                 "key invalid");
    }

    /* each other value decoded once, into scratch */

    for (k = QCC_CALLBACK_ARG_ORDER_NO; k < QCC_CALLBACK_NARGS; k++) {
        if (!v[k].seen) {
            continue;
        }

        n = qcc_callback_unescape(v[k].data, v[k].len, p, conf->flags);
        if (n < 0) {
            return qcc_callback_fail(out, QCC_CALLBACK_BAD_ENCODING, k,
                                     qcc_callback_args[k].encoding);
        }

        v[k].data = p;
        v[k].len = n;
        p += n;
    }

    for (k = QCC_CALLBACK_ARG_ORDER_NO; k < QCC_CALLBACK_NARGS; k++) {
        if (!v[k].seen) {
            return qcc_callback_fail(out, QCC_CALLBACK_MISSING, k,
                                     qcc_callback_args[k].missing);
        }
    }

    k = QCC_CALLBACK_ARG_ORDER_NO;

    if (v[k].len > QCC_CALLBACK_ORDER_NO_MAX) {
        return qcc_callback_fail(out, QCC_CALLBACK_TOO_LONG, k,
                                 "orderNo too long");
    }

    if (qcc_callback_check_order_no(v[k].data, v[k].len) != 0) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_ARG, k,
                                 "orderNo must be 1 to 64 of A-Z a-z 0-9 _ -");
    }

    k = QCC_CALLBACK_ARG_URL;

    if (v[k].len == 0) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_ARG, k,
                                 "downloadUrl empty");
    }

    rc = qcc_url_parse(v[k].data, v[k].len, &out->parsed);

    if (rc == QCC_URL_OK) {
        rc = qcc_url_host_match(&out->parsed, conf->hosts, conf->nhosts);
    }

    if (rc != QCC_URL_OK) {
        return qcc_callback_fail(out,
                                 rc == QCC_URL_TOO_LONG
                                 ? QCC_CALLBACK_TOO_LONG
                                 : rc == QCC_URL_HOST_DENIED
                                   ? QCC_CALLBACK_HOST_DENIED
                                   : QCC_CALLBACK_BAD_ARG,
                                 k, qcc_callback_url_errors[rc]);
    }

    k = QCC_CALLBACK_ARG_TIME;

    if (qcc_callback_parse_time(v[k].data, v[k].len, &out->expires) != 0) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_ARG, k,
                  "downloadUrlExpiredTime must be YYYY-MM-DD HH:MM:SS");
    }

    k = QCC_CALLBACK_ARG_PASSWORD;

    if (v[k].len > QCC_CALLBACK_PASSWORD_MAX) {
        return qcc_callback_fail(out, QCC_CALLBACK_TOO_LONG, k,
                                 "unzipPassword too long");
    }

    if (qcc_callback_check_password(v[k].data, v[k].len) != 0) {
        return qcc_callback_fail(out, QCC_CALLBACK_BAD_ARG, k,
                       "unzipPassword must be 1 to 128 printable ASCII");
    }

    out->order_no = v[QCC_CALLBACK_ARG_ORDER_NO].data;
    out->order_no_len = v[QCC_CALLBACK_ARG_ORDER_NO].len;
    out->url = v[QCC_CALLBACK_ARG_URL].data;
    out->url_len = v[QCC_CALLBACK_ARG_URL].len;
    out->password = v[QCC_CALLBACK_ARG_PASSWORD].data;
    out->password_len = v[QCC_CALLBACK_ARG_PASSWORD].len;

    return QCC_CALLBACK_OK;
}


int
qcc_callback_http_status(int rc)
{
    switch (rc) {

    case QCC_CALLBACK_OK:
        return 200;

    case QCC_CALLBACK_BAD_KEY:
        return 403;

    case QCC_CALLBACK_TOO_LARGE:
        return 414;

    default:
        return 400;
    }
}


const char *
qcc_callback_status(int rc)
{
    switch (qcc_callback_http_status(rc)) {

    case 200:
        return "200";

    case 403:
        return "403";

    case 414:
        return "414";

    default:
        return "400";
    }
}


size_t
qcc_callback_response(int rc, const qcc_callback_args_t *a,
    unsigned char *buf, size_t size)
{
    size_t       n, sl, rl;
    const char  *status, *reason;

    if (rc == QCC_CALLBACK_OK) {
        n = sizeof(QCC_CALLBACK_OK_BODY) - 1;

        if (n > size) {
            return 0;
        }

        memcpy(buf, QCC_CALLBACK_OK_BODY, n);
        return n;
    }

    status = qcc_callback_status(rc);
    reason = (a && a->reason) ? a->reason : "bad request";

    sl = strlen(status);
    rl = strlen(reason);

    /* {"status":"", "msg":"" "} */
    n = sizeof("{\"status\":\"\",\"msg\":\"\"}") - 1 + sl + rl;

    if (n > size) {
        return 0;
    }

    memcpy(buf, "{\"status\":\"", 11);
    memcpy(buf + 11, status, sl);
    memcpy(buf + 11 + sl, "\",\"msg\":\"", 9);
    memcpy(buf + 20 + sl, reason, rl);
    memcpy(buf + 20 + sl + rl, "\"}", 2);

    return n;
}
