/*
 * Edge guardrails of QCC calls, nginx-free.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "qcc_guard.h"
#include "qcc_callback.h"


typedef struct {
    const char  *dir;
    const char  *name;
    int          api;
} qcc_guard_call_t;


static const qcc_guard_call_t  qcc_guard_calls[] = {
    { "radar_ext", "batchAddRadarCompanyListToExistedUser",
      QCC_GUARD_API_BATCH_KEYWORDS },
    { "radar_ext", "batchCancelRadarCompanyListFromExistedUser",
      QCC_GUARD_API_BATCH_KEYWORDS },
    { "radar_ext", "batchAddRadarCompanyToExistedUserList",
      QCC_GUARD_API_BATCH_LOGINS },
    { "radar_ext", "batchCancelRadarCompanyFromExistedUserList",
      QCC_GUARD_API_BATCH_LOGINS },
    { "dd_corp_monitor", "getShiXinList", QCC_GUARD_API_SHIXIN },
    { NULL, NULL, QCC_GUARD_API_OTHER }
};


static const char  *qcc_guard_files_errors[] = {
    "ok",
    "the files route needs http or https as its first segment",
    "the files route needs a host as its second segment",
    "the download URL is too long"
};


/* the decoded names of credentials the files route drops */
static const char  *qcc_guard_credentials[] = { "key", "token", "timespan",
                                                NULL };


static int
qcc_guard_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * One decoded character at p[*i] (advancing *i), as ASP.NET's UrlDecode
 * reads it: "%XX", "%uXXXX" (a code point; only whether it is an ASCII
 * character matters here, others give 0x100), '+' as a space; a
 * malformed escape stays as it is.
 */
static unsigned
qcc_guard_decode_char(const unsigned char *p, size_t len, size_t *i)
{
    int     h1, h2, h3, h4;
    size_t  k;

    k = *i;

    if (p[k] == '+') {
        *i = k + 1;
        return ' ';
    }

    if (p[k] != '%') {
        *i = k + 1;
        return p[k];
    }

    if (k + 5 < len && (p[k + 1] | 0x20) == 'u') {
        h1 = qcc_guard_hex(p[k + 2]);
        h2 = qcc_guard_hex(p[k + 3]);
        h3 = qcc_guard_hex(p[k + 4]);
        h4 = qcc_guard_hex(p[k + 5]);

        if (h1 >= 0 && h2 >= 0 && h3 >= 0 && h4 >= 0) {
            *i = k + 6;
            return (h1 || h2) ? 0x100 : (unsigned) (h3 << 4 | h4);
        }
    }

    if (k + 2 < len) {
        h1 = qcc_guard_hex(p[k + 1]);
        h2 = qcc_guard_hex(p[k + 2]);

        if (h1 >= 0 && h2 >= 0) {
            *i = k + 3;
            return (unsigned) (h1 << 4 | h2);
        }
    }

    *i = k + 1;
    return '%';
}


/* Whether the raw name p[0..len) decodes to name, without regard to case. */
static int
qcc_guard_name_is(const unsigned char *p, size_t len, const char *name)
{
    size_t    i, n;
    unsigned  c;

    i = 0;
    n = 0;

    while (i < len) {
        c = qcc_guard_decode_char(p, len, &i);

        if (name[n] == '\0') {
            return 0;
        }

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != ((unsigned char) name[n] | (name[n] >= 'A' && name[n] <= 'Z'
                                             ? 0x20 : 0)))
        {
            return 0;
        }

        n++;
    }

    return name[n] == '\0';
}


/*
 * Calls fn(name, name_len, value, value_len, data) for each argument of
 * a raw query string; the value is NULL for an argument without '='.
 */
typedef void (*qcc_guard_arg_pt)(const unsigned char *name, size_t name_len,
    const unsigned char *value, size_t value_len, void *data);

static void
qcc_guard_each_arg(const unsigned char *args, size_t len,
    qcc_guard_arg_pt fn, void *data)
{
    const unsigned char  *p, *end, *amp, *eq;

    p = args;
    end = args + len;

    while (p < end) {
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);

        if (eq) {
            fn(p, eq - p, eq + 1, amp - eq - 1, data);

        } else {
            fn(p, amp - p, NULL, 0, data);
        }

        p = amp + 1;
    }
}


