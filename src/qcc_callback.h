/*
 * QCC push callback, nginx-free: validation of the five arguments of a
 * push callback (query string or form body), and the URL parser and host
 * allow-list check that the download code also uses on redirects.
 *
 * The callback, as the documents give it:
 *
 *   key=<AppKey>&orderNo=DDMON2021031616145803273367
 *   &downloadUrl=<percent-encoded OSS URL>
 *   &downloadUrlExpiredTime=2021-03-16%2020%3A19%3A00&unzipPassword=<pw>
 *
 * Rules: arguments split on '&'; names and values percent-decoded exactly
 * once ('+' as space with QCC_CALLBACK_PLUS_SPACE); names matched without
 * regard to case (nginx's $arg_* does the same, so "KEY=" cannot smuggle a
 * second key past us); a known argument given twice is refused; unknown
 * arguments are ignored (their values are not even decoded).
 *
 * Precedence of refusals, so the answer does not depend on argument order
 * more than it must: TOO_LARGE; then while splitting, BAD_ENCODING (a
 * malformed escape in any name) and REPEATED; then the key: BAD_ENCODING
 * of its value, BAD_KEY (missing or wrong key, 403); only then are the
 * other values decoded: BAD_ENCODING (orderNo, downloadUrl,
 * downloadUrlExpiredTime, unzipPassword in that order); then MISSING (in
 * the same order); then each value's own checks in the same order.  So a
 * caller without the key learns nothing about the other values, and a
 * wrong key costs no more than decoding the key.
 */

#ifndef QCC_CALLBACK_H
#define QCC_CALLBACK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>


/* bounds on decoded values */
#define QCC_CALLBACK_MAX_INPUT      16384
#define QCC_CALLBACK_KEY_MAX        256
#define QCC_CALLBACK_ORDER_NO_MAX   64
#define QCC_CALLBACK_URL_MAX        2048
#define QCC_CALLBACK_TIME_LEN       19
#define QCC_CALLBACK_PASSWORD_MAX   128

/* downloadUrlExpiredTime is QCC's local time, UTC+8 */
#define QCC_CALLBACK_TZ_OFFSET      (8 * 3600)

/* flags: '+' decodes to a space (form encoding; Java's URLEncoder) */
#define QCC_CALLBACK_PLUS_SPACE     0x01

/* the body QCC expects on success, UTF-8 ("成功") */
#define QCC_CALLBACK_OK_BODY                                                 \
    "{\"status\":\"200\",\"msg\":\"\xe6\x88\x90\xe5\x8a\x9f\"}"

/* room for any body qcc_callback_response() writes */
#define QCC_CALLBACK_RESPONSE_MAX   160


typedef enum {
    QCC_CALLBACK_OK = 0,
    QCC_CALLBACK_BAD_KEY,        /* key missing or wrong: 403 */
    QCC_CALLBACK_BAD_ARG,        /* a malformed value: 400 */
    QCC_CALLBACK_BAD_ENCODING,   /* a malformed %-escape: 400 */
    QCC_CALLBACK_REPEATED,       /* a known argument twice: 400 */
    QCC_CALLBACK_MISSING,        /* a required argument absent: 400 */
    QCC_CALLBACK_TOO_LONG,       /* one value over its bound: 400 */
    QCC_CALLBACK_HOST_DENIED,    /* downloadUrl host not allowed: 400 */
    QCC_CALLBACK_TOO_LARGE       /* input over QCC_CALLBACK_MAX_INPUT or
                                    the scratch buffer: 414 (413 body) */
} qcc_callback_rc_e;


/*
 * A host of the allow-list: "host", "host:port", "[v6]" or "[v6]:port".
 * Without a port it allows any port.  Same layout as ngx_str_t, so the
 * glue may pass the elements of an ngx_array_t of ngx_str_t as they are.
 */
typedef struct {
    size_t                 len;
    const unsigned char   *data;
} qcc_url_host_t;


typedef struct {
    const unsigned char   *key;       /* the qcc_key in effect */
    size_t                 key_len;   /* 0 refuses every callback */
    const qcc_url_host_t  *hosts;     /* qcc_download_hosts */
    size_t                 nhosts;
    unsigned               flags;     /* QCC_CALLBACK_PLUS_SPACE */
} qcc_callback_conf_t;


typedef enum {
    QCC_URL_OK = 0,
    QCC_URL_TOO_LONG,       /* over QCC_CALLBACK_URL_MAX */
    QCC_URL_BAD_CHAR,       /* control, space, '\', '#', non-ASCII, ... */
    QCC_URL_BAD_SCHEME,     /* not http:// or https:// */
    QCC_URL_USERINFO,       /* '@' in the authority */
    QCC_URL_BAD_HOST,       /* empty, bad label, trailing dot, bad [v6] */
    QCC_URL_BAD_PORT,       /* empty, not 1..65535 */
    QCC_URL_BAD_ESCAPE,     /* '%' not followed by two hex digits */
    QCC_URL_HOST_DENIED     /* well-formed, host not in the allow-list */
} qcc_url_rc_e;


