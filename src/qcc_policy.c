/*
 * Per-app policy, nginx-free: family matching, the QCC day and the
 * business status scanner.
 */

#include <string.h>

#include "qcc_policy.h"


#define QCC_POLICY_ST_START  0
#define QCC_POLICY_ST_JSON   1
#define QCC_POLICY_ST_VALUE  2
#define QCC_POLICY_ST_XML    3
#define QCC_POLICY_ST_BOM    4


/* the status codes of the documents, ascending */
static const int  qcc_policy_codes[QCC_POLICY_KNOWN_CODES] = {
    101, 102, 103, 104, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
    116, 117, 118, 119, 199, 200, 201, 202, 203, 205, 207, 208, 209, 213,
    214, 215, 218, 219, 223, 500
};


static unsigned char
qcc_policy_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c | 0x20) : c;
}


static int
qcc_policy_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


int
qcc_policy_family_valid(const unsigned char *name, size_t len)
{
    size_t  i, seg;

    if (len == 0 || len > QCC_POLICY_FAMILY_MAX) {
        return 0;
    }

    seg = 0;

    for (i = 0; i < len; i++) {
        if (name[i] == '/') {
            if (seg == 0) {
                return 0;
            }

            seg = 0;
            continue;
        }

        if (!qcc_policy_name_char(name[i])) {
            return 0;
        }

        seg++;
    }

    return seg != 0;
}


int
qcc_policy_family(const unsigned char *path, size_t len,
    const qcc_policy_str_t *families, int n)
{
    int                   f, best;
    size_t                i, j, rlen, seg, best_len;
    unsigned char         c;
    const unsigned char  *rest;

    rest = NULL;
    rlen = 0;

    for (i = 0; i + 5 <= len; i++) {
        if (path[i] == '/'
            && qcc_policy_lower(path[i + 1]) == 'a'
            && qcc_policy_lower(path[i + 2]) == 'p'
            && qcc_policy_lower(path[i + 3]) == 'i'
            && path[i + 4] == '/')
        {
            rest = path + i + 5;
            rlen = len - i - 5;
            break;
        }
    }

    if (rest == NULL || rlen == 0) {
        return QCC_POLICY_NOMATCH;
    }

    /* only plain segments: nothing a backend could read another way */

    seg = 0;

    for (i = 0; i < rlen; i++) {
        c = rest[i];

        if (c == '/') {
            if (seg == 0) {
                return QCC_POLICY_NOMATCH;
            }

            seg = 0;
            continue;
        }

        if (c == '.' && seg == 0) {
            return QCC_POLICY_NOMATCH;
        }

        if (!qcc_policy_name_char(c) && c != '.') {
            return QCC_POLICY_NOMATCH;
        }

        seg++;
    }

    if (seg == 0) {
        return QCC_POLICY_NOMATCH;
    }

    best = QCC_POLICY_NOMATCH;
    best_len = 0;

    for (f = 0; f < n; f++) {
        if (families[f].len == 0 || families[f].len > rlen
            || families[f].len <= best_len)
        {
            continue;
        }

        if (families[f].len < rlen && rest[families[f].len] != '/') {
            continue;
        }

        for (j = 0; j < families[f].len; j++) {
            if (qcc_policy_lower(rest[j])
                != qcc_policy_lower(families[f].data[j]))
            {
                break;
            }
        }

        if (j == families[f].len) {
            best = f;
            best_len = families[f].len;
        }
    }

    return best;
}


int64_t
qcc_policy_period_index(int64_t now, int64_t period)
{
    int64_t  t;

    if (period <= 0) {
        period = QCC_POLICY_DAY;
    }

    t = now + QCC_POLICY_TZ_OFFSET;

    /* floor division, also before 1970 */
    return (t >= 0) ? t / period : -((-t + period - 1) / period);
}


int64_t
qcc_policy_period_end(int64_t now, int64_t period)
{
    if (period <= 0) {
        period = QCC_POLICY_DAY;
    }

    return (qcc_policy_period_index(now, period) + 1) * period
           - QCC_POLICY_TZ_OFFSET;
}


int64_t
qcc_policy_retry_after(int64_t now, int64_t period)
{
    int64_t  s;

    s = qcc_policy_period_end(now, period) - now;

    return s < 1 ? 1 : s;
}


int
qcc_policy_code_index(int status)
{
    int  lo, hi, mid;

    if (status < 0) {
        return QCC_POLICY_CODE_NONE;
    }

    lo = 0;
    hi = QCC_POLICY_KNOWN_CODES - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;

        if (qcc_policy_codes[mid] == status) {
            return mid;
        }

        if (qcc_policy_codes[mid] < status) {
            lo = mid + 1;

        } else {
            hi = mid - 1;
        }
    }

    return QCC_POLICY_CODE_OTHER;
}