int
qcc_guard_classify(const unsigned char *path, size_t len)
{
    size_t                   i, name_start, name_len, dir_start, dir_len;
    const qcc_guard_call_t  *c;

    if (len && path[len - 1] == '/') {
        len--;
    }

    for (i = len; i > 0 && path[i - 1] != '/'; i--) { /* void */ }

    if (i == 0) {
        return QCC_GUARD_API_OTHER;
    }

    name_start = i;
    name_len = len - i;

    for (i = name_start - 1; i > 0 && path[i - 1] != '/'; i--) { /* void */ }

    dir_start = i;
    dir_len = name_start - 1 - i;

    for (c = qcc_guard_calls; c->name; c++) {
        if (name_len == strlen(c->name)
            && dir_len == strlen(c->dir)
            && strncasecmp((const char *) path + name_start, c->name,
                           name_len) == 0
            && strncasecmp((const char *) path + dir_start, c->dir,
                           dir_len) == 0)
        {
            return c->api;
        }
    }

    return QCC_GUARD_API_OTHER;
}


int
qcc_guard_is_batch(int api)
{
    return api == QCC_GUARD_API_BATCH_KEYWORDS
           || api == QCC_GUARD_API_BATCH_LOGINS;
}


typedef struct {
    const char  *name;
    size_t       count;
} qcc_guard_count_ctx_t;


static void
qcc_guard_count_arg(const unsigned char *name, size_t name_len,
    const unsigned char *value, size_t value_len, void *data)
{
    qcc_guard_count_ctx_t *ctx = data;

    size_t    i;
    unsigned  c;
    int       piece;

    if (!qcc_guard_name_is(name, name_len, ctx->name) || value == NULL) {
        return;
    }

    i = 0;
    piece = 0;

    while (i < value_len) {
        c = qcc_guard_decode_char(value, value_len, &i);

        if (c == ',') {
            ctx->count += piece;
            piece = 0;

        } else {
            piece = 1;
        }
    }

    ctx->count += piece;
}


size_t
qcc_guard_count_list(const unsigned char *args, size_t len, const char *name)
{
    qcc_guard_count_ctx_t  ctx;

    ctx.name = name;
    ctx.count = 0;

    qcc_guard_each_arg(args, len, qcc_guard_count_arg, &ctx);

    return ctx.count;
}


typedef struct {
    size_t   max;
    size_t   worst;       /* the first bad value seen, capped */
    int      bad;
} qcc_guard_page_ctx_t;


static void
qcc_guard_page_arg(const unsigned char *name, size_t name_len,
    const unsigned char *value, size_t value_len, void *data)
{
    qcc_guard_page_ctx_t *ctx = data;

    size_t    i, n;
    unsigned  c;
    int       digits;

    if (!qcc_guard_name_is(name, name_len, "pageSize") || value == NULL
        || value_len == 0 || ctx->bad)
    {
        return;
    }

    i = 0;
    n = 0;
    digits = 0;

    while (i < value_len) {
        c = qcc_guard_decode_char(value, value_len, &i);

        if (c < '0' || c > '9') {
            ctx->bad = 1;
            ctx->worst = 0;
            return;
        }

        digits = 1;

        if (n <= 1000000) {
            n = n * 10 + (c - '0');
        }
    }

    if (digits && (n == 0 || n > ctx->max)) {
        ctx->bad = 1;
        ctx->worst = n;
    }
}


int
qcc_guard_check(const unsigned char *path, size_t path_len,
    const unsigned char *args, size_t args_len,
    const qcc_guard_limits_t *limits, qcc_guard_result_t *res)
{
    qcc_guard_page_ctx_t  page;

    memset(res, 0, sizeof(qcc_guard_result_t));

    res->api = qcc_guard_classify(path, path_len);

    switch (res->api) {

    case QCC_GUARD_API_BATCH_KEYWORDS:
        res->limit = limits->max_keywords;
        res->count = qcc_guard_count_list(args, args_len, "keyWordList");

        if (res->count > res->limit) {
            res->rc = QCC_GUARD_TOO_MANY_KEYWORDS;
        }

        break;

    case QCC_GUARD_API_BATCH_LOGINS:
        res->limit = limits->max_login_names;
        res->count = qcc_guard_count_list(args, args_len, "loginNameList");

        if (res->count > res->limit) {
            res->rc = QCC_GUARD_TOO_MANY_LOGINS;
        }

        break;

    case QCC_GUARD_API_SHIXIN:
        page.max = limits->max_page_size;
        page.worst = 0;
        page.bad = 0;

        qcc_guard_each_arg(args, args_len, qcc_guard_page_arg, &page);

        res->limit = limits->max_page_size;
        res->count = page.worst;

        if (page.bad) {
            res->rc = QCC_GUARD_BAD_PAGE_SIZE;
        }

        break;

    default:
        break;
    }

    return res->rc;
}


