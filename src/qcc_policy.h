/*
 * Per-app policy, nginx-free: the API family of a request path, the QCC
 * day (midnight UTC+8) and the seconds until it ends, and a streaming
 * scanner of the business status of a QCC answer.
 */

#ifndef QCC_POLICY_H
#define QCC_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* QCC's day starts at midnight UTC+8 */
#define QCC_POLICY_TZ_OFFSET     (8 * 3600)
#define QCC_POLICY_DAY           86400

#define QCC_POLICY_FAMILY_MAX    64      /* length of a family name */
#define QCC_POLICY_NOMATCH       -1

/* the business status codes counted one by one, then "other" and "none" */
#define QCC_POLICY_KNOWN_CODES   34
#define QCC_POLICY_CODE_OTHER    QCC_POLICY_KNOWN_CODES
#define QCC_POLICY_CODE_NONE     (QCC_POLICY_KNOWN_CODES + 1)
#define QCC_POLICY_CODES         (QCC_POLICY_KNOWN_CODES + 2)

/* bytes of an answer looked at for its status */
#define QCC_POLICY_SCAN_LIMIT    65536


typedef struct {
    const unsigned char  *data;
    size_t                len;
} qcc_policy_str_t;


/*
 * Whether a family name is acceptable: one or more segments of letters,
 * digits, '_' and '-', joined by '/' ("radar_ext", "yj/Report",
 * "dd_corp_monitor/getExceptions"), at most QCC_POLICY_FAMILY_MAX bytes.
 */
int qcc_policy_family_valid(const unsigned char *name, size_t len);

/*
 * The family of a (decoded, normalised) request path: the index of the
 * longest of the n names that equals, without regard to case, the
 * segments right after the first "/api/" of the path, followed by '/' or
 * the end; QCC_POLICY_NOMATCH if none does, or if the part after "/api/"
 * holds anything but letters, digits, '_', '-', '.' and '/', an empty
 * segment, or a segment starting with '.' (so that neither "..;" nor an
 * encoded slash can lead a backend elsewhere than the family says).
 */
int qcc_policy_family(const unsigned char *path, size_t len,
    const qcc_policy_str_t *families, int n);

/* The index of the QCC day (or of the period) that contains now. */
int64_t qcc_policy_period_index(int64_t now, int64_t period);

/* When the period containing now ends (Unix time). */
int64_t qcc_policy_period_end(int64_t now, int64_t period);

/* Seconds from now until the period ends, at least 1: for Retry-After. */
int64_t qcc_policy_retry_after(int64_t now, int64_t period);

/* The counter index of a status code: known, OTHER, or NONE for -1. */
int qcc_policy_code_index(int status);

/* The code of a known index, or -1 for OTHER and NONE. */
int qcc_policy_code_value(int index);


/*
 * The business status of an answer, fed in pieces: the top-level
 * "status" (or "Status") of a JSON object, string or number, or the
 * first <Status> element of an XML answer.
 */
typedef struct {
    unsigned     state;
    unsigned     depth;
    unsigned     key_len;
    unsigned     digits;
    unsigned     matched;
    size_t       seen;
    int          status;        /* -1 until found */
    int          value;
    unsigned     done:1;
    unsigned     in_string:1;
    unsigned     escape:1;
    unsigned     expect_key:1;
    unsigned     is_key:1;
    unsigned     key_status:1;
    unsigned     quoted:1;
    char         key[8];
} qcc_policy_scan_t;

void qcc_policy_scan_init(qcc_policy_scan_t *s);

/* Returns 1 once the scan is over (s->status found, or not there). */
int qcc_policy_scan(qcc_policy_scan_t *s, const unsigned char *p,
    size_t len);

/* Ends the scan at the end of the answer; returns s->status or -1. */
int qcc_policy_scan_end(qcc_policy_scan_t *s);

#endif /* QCC_POLICY_H */
