/*
 * Streaming validation of a QCC push file, nginx-free.
 *
 * A byte-driven JSON scanner (RFC 8259 and UTF-8) with an explicit stack,
 * so neither memory nor C stack grows with the input.  Only three things
 * are ever copied: the top-level keys (for the duplicate check), the
 * values of pushDate and totalSize, and the bytes of the current record,
 * which is then parsed alone with cJSON.
 *
 * Fast paths take what a push file is mostly made of: string bytes (16 at
 * a time with SSE2, Chinese text included), one-letter escapes, and the
 * ':"' and ',"' between strings.  They only ever pass over bytes that the
 * states would accept the same way; whatever else they meet (an error, a
 * \u escape, an escape in a string that is kept, the end of a chunk or of
 * the record cap) they leave to the states, which alone decide and
 * report.  So the verdict, the offset and the reason stay those of the
 * byte-wise scan: fed one byte at a time (as the unit tests and the fuzz
 * target also do), the fast paths find nothing to take.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define QCC_PJ_SSE2  1
#else
#define QCC_PJ_SSE2  0
#endif

#include "qcc_pushjson.h"


enum {
    QCC_PJ_BOM0 = 0,          /* the very first byte */
    QCC_PJ_BOM1,
    QCC_PJ_BOM2,
    QCC_PJ_VALUE,             /* a value is expected */
    QCC_PJ_VALUE_OR_END,      /* after '[' */
    QCC_PJ_KEY_OR_END,        /* after '{' */
    QCC_PJ_KEY,               /* after ',' in an object */
    QCC_PJ_COLON,
    QCC_PJ_AFTER,             /* after a value: ',' or a bracket */
    QCC_PJ_DONE,              /* after the JSON text */
    QCC_PJ_STR,
    QCC_PJ_STR_ESC,
    QCC_PJ_STR_HEX,
    QCC_PJ_STR_LOW_BS,        /* a high surrogate wants "\u" + low */
    QCC_PJ_STR_LOW_U,
    QCC_PJ_STR_UTF8,          /* continuation bytes */
    QCC_PJ_NUM_MINUS,
    QCC_PJ_NUM_ZERO,
    QCC_PJ_NUM_INT,
    QCC_PJ_NUM_DOT,
    QCC_PJ_NUM_FRAC,
    QCC_PJ_NUM_E,
    QCC_PJ_NUM_ESIGN,
    QCC_PJ_NUM_EXP,
    QCC_PJ_LIT,
    QCC_PJ_FINISHED
};

/* top-level members */
enum {
    QCC_PJ_M_OTHER = 0,
    QCC_PJ_M_DATE,
    QCC_PJ_M_TOTAL,
    QCC_PJ_M_RESULT
};

/* where string or number bytes are copied */
enum {
    QCC_PJ_CAP_NONE = 0,
    QCC_PJ_CAP_KEY,
    QCC_PJ_CAP_DATE,
    QCC_PJ_CAP_TOTAL_STR,
    QCC_PJ_CAP_TOTAL_NUM,
    QCC_PJ_CAP_REC_KEY,       /* is it "id"? (native id check) */
    QCC_PJ_CAP_ID             /* the id string (native id check) */
};

/* what the first "id" member of a record holds (native id check) */
enum {
    QCC_PJ_ID_NONE = 0,
    QCC_PJ_ID_OTHER,          /* not a string */
    QCC_PJ_ID_STRING
};

#define QCC_PJ_F_DATE       0x01
#define QCC_PJ_F_TOTAL      0x02
#define QCC_PJ_F_RESULT     0x04    /* result seen */
#define QCC_PJ_F_IN_RESULT  0x08    /* inside the result array */
#define QCC_PJ_F_RECORD     0x10    /* inside a record */
#define QCC_PJ_F_ID_KEY     0x20    /* the next value is the record's id */
#define QCC_PJ_F_ID_SEEN    0x40    /* the record's first id member seen */

#define QCC_PJ_REC_MIN      4096
#define QCC_PJ_ID_MIN       64


/*
 * Bytes that go through a string unchanged and need no look: printable
 * ASCII except '"' and '\\'.
 */
static const unsigned char  qcc_pushjson_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    /* 0x80 and above: 0 */
};

/* what may follow '\\' alone: "\\/bfnrt (not u) */
static const unsigned char  qcc_pushjson_esc[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1,
    ['r'] = 1, ['t'] = 1
};

static const char  *qcc_pushjson_names[] = {
    "ok", "syntax", "utf8", "truncated", "trailing", "depth", "top",
    "dupkey", "keys", "pushdate", "totalsize", "result", "record",
    "record_size", "record_parse", "id_missing", "id_type", "id_empty",
    "count", "callback", "nomem", "state"
};