/* Pointers into the parsed URL; nothing is copied. */
typedef struct {
    const unsigned char   *host;       /* "[v6]" keeps its brackets */
    size_t                 host_len;
    const unsigned char   *path;       /* from the first '/' or '?' on;   */
    size_t                 path_len;   /* empty if the URL has neither    */
    unsigned               port;       /* explicit, else 80 or 443 */
    unsigned               https:1;
    unsigned               port_explicit:1;
} qcc_url_t;


/* The decoded arguments; on failure only arg and reason are meaningful. */
typedef struct {
    const unsigned char   *order_no;   /* all pointers into scratch */
    size_t                 order_no_len;
    const unsigned char   *url;
    size_t                 url_len;
    const unsigned char   *password;
    size_t                 password_len;
    time_t                 expires;    /* downloadUrlExpiredTime, Unix */
    qcc_url_t              parsed;     /* of url */

    const char            *arg;        /* offending argument's name (a
                                          static string) or NULL; never
                                          its value */
    const char            *reason;     /* static English text, JSON-safe */

    /*
     * Set on success and on any refusal after the arguments were split
     * (BAD_KEY and later): every argument was seen, and the password's
     * value, as it is in the input (still encoded), is password_raw, or
     * NULL if there is none.  A caller that masks it there leaves no
     * password in the input.
     */
    unsigned               split:1;
    const unsigned char   *password_raw;
    size_t                 password_raw_len;
} qcc_callback_args_t;


/*
 * Validates a query string or form body.  scratch receives the decoded
 * values (scratch_size >= len, else TOO_LARGE); the key is wiped from it
 * after the comparison, but the password stays there: the caller wipes
 * scratch when done.  Returns a qcc_callback_rc_e.
 */
int qcc_callback_parse(const unsigned char *in, size_t len,
    const qcc_callback_conf_t *conf, unsigned char *scratch,
    size_t scratch_size, qcc_callback_args_t *out);

/* HTTP status of a result: 200, 400, 403 or 414 (the glue uses 413 for
 * an oversized POST body). */
int qcc_callback_http_status(int rc);

/* The JSON "status" string of a result: "200", "400", "403", "414". */
const char *qcc_callback_status(int rc);

/*
 * The whole JSON body: QCC_CALLBACK_OK_BODY on success, else
 * {"status":"<code>","msg":"<reason>"}.  buf holds
 * QCC_CALLBACK_RESPONSE_MAX bytes; returns the length (no NUL), or 0 if
 * size is too small.
 */
size_t qcc_callback_response(int rc, const qcc_callback_args_t *a,
    unsigned char *buf, size_t size);

/* Single-value checks, also for the reconcile path (getDownloadUrl). */
int qcc_callback_check_order_no(const unsigned char *p, size_t len);
int qcc_callback_check_password(const unsigned char *p, size_t len);

/*
 * "YYYY-MM-DD HH:MM:SS" in UTC+8 to Unix time, independent of TZ.
 * Returns 0, or -1 if malformed or not a real date and time
 * (years 1970..9999, no leap second).
 */
int qcc_callback_parse_time(const unsigned char *p, size_t len,
    time_t *out);

/*
 * Constant-time key comparison: the time depends only on want_len (and
 * on got_len, which the sender knows).  Returns 1 if equal, 0 if not or
 * if want_len is 0.
 */
int qcc_callback_key_equal(const unsigned char *got, size_t got_len,
    const unsigned char *want, size_t want_len);


/*
 * Parses an absolute http/https URL (at most QCC_CALLBACK_URL_MAX bytes)
 * strictly: no userinfo, no fragment, no backslash, no control or
 * non-ASCII bytes, path and query of RFC 3986 characters with valid
 * escapes, a host of [A-Za-z0-9._-] labels without a trailing dot or an
 * IPv6 literal in brackets, an optional port 1..65535.
 * Returns a qcc_url_rc_e.
 */
int qcc_url_parse(const unsigned char *url, size_t len, qcc_url_t *u);

/* QCC_URL_OK if u's host (and port) is in the list, else HOST_DENIED. */
int qcc_url_host_match(const qcc_url_t *u, const qcc_url_host_t *hosts,
    size_t nhosts);

/* qcc_url_parse() then qcc_url_host_match(): for redirects. */
int qcc_url_host_allowed(const unsigned char *url, size_t len,
    const qcc_url_host_t *hosts, size_t nhosts);

/* Whether an allow-list entry is well-formed (for the directive). */
int qcc_url_host_valid(const unsigned char *host, size_t len);

/* A short English text of a qcc_url_rc_e, JSON-safe. */
const char *qcc_url_strerror(int rc);

#endif /* QCC_CALLBACK_H */