size_t
qcc_guard_response(const qcc_guard_result_t *res, unsigned char *buf,
    size_t size)
{
    int  n;

    switch (res->rc) {

    case QCC_GUARD_TOO_MANY_KEYWORDS:
        n = snprintf((char *) buf, size,
                     "{\"status\":\"202\",\"msg\":\"keyWordList has %zu "
                     "items, at most %zu are allowed\"}",
                     res->count, res->limit);
        break;

    case QCC_GUARD_TOO_MANY_LOGINS:
        n = snprintf((char *) buf, size,
                     "{\"status\":\"202\",\"msg\":\"loginNameList has %zu "
                     "items, at most %zu are allowed\"}",
                     res->count, res->limit);
        break;

    case QCC_GUARD_BAD_PAGE_SIZE:
        n = snprintf((char *) buf, size,
                     "{\"status\":\"202\",\"msg\":\"pageSize must be a "
                     "number from 1 to %zu\"}", res->limit);
        break;

    default:
        n = snprintf((char *) buf, size,
                     "{\"status\":\"202\",\"msg\":\"bad parameters\"}");
        break;
    }

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return n;
}


typedef struct {
    unsigned char  *out;
    size_t          size;
    size_t          len;
    size_t          kept;
    int             dropped;
    int             overflow;
} qcc_guard_files_ctx_t;


static void
qcc_guard_files_arg(const unsigned char *name, size_t name_len,
    const unsigned char *value, size_t value_len, void *data)
{
    qcc_guard_files_ctx_t *ctx = data;

    size_t       need;
    const char **c;

    for (c = qcc_guard_credentials; *c; c++) {
        if (qcc_guard_name_is(name, name_len, *c)) {
            ctx->dropped = 1;
            return;
        }
    }

    need = (ctx->kept ? 1 : 0) + name_len + (value ? 1 + value_len : 0);

    if (ctx->len + need > ctx->size) {
        ctx->overflow = 1;
        return;
    }

    if (ctx->kept) {
        ctx->out[ctx->len++] = '&';
    }

    memcpy(ctx->out + ctx->len, name, name_len);
    ctx->len += name_len;

    if (value) {
        ctx->out[ctx->len++] = '=';
        memcpy(ctx->out + ctx->len, value, value_len);
        ctx->len += value_len;
    }

    ctx->kept++;
}


int
qcc_guard_files_url(const unsigned char *in, size_t len, unsigned char *out,
    size_t size, size_t *out_len)
{
    size_t                 i, scheme_len, host_start, host_len, path_start,
                           path_len, q, n;
    const char            *scheme;
    qcc_guard_files_ctx_t  ctx;

    for (i = 0; i < len && in[i] != '/' && in[i] != ':' && in[i] != '?';
         i++)
    { /* void */ }

    scheme_len = i;

    if (scheme_len == 4 && strncasecmp((const char *) in, "http", 4) == 0) {
        scheme = "http://";

    } else if (scheme_len == 5
               && strncasecmp((const char *) in, "https", 5) == 0)
    {
        scheme = "https://";

    } else {
        return QCC_GUARD_FILES_BAD_SCHEME;
    }

    /* "http/host/..." or the URL as it is, "http://host/..." */

    if (i + 2 < len && in[i] == ':' && in[i + 1] == '/' && in[i + 2] == '/') {
        i += 3;

    } else if (i < len && in[i] == '/') {
        i++;

    } else {
        return QCC_GUARD_FILES_BAD_SCHEME;
    }

    host_start = i;

    while (i < len && in[i] != '/' && in[i] != '?') {
        i++;
    }

    host_len = i - host_start;

    if (host_len == 0) {
        return QCC_GUARD_FILES_NO_HOST;
    }

    path_start = i;

    while (i < len && in[i] != '?') {
        i++;
    }

    path_len = i - path_start;
    q = i;

    n = strlen(scheme) + host_len + (path_len ? path_len : 1);

    if (n > size) {
        return QCC_GUARD_FILES_TOO_LONG;
    }

    memcpy(out, scheme, strlen(scheme));
    n = strlen(scheme);
    memcpy(out + n, in + host_start, host_len);
    n += host_len;

    if (path_len) {
        memcpy(out + n, in + path_start, path_len);
        n += path_len;

    } else {
        out[n++] = '/';
    }

    if (q < len) {
        if (n + 1 > size) {
            return QCC_GUARD_FILES_TOO_LONG;
        }

        out[n] = '?';

        ctx.out = out + n + 1;
        ctx.size = size - n - 1;
        ctx.len = 0;
        ctx.kept = 0;
        ctx.dropped = 0;
        ctx.overflow = 0;

        qcc_guard_each_arg(in + q + 1, len - q - 1, qcc_guard_files_arg,
                           &ctx);

        if (ctx.overflow) {
            return QCC_GUARD_FILES_TOO_LONG;
        }

        if (!ctx.dropped) {
            /* nothing dropped: the query exactly as it came */
            if (n + 1 + (len - q - 1) > size) {
                return QCC_GUARD_FILES_TOO_LONG;
            }

            memcpy(out + n + 1, in + q + 1, len - q - 1);
            n += len - q;

        } else if (ctx.len) {
            n += 1 + ctx.len;
        }
    }

    *out_len = n;

    return QCC_GUARD_FILES_OK;
}