int
qcc_policy_code_value(int index)
{
    if (index < 0 || index >= QCC_POLICY_KNOWN_CODES) {
        return -1;
    }

    return qcc_policy_codes[index];
}


void
qcc_policy_scan_init(qcc_policy_scan_t *s)
{
    memset(s, 0, sizeof(qcc_policy_scan_t));
    s->status = -1;
    s->state = QCC_POLICY_ST_START;
}


static void
qcc_policy_scan_finish(qcc_policy_scan_t *s, int status)
{
    s->status = status;
    s->done = 1;
}


int
qcc_policy_scan(qcc_policy_scan_t *s, const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char  c;

    static const char  tag[] = "<status>";

    for (i = 0; i < len && !s->done; i++) {

        if (s->seen++ >= QCC_POLICY_SCAN_LIMIT) {
            qcc_policy_scan_finish(s, -1);
            break;
        }

        c = p[i];

        switch (s->state) {

        case QCC_POLICY_ST_BOM:
            /* the rest of a UTF-8 byte order mark */
            if (c == 0xbb || c == 0xbf) {
                break;
            }

            s->state = QCC_POLICY_ST_START;

            /* fall through */

        case QCC_POLICY_ST_START:
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                break;
            }

            if (c == 0xef) {
                s->state = QCC_POLICY_ST_BOM;
                break;
            }

            if (c == '{') {
                s->depth = 1;
                s->expect_key = 1;
                s->state = QCC_POLICY_ST_JSON;
                break;
            }

            if (c == '<') {
                s->matched = 1;
                s->state = QCC_POLICY_ST_XML;
                break;
            }

            qcc_policy_scan_finish(s, -1);
            break;

        case QCC_POLICY_ST_JSON:

            if (s->in_string) {
                if (s->escape) {
                    s->escape = 0;
                    s->key_len = sizeof(s->key) + 1;

                } else if (c == '\\') {
                    s->escape = 1;

                } else if (c == '"') {
                    s->in_string = 0;
                    s->key_status = s->is_key && s->key_len == 6
                                    && memcmp(s->key, "status", 6) == 0;

                } else if (s->is_key) {
                    if (s->key_len < sizeof(s->key)) {
                        s->key[s->key_len] = (char) qcc_policy_lower(c);
                    }

                    if (s->key_len <= sizeof(s->key)) {
                        s->key_len++;
                    }
                }

                break;
            }

            switch (c) {

            case ' ': case '\t': case '\r': case '\n':
                break;

            case '"':
                s->in_string = 1;
                s->is_key = s->expect_key && s->depth == 1;
                s->expect_key = 0;
                s->key_len = 0;
                s->key_status = 0;
                break;

            case '{': case '[':
                s->depth++;
                s->expect_key = 0;
                s->key_status = 0;
                break;

            case '}': case ']':
                if (--s->depth == 0) {
                    qcc_policy_scan_finish(s, -1);
                }

                s->key_status = 0;
                break;

            case ',':
                s->expect_key = (s->depth == 1);
                s->key_status = 0;
                break;

            case ':':
                if (s->depth == 1 && s->key_status) {
                    s->state = QCC_POLICY_ST_VALUE;
                    s->digits = 0;
                    s->quoted = 0;
                    s->value = 0;
                }

                s->key_status = 0;
                break;

            default:
                s->key_status = 0;
                break;
            }

            break;

        case QCC_POLICY_ST_VALUE:

            if (s->digits == 0 && !s->quoted
                && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
            {
                break;
            }

            if (s->digits == 0 && !s->quoted && c == '"') {
                s->quoted = 1;
                break;
            }

            if (c >= '0' && c <= '9' && s->digits < 6) {
                s->value = s->value * 10 + (c - '0');
                s->digits++;
                break;
            }

            qcc_policy_scan_finish(s, (s->digits && !(c >= '0' && c <= '9'))
                                      ? s->value : -1);
            break;

        case QCC_POLICY_ST_XML:

            if (qcc_policy_lower(c) == (unsigned char) tag[s->matched]) {
                if (++s->matched == sizeof(tag) - 1) {
                    s->state = QCC_POLICY_ST_VALUE;
                    s->digits = 0;
                    s->quoted = 0;
                    s->value = 0;
                }

                break;
            }

            s->matched = (c == '<') ? 1 : 0;
            break;
        }
    }

    return s->done;
}


int
qcc_policy_scan_end(qcc_policy_scan_t *s)
{
    if (!s->done) {
        qcc_policy_scan_finish(s, (s->state == QCC_POLICY_ST_VALUE
                                   && s->digits && !s->quoted)
                                  ? s->value : -1);
    }

    return s->status;
}