static int qcc_pushjson_fail(qcc_pushjson_t *ctx, int rc, uint64_t off,
    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__ ((format (printf, 4, 5)))
#endif
    ;


static int
qcc_pushjson_fail(qcc_pushjson_t *ctx, int rc, uint64_t off,
    const char *fmt, ...)
{
    size_t   n;
    va_list  args;

    ctx->rc = rc;
    ctx->err_offset = off;

    va_start(args, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, args);
    va_end(args);

    /* which record a syntax error is in helps whoever reads the reason */
    if ((ctx->flags & QCC_PJ_F_RECORD) && strncmp(ctx->err, "record ", 7)) {
        n = strlen(ctx->err);
        snprintf(ctx->err + n, sizeof(ctx->err) - n,
                 " (in record %llu at byte %llu)",
                 (unsigned long long) ctx->records,
                 (unsigned long long) ctx->rec_start);
    }

    return rc;
}


void
qcc_pushjson_init(qcc_pushjson_t *ctx, const qcc_pushjson_limits_t *limits)
{
    memset(ctx, 0, sizeof(qcc_pushjson_t));

    if (limits) {
        ctx->limits = *limits;
    }

    if (ctx->limits.record_max == 0) {
        ctx->limits.record_max = QCC_PUSHJSON_RECORD_MAX;
    }

    if (ctx->limits.depth_max == 0) {
        ctx->limits.depth_max = QCC_PUSHJSON_DEPTH;
    }

    if (ctx->limits.depth_max > QCC_PUSHJSON_DEPTH_LIMIT) {
        ctx->limits.depth_max = QCC_PUSHJSON_DEPTH_LIMIT;
    }

    ctx->state = QCC_PJ_BOM0;
}


void
qcc_pushjson_free(qcc_pushjson_t *ctx)
{
    free(ctx->rec);
    ctx->rec = NULL;
    ctx->rec_size = 0;
    ctx->rec_len = 0;

    free(ctx->id);
    ctx->id = NULL;
    ctx->id_size = 0;
    ctx->id_len = 0;
}


const char *
qcc_pushjson_error(const qcc_pushjson_t *ctx)
{
    return ctx->err;
}


uint64_t
qcc_pushjson_error_offset(const qcc_pushjson_t *ctx)
{
    return ctx->err_offset;
}


const char *
qcc_pushjson_strerror(int rc)
{
    if (rc < 0 || rc >= QCC_PUSHJSON_ERR_LAST) {
        return "unknown";
    }

    return qcc_pushjson_names[rc];
}


/* The id of a record is kept in its own buffer, bounded by the cap. */
static int
qcc_pushjson_id_append(qcc_pushjson_t *ctx, const unsigned char *s,
    size_t n)
{
    size_t          size;
    unsigned char  *id;

    if (ctx->id_len + n + 1 > ctx->id_size) {
        size = ctx->id_size ? ctx->id_size : QCC_PJ_ID_MIN;

        while (size < ctx->id_len + n + 1) {
            size *= 2;
        }

        id = realloc(ctx->id, size);
        if (id == NULL) {
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_NOMEM,
                       ctx->rec_start, "record %llu at byte %llu: out of "
                       "memory", (unsigned long long) ctx->records,
                       (unsigned long long) ctx->rec_start);
        }

        ctx->id = id;
        ctx->id_size = size;

        if (ctx->rec_size + size > ctx->mem_peak) {
            ctx->mem_peak = ctx->rec_size + size;
        }
    }

    memcpy(ctx->id + ctx->id_len, s, n);
    ctx->id_len += n;
    ctx->id[ctx->id_len] = '\0';

    return QCC_PUSHJSON_OK;
}


/*
 * Copies decoded string bytes to where the current capture goes.  step is
 * 1 if s are input bytes from off on, 0 if they all decode the escape at
 * off: a failure then names the exact byte, however the input was cut.
 */
static int
qcc_pushjson_put(qcc_pushjson_t *ctx, const unsigned char *s, size_t n,
    uint64_t off, unsigned step)
{
    size_t    i;
    unsigned  k;

    switch (ctx->capture) {

    case QCC_PJ_CAP_REC_KEY:
        /* as cJSON's strcmp(): "id", or "id" and a NUL and anything */
        for (i = 0; i < n; i++) {
            k = ctx->idk;
            ctx->idk = (k == 0 && s[i] == 'i') ? 1
                       : (k == 1 && s[i] == 'd') ? 2
                       : (k == 2 && s[i] == '\0') ? 3 : 4;

            if (ctx->idk >= 3) {
                /* decided: back to the fast loop */
                ctx->capture = QCC_PJ_CAP_NONE;

                if (ctx->idk == 3) {
                    ctx->flags |= QCC_PJ_F_ID_KEY;
                }

                break;
            }
        }

        return QCC_PUSHJSON_OK;

    case QCC_PJ_CAP_ID:
        return qcc_pushjson_id_append(ctx, s, n);

    case QCC_PJ_CAP_KEY:
        if (n > QCC_PUSHJSON_KEYS_MAX - ctx->keys_len) {
            off += step * (QCC_PUSHJSON_KEYS_MAX - ctx->keys_len);
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_KEYS, off,
                       "at byte %llu: top-level keys longer than %d bytes "
                       "in total", (unsigned long long) off,
                       QCC_PUSHJSON_KEYS_MAX);
        }

        memcpy(ctx->keys + ctx->keys_len, s, n);
        ctx->keys_len += n;
        return QCC_PUSHJSON_OK;

    case QCC_PJ_CAP_DATE:
        if (n > QCC_PUSHJSON_DATE_MAX - ctx->push_date_len) {
            off += step * (QCC_PUSHJSON_DATE_MAX - ctx->push_date_len);
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_PUSHDATE, off,
                       "at byte %llu: pushDate longer than %d bytes",
                       (unsigned long long) off, QCC_PUSHJSON_DATE_MAX);
        }

        memcpy(ctx->push_date + ctx->push_date_len, s, n);
        ctx->push_date_len += n;
        ctx->push_date[ctx->push_date_len] = '\0';
        return QCC_PUSHJSON_OK;

    case QCC_PJ_CAP_TOTAL_STR:
    case QCC_PJ_CAP_TOTAL_NUM:
        if (n > QCC_PUSHJSON_TOTAL_DIGITS - ctx->num_len) {
            off += step * (QCC_PUSHJSON_TOTAL_DIGITS - ctx->num_len);
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TOTALSIZE, off,
                       "at byte %llu: totalSize longer than %d digits",
                       (unsigned long long) off, QCC_PUSHJSON_TOTAL_DIGITS);
        }

        memcpy(ctx->num + ctx->num_len, s, n);
        ctx->num_len += n;
        return QCC_PUSHJSON_OK;
    }

    return QCC_PUSHJSON_OK;
}