const char *
qcc_guard_files_strerror(int rc)
{
    if (rc < 0 || (size_t) rc >= sizeof(qcc_guard_files_errors)
                                 / sizeof(qcc_guard_files_errors[0]))
    {
        return "unknown error";
    }

    return qcc_guard_files_errors[rc];
}


/*
 * The link at in[i] (just after a '"'): its scheme length (4 or 5), the
 * length of "://" or ":\/\/" after it, and its host's end; 0 if none.
 */
static size_t
qcc_guard_link_at(const unsigned char *in, size_t len, size_t i,
    size_t *scheme_len, size_t *sep_len)
{
    size_t  k, n;

    n = 0;

    if (len - i >= 4 && strncasecmp((const char *) in + i, "http", 4) == 0) {
        n = 4;

        if (len - i > 4 && (in[i + 4] | 0x20) == 's') {
            n = 5;
        }
    }

    if (n == 0) {
        return 0;
    }

    k = i + n;

    if (len - k >= 3 && memcmp(in + k, "://", 3) == 0) {
        *sep_len = 3;

    } else if (len - k >= 5 && memcmp(in + k, ":\\/\\/", 5) == 0) {
        *sep_len = 5;

    } else {
        return 0;
    }

    *scheme_len = n;
    k += *sep_len;

    while (k < len && in[k] != '/' && in[k] != '\\' && in[k] != '"'
           && in[k] != '?' && in[k] != '#')
    {
        k++;
    }

    return k;
}


size_t
qcc_guard_rewrite_links(const unsigned char *in, size_t len,
    const void *hosts, size_t nhosts, const unsigned char *prefix,
    size_t prefix_len, unsigned char *out, size_t *count)
{
    size_t          i, n, host, end, scheme_len, sep_len, links;
    qcc_url_t       u;
    unsigned char   url[8 + 256];

    n = 0;
    links = 0;
    i = 0;

    while (i < len) {

        if (in[i] != '"' || i + 1 >= len) {
            if (out) {
                out[n] = in[i];
            }

            n++;
            i++;
            continue;
        }

        /* a string starts (or ends: then no link follows) */

        if (out) {
            out[n] = '"';
        }

        n++;
        i++;

        if (i >= 2 && in[i - 2] == '\\') {
            /* an escaped quote inside a string: text, not a link */
            continue;
        }

        end = qcc_guard_link_at(in, len, i, &scheme_len, &sep_len);

        if (end == 0) {
            continue;
        }

        host = i + scheme_len + sep_len;

        if (end - host == 0 || end - host > 255) {
            continue;
        }

        /* "scheme://host" through the strict parser and the allow-list */

        memcpy(url, scheme_len == 5 ? "https://" : "http://", scheme_len + 3);
        memcpy(url + scheme_len + 3, in + host, end - host);

        if (qcc_url_parse(url, scheme_len + 3 + end - host, &u) != QCC_URL_OK
            || qcc_url_host_match(&u, hosts, nhosts) != QCC_URL_OK)
        {
            continue;
        }

        if (out) {
            memcpy(out + n, prefix, prefix_len);
            memcpy(out + n + prefix_len, scheme_len == 5 ? "https/" : "http/",
                   scheme_len + 1);
            memcpy(out + n + prefix_len + scheme_len + 1, in + host,
                   end - host);
        }

        n += prefix_len + scheme_len + 1 + end - host;
        i = end;
        links++;
    }

    if (count) {
        *count = links;
    }

    return n;
}


int
qcc_guard_prefix_valid(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\' || p[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}
