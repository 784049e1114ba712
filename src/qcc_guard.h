/*
 * Edge guardrails of QCC calls, nginx-free: which calls are the four
 * batch-assignment calls and getShiXinList, counting the items of their
 * comma-separated lists, checking pageSize, and the gateway's files route
 * (turning "<scheme>/<host>/<path>?<query>" back into the absolute URL).
 *
 * Query strings are raw (as the client sent them): arguments split on
 * '&', names and values decoded once as ASP.NET does ("%XX", "%uXXXX",
 * '+'; a malformed escape stays as it is).  Names are matched without
 * regard to case and every occurrence counts, as ASP.NET (QCC's stack)
 * joins a repeated argument with ',' and looks names up that way.
 * List items are the non-empty pieces between commas (a %2C is a comma
 * once decoded), which is how QCC's own split counts them.
 */

#ifndef QCC_GUARD_H
#define QCC_GUARD_H

#include <stddef.h>


/* the documented limits (monitor-company-assign.txt, getShiXinList) */
#define QCC_GUARD_MAX_KEYWORDS        200
#define QCC_GUARD_MAX_LOGIN_NAMES     500
#define QCC_GUARD_MAX_PAGE_SIZE       20

/* room for any body qcc_guard_response() writes */
#define QCC_GUARD_RESPONSE_MAX        192


/* what a path is */
typedef enum {
    QCC_GUARD_API_OTHER = 0,
    QCC_GUARD_API_BATCH_KEYWORDS,   /* batch...CompanyList...ExistedUser */
    QCC_GUARD_API_BATCH_LOGINS,     /* batch...Company...ExistedUserList */
    QCC_GUARD_API_SHIXIN            /* dd_corp_monitor/getShiXinList */
} qcc_guard_api_e;


typedef enum {
    QCC_GUARD_OK = 0,
    QCC_GUARD_TOO_MANY_KEYWORDS,    /* keyWordList over the limit */
    QCC_GUARD_TOO_MANY_LOGINS,      /* loginNameList over the limit */
    QCC_GUARD_BAD_PAGE_SIZE         /* pageSize not 1..limit */
} qcc_guard_rc_e;


typedef struct {
    size_t   max_keywords;
    size_t   max_login_names;
    size_t   max_page_size;
} qcc_guard_limits_t;


typedef struct {
    int      api;            /* qcc_guard_api_e */
    int      rc;             /* qcc_guard_rc_e */
    size_t   count;          /* items counted, or the pageSize seen */
    size_t   limit;          /* the limit it was checked against */
} qcc_guard_result_t;


/*
 * The call a decoded, normalised path ($uri) names: its last two
 * segments (one trailing '/' allowed), without regard to case, so that
 * "/qcc/api/radar_ext/batchAdd...", "/api/RADAR_EXT/batchadd.../" match.
 */
int qcc_guard_classify(const unsigned char *path, size_t len);

/* Whether the api is one of the four batch-assignment calls. */
int qcc_guard_is_batch(int api);

/*
 * Items of every argument called name (any case) in a raw query string:
 * the sum over all occurrences of the non-empty comma-separated pieces
 * of the decoded value.
 */
size_t qcc_guard_count_list(const unsigned char *args, size_t len,
    const char *name);

/*
 * Checks a call: path is the decoded path, args the raw query string.
 * Fills res; returns res->rc.
 */
int qcc_guard_check(const unsigned char *path, size_t path_len,
    const unsigned char *args, size_t args_len,
    const qcc_guard_limits_t *limits, qcc_guard_result_t *res);

/*
 * The QCC-style answer of a refused call:
 * {"status":"202","msg":"<English text with the counts>"}.  buf holds
 * QCC_GUARD_RESPONSE_MAX bytes; returns the length, or 0 if too small.
 */
size_t qcc_guard_response(const qcc_guard_result_t *res, unsigned char *buf,
    size_t size);


/* results of qcc_guard_files_url() */
typedef enum {
    QCC_GUARD_FILES_OK = 0,
    QCC_GUARD_FILES_BAD_SCHEME,     /* first segment not http or https */
    QCC_GUARD_FILES_NO_HOST,        /* no host segment */
    QCC_GUARD_FILES_TOO_LONG        /* the URL would not fit */
} qcc_guard_files_rc_e;

/*
 * The files route: in is the raw request target after the route's
 * prefix, "<http|https>/<host[:port]>[/<path>][?<query>]"; out receives
 * "<scheme>://<host[:port]>/<path>[?<query>]" with the path and every
 * argument byte for byte, except that arguments named key, Token or
 * Timespan (any case, names decoded) are dropped: the files route never
 * carries QCC credentials.  The result still needs qcc_url_parse() and
 * qcc_url_host_match().  Returns a qcc_guard_files_rc_e.
 */
int qcc_guard_files_url(const unsigned char *in, size_t len,
    unsigned char *out, size_t size, size_t *out_len);

/* A short English text of a qcc_guard_files_rc_e, JSON-safe. */
const char *qcc_guard_files_strerror(int rc);


/*
 * Link rewriting of a JSON answer: every string value that starts with
 * an absolute http or https link (also with escaped slashes, "http:\/\/")
 * whose host is in the allow-list becomes prefix + "<scheme>/<host>" +
 * the rest of the link, unchanged, so that apps follow links through the
 * gateway's files route.  Nothing else changes.  prefix must be
 * JSON-safe (no '"', '\' or control characters).
 *
 * With out NULL, returns the length of the result; else writes it to
 * out (that many bytes) and returns it.  *count (if not NULL) receives
 * the number of links rewritten.
 */
size_t qcc_guard_rewrite_links(const unsigned char *in, size_t len,
    const void *hosts, size_t nhosts, const unsigned char *prefix,
    size_t prefix_len, unsigned char *out, size_t *count);

/* Whether a rewrite prefix is JSON-safe and non-empty. */
int qcc_guard_prefix_valid(const unsigned char *p, size_t len);

#endif /* QCC_GUARD_H */