/* A code point from a \u escape, as UTF-8, to the capture. */
static int
qcc_pushjson_put_cp(qcc_pushjson_t *ctx, unsigned cp, uint64_t off)
{
    size_t         n;
    unsigned char  b[4];

    if (ctx->capture == QCC_PJ_CAP_NONE) {
        return QCC_PUSHJSON_OK;
    }

    if (cp < 0x80) {
        b[0] = (unsigned char) cp;
        n = 1;

    } else if (cp < 0x800) {
        b[0] = (unsigned char) (0xc0 | (cp >> 6));
        b[1] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 2;

    } else if (cp < 0x10000) {
        b[0] = (unsigned char) (0xe0 | (cp >> 12));
        b[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 3;

    } else {
        b[0] = (unsigned char) (0xf0 | (cp >> 18));
        b[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 4;
    }

    return qcc_pushjson_put(ctx, b, n, off, 0);
}


/* A top-level key ended: refuse a repeat, note which member follows. */
static int
qcc_pushjson_key_done(qcc_pushjson_t *ctx)
{
    size_t          i, len, klen;
    unsigned char  *key;
    char            name[48];

    key = ctx->keys + ctx->key_start + 2;
    len = ctx->keys_len - ctx->key_start - 2;

    ctx->keys[ctx->key_start] = (unsigned char) (len >> 8);
    ctx->keys[ctx->key_start + 1] = (unsigned char) (len & 0xff);

    for (i = 0; i < ctx->key_start; i += 2 + klen) {
        klen = (size_t) ctx->keys[i] << 8 | ctx->keys[i + 1];

        if (klen != len || memcmp(ctx->keys + i + 2, key, len) != 0) {
            continue;
        }

        /* the key in the reason, printable ASCII only */
        for (klen = 0; klen < len && klen < sizeof(name) - 1; klen++) {
            name[klen] = (key[klen] >= 0x20 && key[klen] < 0x7f)
                         ? (char) key[klen] : '?';
        }
        name[klen] = '\0';

        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_DUPKEY,
                   ctx->key_offset, "at byte %llu: duplicate top-level "
                   "key \"%s\"", (unsigned long long) ctx->key_offset,
                   name);
    }

    if (len == 8 && memcmp(key, "pushDate", 8) == 0) {
        ctx->member = QCC_PJ_M_DATE;

    } else if (len == 9 && memcmp(key, "totalSize", 9) == 0) {
        ctx->member = QCC_PJ_M_TOTAL;

    } else if (len == 6 && memcmp(key, "result", 6) == 0) {
        ctx->member = QCC_PJ_M_RESULT;

    } else {
        ctx->member = QCC_PJ_M_OTHER;
    }

    return QCC_PUSHJSON_OK;
}


/* The digits of totalSize (from a number or a string) are complete. */
static int
qcc_pushjson_total_done(qcc_pushjson_t *ctx, uint64_t off)
{
    size_t    i;
    uint64_t  v;

    if (ctx->num_len == 0
        || (ctx->num[0] == '0' && ctx->num_len > 1))
    {
        goto bad;
    }

    v = 0;

    for (i = 0; i < ctx->num_len; i++) {
        if (ctx->num[i] < '0' || ctx->num[i] > '9') {
            goto bad;
        }

        v = v * 10 + (ctx->num[i] - '0');
    }

    ctx->total_size = v;
    ctx->flags |= QCC_PJ_F_TOTAL;

    if (ctx->records > v) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_COUNT, off,
                   "at byte %llu: totalSize %llu, but %llu records before",
                   (unsigned long long) off, (unsigned long long) v,
                   (unsigned long long) ctx->records);
    }

    return QCC_PUSHJSON_OK;

bad:

    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TOTALSIZE, off,
               "at byte %llu: totalSize is not a non-negative integer",
               (unsigned long long) off);
}


/* A string ended (its closing quote is at off). */
static int
qcc_pushjson_string_done(qcc_pushjson_t *ctx, uint64_t off)
{
    unsigned  capture;

    capture = ctx->capture;
    ctx->capture = QCC_PJ_CAP_NONE;

    switch (capture) {

    case QCC_PJ_CAP_KEY:
        return qcc_pushjson_key_done(ctx);

    case QCC_PJ_CAP_DATE:
        if (ctx->push_date_len == 0) {
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_PUSHDATE, off,
                       "at byte %llu: pushDate is empty",
                       (unsigned long long) off);
        }

        /* exposed as a C string */
        if (memchr(ctx->push_date, '\0', ctx->push_date_len) != NULL) {
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_PUSHDATE, off,
                       "at byte %llu: pushDate contains NUL",
                       (unsigned long long) off);
        }

        ctx->push_date[ctx->push_date_len] = '\0';
        ctx->flags |= QCC_PJ_F_DATE;
        return QCC_PUSHJSON_OK;

    case QCC_PJ_CAP_TOTAL_STR:
        return qcc_pushjson_total_done(ctx, off);

    case QCC_PJ_CAP_REC_KEY:
        if (ctx->idk == 2) {
            ctx->flags |= QCC_PJ_F_ID_KEY;
        }

        return QCC_PUSHJSON_OK;

    case QCC_PJ_CAP_ID:
        ctx->id_state = QCC_PJ_ID_STRING;
        return QCC_PUSHJSON_OK;
    }

    return QCC_PUSHJSON_OK;
}


/* The whole record is in ctx->rec: parse it alone and check its id. */
static int
qcc_pushjson_record_done(qcc_pushjson_t *ctx)
{
    int            rc;
    cJSON         *root, *id;
    unsigned       kind;
    uint64_t       n, off;
    const char    *what, *value;

    n = ctx->records;
    off = ctx->rec_start;

    if (ctx->rec_len > ctx->record_peak) {
        ctx->record_peak = ctx->rec_len;
    }

    root = NULL;

    if (ctx->limits.flags & QCC_PUSHJSON_NO_CJSON) {
        /* the scanner found the first "id" member as it went */
        kind = (ctx->flags & QCC_PJ_F_ID_SEEN) ? ctx->id_state
                                               : QCC_PJ_ID_NONE;
        value = (kind == QCC_PJ_ID_STRING) ? (const char *) ctx->id : NULL;

    } else {
        root = cJSON_ParseWithLength((const char *) ctx->rec, ctx->rec_len);
        if (root == NULL) {
            /* the scanner found it valid: cJSON lacked memory */
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_RECORD_PARSE, off,
                       "record %llu at byte %llu: cJSON cannot parse it",
                       (unsigned long long) n, (unsigned long long) off);
        }

        id = cJSON_GetObjectItemCaseSensitive(root, "id");

        kind = (id == NULL) ? QCC_PJ_ID_NONE
               : (cJSON_IsString(id) && id->valuestring) ? QCC_PJ_ID_STRING
               : QCC_PJ_ID_OTHER;
        value = (kind == QCC_PJ_ID_STRING) ? id->valuestring : NULL;
    }

    if (kind == QCC_PJ_ID_NONE) {
        rc = QCC_PUSHJSON_ERR_ID_MISSING;
        what = "missing string id";

    } else if (kind != QCC_PJ_ID_STRING) {
        rc = QCC_PUSHJSON_ERR_ID_TYPE;
        what = "id is not a string";

    } else if (value[0] == '\0') {
        rc = QCC_PUSHJSON_ERR_ID_EMPTY;
        what = "id is empty";

    } else {
        rc = QCC_PUSHJSON_OK;
        what = "";

        if (ctx->limits.on_record
            && ctx->limits.on_record(ctx->limits.data, n, ctx->rec,
                                     ctx->rec_len, value) != 0)
        {
            rc = QCC_PUSHJSON_ERR_CALLBACK;
            what = "refused by the consumer";
        }
    }

    if (root) {
        cJSON_Delete(root);
    }

    if (rc != QCC_PUSHJSON_OK) {
        return qcc_pushjson_fail(ctx, rc, off, "record %llu at byte %llu: %s",
                                 (unsigned long long) n,
                                 (unsigned long long) off, what);
    }

    ctx->rec_len = 0;

    return QCC_PUSHJSON_OK;
}


/* Appends record bytes; the caller keeps rec_len + n within the cap. */
static int
qcc_pushjson_rec_append(qcc_pushjson_t *ctx, const unsigned char *s,
    size_t n)
{
    size_t          size;
    unsigned char  *rec;

    if (n == 0) {
        return QCC_PUSHJSON_OK;
    }

    if (ctx->rec_len + n > ctx->rec_size) {
        size = ctx->rec_size ? ctx->rec_size : QCC_PJ_REC_MIN;

        while (size < ctx->rec_len + n) {
            size *= 2;
        }

        if (size > ctx->limits.record_max) {
            size = ctx->limits.record_max;
        }

        rec = realloc(ctx->rec, size);
        if (rec == NULL) {
            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_NOMEM,
                       ctx->rec_start, "record %llu at byte %llu: out of "
                       "memory", (unsigned long long) ctx->records,
                       (unsigned long long) ctx->rec_start);
        }

        ctx->rec = rec;
        ctx->rec_size = size;

        if (size + ctx->id_size > ctx->mem_peak) {
            ctx->mem_peak = size + ctx->id_size;
        }
    }

    memcpy(ctx->rec + ctx->rec_len, s, n);
    ctx->rec_len += n;

    return QCC_PUSHJSON_OK;
}


/* The top-level object closed at off. */
static int
qcc_pushjson_top_done(qcc_pushjson_t *ctx, uint64_t off)
{
    unsigned long long  o;

    o = off;

    if (!(ctx->flags & QCC_PJ_F_DATE)) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_PUSHDATE, off,
                   "at byte %llu: missing pushDate", o);
    }

    if (!(ctx->flags & QCC_PJ_F_TOTAL)) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TOTALSIZE, off,
                   "at byte %llu: missing totalSize", o);
    }

    if (!(ctx->flags & QCC_PJ_F_RESULT)) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_RESULT, off,
                   "at byte %llu: missing result", o);
    }

    if (ctx->records != ctx->total_size) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_COUNT, off,
                   "at byte %llu: %llu records, but totalSize %llu", o,
                   (unsigned long long) ctx->records,
                   (unsigned long long) ctx->total_size);
    }

    return QCC_PUSHJSON_OK;
}


static int
qcc_pushjson_hex(unsigned c)
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
 * The length of the valid multibyte UTF-8 sequence at p if it is whole
 * before lim, else 0 (then the byte-wise states decide, and report).
 */
static size_t
qcc_pushjson_utf8_seq(const unsigned char *p, const unsigned char *lim)
{
    unsigned  c, lo, hi;

    c = p[0];

    if (c < 0xc2 || c > 0xf4 || lim - p < 4) {
        return 0;
    }

    if (c <= 0xdf) {
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }

    lo = (c == 0xe0) ? 0xa0 : (c == 0xf0) ? 0x90 : 0x80;
    hi = (c == 0xed) ? 0x9f : (c == 0xf4) ? 0x8f : 0xbf;

    if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80) {
        return 0;
    }

    if (c <= 0xef) {
        return 3;
    }

    return (p[3] & 0xc0) == 0x80 ? 4 : 0;
}


/*
 * Skips the bytes of a string that need no look: printable ASCII except
 * '"' and '\\', and whole valid multibyte UTF-8 sequences.  Returns the
 * first other byte, or lim: the byte-wise states decide what it is, and
 * report it.  With SSE2, 16 bytes at a time, Chinese text included: the
 * strings of a push are short (13 bytes on average) and mix ASCII and
 * 3-byte sequences, and a loop over bytes or sequences mispredicts its
 * exit at nearly each of them.
 */
static const unsigned char *
qcc_pushjson_skip(const unsigned char *p, const unsigned char *lim)
{
    size_t    n;
#if (QCC_PJ_SSE2)
    unsigned  hi, special, lead, cont, want, stop, k;
    __m128i   v, quote, bslash, ctl, f0, e0, ed, c0, x80;

    quote = _mm_set1_epi8('"');
    bslash = _mm_set1_epi8('\\');
    ctl = _mm_set1_epi8(0x1f);
    f0 = _mm_set1_epi8((char) 0xf0);
    e0 = _mm_set1_epi8((char) 0xe0);
    ed = _mm_set1_epi8((char) 0xed);
    c0 = _mm_set1_epi8((char) 0xc0);
    x80 = _mm_set1_epi8((char) 0x80);

    while (lim - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);

        /* one bit a byte: 0x80 and up; '"', '\\' or below 0x20 */
        hi = (unsigned) _mm_movemask_epi8(v);
        special = (unsigned) _mm_movemask_epi8(
                      _mm_or_si128(
                          _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                       _mm_cmpeq_epi8(v, bslash)),
                          _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)));

        if ((hi | special) == 0) {
            p += 16;
            continue;
        }

        k = __builtin_ctz(hi | special);

        if (!(hi & (1u << k))) {
            /* the end of the string, most often */
            return p + k;
        }

        /*
         * The leads E1-EC and EE-EF take any two continuation bytes (no
         * overlong form, no surrogate): where those and only those
         * follow each of them, and every other byte is ASCII, the bytes
         * are good.  Anything else stops the skip at the start of its
         * sequence.
         */
        lead = (unsigned) _mm_movemask_epi8(
                   _mm_cmpeq_epi8(_mm_and_si128(v, f0), e0))
               & ~(unsigned) _mm_movemask_epi8(
                   _mm_or_si128(_mm_cmpeq_epi8(v, e0),
                                _mm_cmpeq_epi8(v, ed)));
        cont = (unsigned) _mm_movemask_epi8(
                   _mm_cmpeq_epi8(_mm_and_si128(v, c0), x80));
        want = lead << 1 | lead << 2;

        stop = special | (hi & ~(lead | cont)) | ((cont ^ want) & 0xffff)
               | (lead & 0xc000);

        if (stop == 0) {
            p += 16;
            continue;
        }

        k = __builtin_ctz(stop);

        if (want & (1u << k)) {
            /* a sequence cut short: its lead, one or two bytes back */
            k -= (lead & (1u << (k - 1))) ? 1 : 2;
        }

        p += k;

        if (*p < 0x80) {
            return p;
        }

        if (k == 0) {
            /* another sequence (2 or 4 bytes, E0, ED), or bad */
            n = qcc_pushjson_utf8_seq(p, lim);
            if (n == 0) {
                return p;
            }

            p += n;
        }
    }
#endif

    while (p < lim) {
        if (qcc_pushjson_plain[*p]) {
            p++;
            continue;
        }

        n = qcc_pushjson_utf8_seq(p, lim);
        if (n == 0) {
            break;
        }

        p += n;
    }

    return p;
}


#define qcc_pj_ws(c)  ((c) == ' ' || (c) == '\n' || (c) == '\r'              \
                       || (c) == '\t')
#define qcc_pj_off(p) (base + (uint64_t) ((p) - chunk))

/*
 * Consumes the byte and goes on in the next state by a direct jump: the
 * indirect jump of the switch is mispredicted on nearly every change of
 * state, and costs more than the rest of the work on a byte.
 */
#define qcc_pj_next(st, label)                                               \
    state = st;                                                              \
    if (++p < lim) {                                                         \
        c = *p;                                                              \
        goto label;                                                          \
    }                                                                        \
    continue


int
qcc_pushjson_feed(qcc_pushjson_t *ctx, const unsigned char *chunk,
    size_t len)
{
    int                   rc, h;
    unsigned              c, d, state;
    uint64_t              base;
    const unsigned char  *p, *q, *end, *lim, *rec_from;

    if (ctx->rc != QCC_PUSHJSON_OK) {
        return ctx->rc;
    }

    state = ctx->state;

    if (state == QCC_PJ_FINISHED) {
        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_STATE, ctx->offset,
                   "at byte %llu: fed after the end",
                   (unsigned long long) ctx->offset);
    }

    base = ctx->offset;
    p = chunk;
    end = chunk + len;
    lim = end;
    rec_from = chunk;

    /* inside a record, stop where it would outgrow the cap */
    if ((ctx->flags & QCC_PJ_F_RECORD)
        && len > ctx->limits.record_max - ctx->rec_len)
    {
        lim = p + (ctx->limits.record_max - ctx->rec_len);
    }

    for ( ;; ) {

        if (p == lim) {
            if (lim == end) {
                break;
            }

            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_RECORD_SIZE,
                       ctx->rec_start, "record %llu at byte %llu: larger "
                       "than %zu bytes", (unsigned long long) ctx->records,
                       (unsigned long long) ctx->rec_start,
                       ctx->limits.record_max);
        }

        c = *p;

        switch (state) {

        case QCC_PJ_BOM0:
            if (c == 0xef) {
                state = QCC_PJ_BOM1;
                p++;
                break;
            }

            state = QCC_PJ_VALUE;
            break;

        case QCC_PJ_BOM1:
        case QCC_PJ_BOM2:
            if (c != (state == QCC_PJ_BOM1 ? 0xbbu : 0xbfu)) {
                return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_SYNTAX,
                           qcc_pj_off(p), "at byte %llu: bad byte order "
                           "mark", (unsigned long long) qcc_pj_off(p));
            }

            state = (state == QCC_PJ_BOM1) ? QCC_PJ_BOM2 : QCC_PJ_VALUE;
            p++;
            break;

        case QCC_PJ_KEY_OR_END:
        case QCC_PJ_KEY:
        key:
            if (c != '"') {
                if (qcc_pj_ws(c)) {
                    qcc_pj_next(state, key);
                }

                if (c == '}' && state == QCC_PJ_KEY_OR_END) {
                    goto close;
                }

                goto syntax;
            }

            if (ctx->depth == 1) {
                if (ctx->keys_len + 2 > QCC_PUSHJSON_KEYS_MAX) {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_KEYS,
                               qcc_pj_off(p), "at byte %llu: top-level keys "
                               "longer than %d bytes in total",
                               (unsigned long long) qcc_pj_off(p),
                               QCC_PUSHJSON_KEYS_MAX);
                }

                ctx->capture = QCC_PJ_CAP_KEY;
                ctx->key_start = ctx->keys_len;
                ctx->key_offset = qcc_pj_off(p);
                ctx->keys_len += 2;

            } else if (ctx->depth == 3
                       && (ctx->flags & (QCC_PJ_F_RECORD | QCC_PJ_F_ID_SEEN))
                          == QCC_PJ_F_RECORD
                       && (ctx->limits.flags & QCC_PUSHJSON_NO_CJSON))
            {
                ctx->capture = QCC_PJ_CAP_REC_KEY;
                ctx->idk = 0;
            }

            ctx->after_str = QCC_PJ_COLON;
            qcc_pj_next(QCC_PJ_STR, str);

        case QCC_PJ_COLON:
        colon:
            if (qcc_pj_ws(c)) {
                qcc_pj_next(QCC_PJ_COLON, colon);
            }

            if (c != ':') {
                goto syntax;
            }

            qcc_pj_next(QCC_PJ_VALUE, value);

        case QCC_PJ_VALUE_OR_END:
        value_or_end:
            if (c == ']') {
                goto close;
            }

            /* fall through */

        case QCC_PJ_VALUE:
        value:
            /* the usual value, a string in a record, gets no other look */
            if (c == '"' && ctx->depth > 2
                && !(ctx->flags & QCC_PJ_F_ID_KEY))
            {
                ctx->after_str = QCC_PJ_AFTER;
                qcc_pj_next(QCC_PJ_STR, str);
            }

            if (qcc_pj_ws(c)) {
                if (state == QCC_PJ_VALUE_OR_END) {
                    qcc_pj_next(QCC_PJ_VALUE_OR_END, value_or_end);
                }

                qcc_pj_next(QCC_PJ_VALUE, value);
            }

            d = ctx->depth;

            /* the value's meaning by where it is */

            if (d == 0) {
                if (c != '{') {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TOP,
                               qcc_pj_off(p), "at byte %llu: the JSON text "
                               "is not an object",
                               (unsigned long long) qcc_pj_off(p));
                }

            } else if (d == 1) {

                switch (ctx->member) {

                case QCC_PJ_M_DATE:
                    if (c != '"') {
                        return qcc_pushjson_fail(ctx,
                                   QCC_PUSHJSON_ERR_PUSHDATE, qcc_pj_off(p),
                                   "at byte %llu: pushDate is not a string",
                                   (unsigned long long) qcc_pj_off(p));
                    }

                    ctx->capture = QCC_PJ_CAP_DATE;
                    break;

                case QCC_PJ_M_TOTAL:
                    if (c == '"') {
                        ctx->capture = QCC_PJ_CAP_TOTAL_STR;

                    } else if (c >= '0' && c <= '9') {
                        ctx->capture = QCC_PJ_CAP_TOTAL_NUM;

                    } else {
                        return qcc_pushjson_fail(ctx,
                                   QCC_PUSHJSON_ERR_TOTALSIZE, qcc_pj_off(p),
                                   "at byte %llu: totalSize is not a "
                                   "non-negative integer",
                                   (unsigned long long) qcc_pj_off(p));
                    }

                    break;

                case QCC_PJ_M_RESULT:
                    if (c != '[') {
                        return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_RESULT,
                                   qcc_pj_off(p), "at byte %llu: result is "
                                   "not an array",
                                   (unsigned long long) qcc_pj_off(p));
                    }

                    ctx->flags |= QCC_PJ_F_IN_RESULT;
                    break;
                }

            } else if (d == 3 && (ctx->flags & QCC_PJ_F_ID_KEY)) {
                /* the first "id" member of the record (native check) */
                ctx->flags &= ~QCC_PJ_F_ID_KEY;
                ctx->flags |= QCC_PJ_F_ID_SEEN;

                if (c == '"') {
                    ctx->capture = QCC_PJ_CAP_ID;
                    ctx->id_len = 0;

                    rc = qcc_pushjson_id_append(ctx, p, 0);
                    if (rc != QCC_PUSHJSON_OK) {
                        return rc;
                    }

                } else {
                    ctx->id_state = QCC_PJ_ID_OTHER;
                }

            } else if (d == 2 && (ctx->flags & QCC_PJ_F_IN_RESULT)) {
                ctx->records++;

                if (c != '{') {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_RECORD,
                               qcc_pj_off(p), "record %llu at byte %llu: "
                               "not an object",
                               (unsigned long long) ctx->records,
                               (unsigned long long) qcc_pj_off(p));
                }

                if ((ctx->flags & QCC_PJ_F_TOTAL)
                    && ctx->records > ctx->total_size)
                {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_COUNT,
                               qcc_pj_off(p), "record %llu at byte %llu: "
                               "more records than totalSize %llu",
                               (unsigned long long) ctx->records,
                               (unsigned long long) qcc_pj_off(p),
                               (unsigned long long) ctx->total_size);
                }

                ctx->flags |= QCC_PJ_F_RECORD;
                ctx->flags &= ~(QCC_PJ_F_ID_KEY | QCC_PJ_F_ID_SEEN);
                ctx->id_state = QCC_PJ_ID_NONE;
                ctx->rec_start = qcc_pj_off(p);
                ctx->rec_len = 0;
                rec_from = p;

                if ((size_t) (end - p) > ctx->limits.record_max) {
                    lim = p + ctx->limits.record_max;
                }
            }

            switch (c) {

            case '{':
            case '[':
                if (d >= ctx->limits.depth_max) {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_DEPTH,
                               qcc_pj_off(p), "at byte %llu: nested deeper "
                               "than %u", (unsigned long long) qcc_pj_off(p),
                               ctx->limits.depth_max);
                }

                ctx->stack[d] = (unsigned char) c;
                ctx->depth = d + 1;

                if (c == '{') {
                    qcc_pj_next(QCC_PJ_KEY_OR_END, key);
                }

                qcc_pj_next(QCC_PJ_VALUE_OR_END, value_or_end);

            case '"':
                ctx->after_str = QCC_PJ_AFTER;
                qcc_pj_next(QCC_PJ_STR, str);

            case '-':
                state = QCC_PJ_NUM_MINUS;
                break;

            case '0':
                state = QCC_PJ_NUM_ZERO;
                goto digit;

            case '1': case '2': case '3': case '4': case '5':
            case '6': case '7': case '8': case '9':
                state = QCC_PJ_NUM_INT;
                goto digit;

            case 't':
                ctx->lit = "true";
                goto lit;

            case 'f':
                ctx->lit = "false";
                goto lit;

            case 'n':
                ctx->lit = "null";
                goto lit;

            default:
                goto syntax;
            }

            p++;
            break;

        lit:
            ctx->lit_len = 1;
            state = QCC_PJ_LIT;
            p++;
            break;

        case QCC_PJ_AFTER:
        after:
            if (qcc_pj_ws(c)) {
                qcc_pj_next(QCC_PJ_AFTER, after);
            }

            if (c == ',') {
                if (ctx->stack[ctx->depth - 1] == '{') {
                    qcc_pj_next(QCC_PJ_KEY, key);
                }

                qcc_pj_next(QCC_PJ_VALUE, value);
            }

            if (c == '}' || c == ']') {
                goto close;
            }

            goto syntax;

        close:
            d = ctx->depth;

            if (ctx->stack[d - 1] != (c == '}' ? '{' : '[')) {
                goto syntax;
            }

            ctx->depth = --d;
            state = QCC_PJ_AFTER;
            p++;

            if (d == 0) {
                state = QCC_PJ_DONE;

                rc = qcc_pushjson_top_done(ctx, qcc_pj_off(p - 1));
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }

            } else if (d == 2 && (ctx->flags & QCC_PJ_F_RECORD)) {
                ctx->flags &= ~QCC_PJ_F_RECORD;

                rc = qcc_pushjson_rec_append(ctx, rec_from, p - rec_from);
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }

                rc = qcc_pushjson_record_done(ctx);
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }

                lim = end;

            } else if (d == 1 && (ctx->flags & QCC_PJ_F_IN_RESULT)) {
                ctx->flags &= ~QCC_PJ_F_IN_RESULT;
                ctx->flags |= QCC_PJ_F_RESULT;
            }

            if (state == QCC_PJ_AFTER && p < lim) {
                c = *p;
                goto after;
            }

            break;

        case QCC_PJ_DONE:
            if (qcc_pj_ws(c)) {
                p++;
                break;
            }

            return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TRAILING,
                       qcc_pj_off(p), "at byte %llu: data after the JSON "
                       "text", (unsigned long long) qcc_pj_off(p));

        case QCC_PJ_STR:
        str:
            /* the hot loop: bytes that need no look */
            q = p;
            p = qcc_pushjson_skip(p, lim);

            if (ctx->capture != QCC_PJ_CAP_NONE && p > q) {
                rc = qcc_pushjson_put(ctx, q, p - q, qcc_pj_off(q), 1);
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }
            }

            if (p == lim) {
                break;
            }

            c = *p;

            if (c == '"') {
                if (ctx->capture != QCC_PJ_CAP_NONE) {
                    rc = qcc_pushjson_string_done(ctx, qcc_pj_off(p));
                    if (rc != QCC_PUSHJSON_OK) {
                        return rc;
                    }
                }

                /*
                 * What follows is nearly always ':"' or ',"', straight
                 * to the value or key it starts; the states see the rest.
                 */
                if (ctx->after_str == QCC_PJ_COLON) {
                    if (lim - p > 2 && p[1] == ':' && p[2] == '"') {
                        p += 2;
                        c = '"';
                        state = QCC_PJ_VALUE;
                        goto value;
                    }

                    qcc_pj_next(QCC_PJ_COLON, colon);
                }

                if (lim - p > 2 && p[1] == ',' && p[2] == '"'
                    && ctx->stack[ctx->depth - 1] == '{')
                {
                    p += 2;
                    c = '"';
                    state = QCC_PJ_KEY;
                    goto key;
                }

                qcc_pj_next(QCC_PJ_AFTER, after);
            }

            if (c == '\\') {
                /*
                 * A one-letter escape that goes nowhere (the push files
                 * escape JSON inside strings): on in the fast loop.
                 */
                if (ctx->capture == QCC_PJ_CAP_NONE && lim - p > 2
                    && qcc_pushjson_esc[p[1]])
                {
                    p += 2;
                    goto str;
                }

                state = QCC_PJ_STR_ESC;
                p++;
                break;
            }

            if (c < 0x20) {
                return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_SYNTAX,
                           qcc_pj_off(p), "at byte %llu: control character "
                           "in a string", (unsigned long long) qcc_pj_off(p));
            }

            if (c >= 0x80) {
                /* the ranges of RFC 3629: no overlong forms, surrogates */
                ctx->u8_lo = 0x80;
                ctx->u8_hi = 0xbf;

                if (c >= 0xc2 && c <= 0xdf) {
                    ctx->u8_need = 1;

                } else if (c >= 0xe0 && c <= 0xef) {
                    ctx->u8_need = 2;

                    if (c == 0xe0) {
                        ctx->u8_lo = 0xa0;

                    } else if (c == 0xed) {
                        ctx->u8_hi = 0x9f;
                    }

                } else if (c >= 0xf0 && c <= 0xf4) {
                    ctx->u8_need = 3;

                    if (c == 0xf0) {
                        ctx->u8_lo = 0x90;

                    } else if (c == 0xf4) {
                        ctx->u8_hi = 0x8f;
                    }

                } else {
                    goto utf8;
                }

                state = QCC_PJ_STR_UTF8;
            }

            if (ctx->capture != QCC_PJ_CAP_NONE) {
                rc = qcc_pushjson_put(ctx, p, 1, qcc_pj_off(p), 1);
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }
            }

            p++;
            break;

        case QCC_PJ_STR_UTF8:
            if (c < ctx->u8_lo || c > ctx->u8_hi) {
                goto utf8;
            }

            if (ctx->capture != QCC_PJ_CAP_NONE) {
                rc = qcc_pushjson_put(ctx, p, 1, qcc_pj_off(p), 1);
                if (rc != QCC_PUSHJSON_OK) {
                    return rc;
                }
            }

            ctx->u8_lo = 0x80;
            ctx->u8_hi = 0xbf;

            if (--ctx->u8_need == 0) {
                state = QCC_PJ_STR;
            }

            p++;
            break;

        case QCC_PJ_STR_ESC:
            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u':
                ctx->hexn = 0;
                ctx->ucode = 0;
                state = QCC_PJ_STR_HEX;
                p++;
                continue;
            default:
                return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_SYNTAX,
                           qcc_pj_off(p), "at byte %llu: bad escape in a "
                           "string", (unsigned long long) qcc_pj_off(p));
            }

            rc = qcc_pushjson_put_cp(ctx, c, qcc_pj_off(p));
            if (rc != QCC_PUSHJSON_OK) {
                return rc;
            }

            state = QCC_PJ_STR;
            p++;
            break;

        case QCC_PJ_STR_HEX:
            h = qcc_pushjson_hex(c);
            if (h < 0) {
                return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_SYNTAX,
                           qcc_pj_off(p), "at byte %llu: bad \\u escape",
                           (unsigned long long) qcc_pj_off(p));
            }

            ctx->ucode = ctx->ucode << 4 | (unsigned) h;

            if (++ctx->hexn < 4) {
                p++;
                break;
            }

            if (ctx->uhigh) {
                if (ctx->ucode < 0xdc00 || ctx->ucode > 0xdfff) {
                    goto surrogate;
                }

                ctx->ucode = 0x10000 + ((ctx->uhigh - 0xd800) << 10)
                             + (ctx->ucode - 0xdc00);
                ctx->uhigh = 0;

            } else if (ctx->ucode >= 0xd800 && ctx->ucode <= 0xdbff) {
                ctx->uhigh = ctx->ucode;
                state = QCC_PJ_STR_LOW_BS;
                p++;
                break;

            } else if (ctx->ucode >= 0xdc00 && ctx->ucode <= 0xdfff) {
                goto surrogate;
            }

            rc = qcc_pushjson_put_cp(ctx, ctx->ucode, qcc_pj_off(p));
            if (rc != QCC_PUSHJSON_OK) {
                return rc;
            }

            state = QCC_PJ_STR;
            p++;
            break;

        case QCC_PJ_STR_LOW_BS:
        case QCC_PJ_STR_LOW_U:
            if (c != (state == QCC_PJ_STR_LOW_BS ? '\\' : 'u')) {
                goto surrogate;
            }

            if (state == QCC_PJ_STR_LOW_BS) {
                state = QCC_PJ_STR_LOW_U;

            } else {
                ctx->hexn = 0;
                ctx->ucode = 0;
                state = QCC_PJ_STR_HEX;
            }

            p++;
            break;

        case QCC_PJ_NUM_MINUS:
            if (c == '0') {
                state = QCC_PJ_NUM_ZERO;

            } else if (c >= '1' && c <= '9') {
                state = QCC_PJ_NUM_INT;

            } else {
                goto syntax;
            }

            p++;
            break;

        case QCC_PJ_NUM_INT:
        num_int:
            if (c >= '0' && c <= '9') {
                goto digit;
            }

            /* fall through */

        case QCC_PJ_NUM_ZERO:
        num_zero:
            if (c == '.' || c == 'e' || c == 'E') {
                if (ctx->capture == QCC_PJ_CAP_TOTAL_NUM) {
                    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TOTALSIZE,
                               qcc_pj_off(p), "at byte %llu: totalSize is "
                               "not an integer",
                               (unsigned long long) qcc_pj_off(p));
                }

                state = (c == '.') ? QCC_PJ_NUM_DOT : QCC_PJ_NUM_E;
                p++;
                break;
            }

            goto number_done;

        case QCC_PJ_NUM_DOT:
            if (c < '0' || c > '9') {
                goto syntax;
            }

            state = QCC_PJ_NUM_FRAC;
            p++;
            break;

        case QCC_PJ_NUM_FRAC:
            if (c >= '0' && c <= '9') {
                p++;
                break;
            }

            if (c == 'e' || c == 'E') {
                state = QCC_PJ_NUM_E;
                p++;
                break;
            }

            goto number_done;

        case QCC_PJ_NUM_E:
            if (c == '+' || c == '-') {
                state = QCC_PJ_NUM_ESIGN;
                p++;
                break;
            }

            /* fall through */

        case QCC_PJ_NUM_ESIGN:
            if (c < '0' || c > '9') {
                goto syntax;
            }

            state = QCC_PJ_NUM_EXP;
            p++;
            break;

        case QCC_PJ_NUM_EXP:
            if (c >= '0' && c <= '9') {
                p++;
                break;
            }

            goto number_done;

        case QCC_PJ_LIT:
            if (c != (unsigned char) ctx->lit[ctx->lit_len]) {
                goto syntax;
            }

            if (ctx->lit[++ctx->lit_len] == '\0') {
                state = QCC_PJ_AFTER;
            }

            p++;
            break;

        default:
            goto syntax;
        }

        continue;

    digit:

        if (ctx->capture == QCC_PJ_CAP_TOTAL_NUM) {
            rc = qcc_pushjson_put(ctx, p, 1, qcc_pj_off(p), 1);
            if (rc != QCC_PUSHJSON_OK) {
                return rc;
            }
        }

        if (state == QCC_PJ_NUM_INT) {
            qcc_pj_next(QCC_PJ_NUM_INT, num_int);
        }

        qcc_pj_next(QCC_PJ_NUM_ZERO, num_zero);

    number_done:

        /* the byte after the number is looked at again */
        state = QCC_PJ_AFTER;

        if (ctx->capture == QCC_PJ_CAP_TOTAL_NUM) {
            ctx->capture = QCC_PJ_CAP_NONE;

            rc = qcc_pushjson_total_done(ctx, qcc_pj_off(p));
            if (rc != QCC_PUSHJSON_OK) {
                return rc;
            }
        }

        goto after;
    }

    if (ctx->flags & QCC_PJ_F_RECORD) {
        rc = qcc_pushjson_rec_append(ctx, rec_from, end - rec_from);
        if (rc != QCC_PUSHJSON_OK) {
            return rc;
        }
    }

    ctx->state = state;
    ctx->offset += len;

    return QCC_PUSHJSON_OK;

syntax:

    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_SYNTAX, qcc_pj_off(p),
               "at byte %llu: unexpected %s", (unsigned long long)
               qcc_pj_off(p), (*p >= 0x20 && *p < 0x7f) ? "character"
                                                         : "byte");

utf8:

    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_UTF8, qcc_pj_off(p),
               "at byte %llu: invalid UTF-8", (unsigned long long)
               qcc_pj_off(p));

surrogate:

    return qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_UTF8, qcc_pj_off(p),
               "at byte %llu: unpaired surrogate in a \\u escape",
               (unsigned long long) qcc_pj_off(p));
}


int
qcc_pushjson_finish(qcc_pushjson_t *ctx)
{
    unsigned  state;

    state = ctx->state;

    if (ctx->rc == QCC_PUSHJSON_OK && state != QCC_PJ_DONE
        && state != QCC_PJ_FINISHED)
    {
        qcc_pushjson_fail(ctx, QCC_PUSHJSON_ERR_TRUNCATED, ctx->offset,
            "at byte %llu: %s", (unsigned long long) ctx->offset,
            (ctx->offset == 0) ? "empty input" : "unexpected end of input");
    }

    ctx->state = QCC_PJ_FINISHED;
    qcc_pushjson_free(ctx);

    return ctx->rc;
}
