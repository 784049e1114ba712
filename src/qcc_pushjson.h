/*
 * Streaming validation of a QCC push file (dd_risk_corp.json, dd_corp.json),
 * nginx-free: fed with plaintext chunks as they come out of the ZIP reader,
 * in one pass and in memory bounded by the largest record (capped) plus a
 * small constant, whatever the file size.
 *
 * What is checked:
 *   - the whole input is one JSON text (RFC 8259) in well-formed UTF-8
 *     (no overlong forms, no surrogates, nothing above U+10FFFF; escaped
 *     \u surrogates must pair); only whitespace may follow it; a UTF-8 BOM
 *     at the very start is skipped (Windows tools write one; cJSON skips it
 *     too);
 *   - it is an object whose keys are unique (decoded, compared bytewise)
 *     and total at most QCC_PUSHJSON_KEYS_MAX bytes (each key counts its
 *     length + 2);
 *   - "pushDate": a string of 1 to QCC_PUSHJSON_DATE_MAX bytes, no NUL;
 *   - "totalSize": a non-negative integer written as plain digits (no sign,
 *     fraction or exponent), at most 15 digits; a string holding such
 *     digits ("4") is accepted too, without leading zeros;
 *   - "result": an array of objects ("records"), each at most record_max
 *     bytes from its '{' to its '}', parsed alone with cJSON, with a
 *     non-empty string "id" (the first "id" member if repeated);
 *   - the number of records equals totalSize (fails as soon as there is
 *     one record too many when totalSize came first);
 *   - nesting at most depth_max containers deep (the top-level object is
 *     depth 1, a record depth 3);
 *   - other top-level members are allowed and validated without being
 *     buffered.
 *
 * Memory: the context (about 1.7 KB, no allocation at init), one record
 * buffer growing by doubling from 4 KB up to record_max, and with
 * QCC_PUSHJSON_NO_CJSON the record's decoded id (64 bytes up, at most the
 * record's size); plus, in cJSON mode, the tree of one record at a time.
 * The scanner keeps its container stack in the context: no recursion.
 * Chunks may split the input anywhere; the verdict, code, offset and
 * reason never depend on where.  No global state: one context per thread.
 */

#ifndef QCC_PUSHJSON_H
#define QCC_PUSHJSON_H

#include <stddef.h>
#include <stdint.h>

#define QCC_PUSHJSON_RECORD_MAX   (1024 * 1024)
#define QCC_PUSHJSON_DEPTH        64
#define QCC_PUSHJSON_DEPTH_LIMIT  256
#define QCC_PUSHJSON_KEYS_MAX     1024
#define QCC_PUSHJSON_DATE_MAX     64
#define QCC_PUSHJSON_TOTAL_DIGITS 15
#define QCC_PUSHJSON_ERRLEN       160


typedef enum {
    QCC_PUSHJSON_OK = 0,
    QCC_PUSHJSON_ERR_SYNTAX,       /* not JSON: unexpected byte, control
                                      byte in a string, bad escape */
    QCC_PUSHJSON_ERR_UTF8,         /* bad UTF-8, unpaired surrogate */
    QCC_PUSHJSON_ERR_TRUNCATED,    /* input ended inside the JSON text */
    QCC_PUSHJSON_ERR_TRAILING,     /* more than whitespace after it */
    QCC_PUSHJSON_ERR_DEPTH,        /* nesting deeper than depth_max */
    QCC_PUSHJSON_ERR_TOP,          /* the JSON text is not an object */
    QCC_PUSHJSON_ERR_DUPKEY,       /* a top-level key repeated */
    QCC_PUSHJSON_ERR_KEYS,         /* top-level keys too long in total */
    QCC_PUSHJSON_ERR_PUSHDATE,     /* pushDate missing, wrong type, bad */
    QCC_PUSHJSON_ERR_TOTALSIZE,    /* totalSize missing, wrong type, bad */
    QCC_PUSHJSON_ERR_RESULT,       /* result missing or not an array */
    QCC_PUSHJSON_ERR_RECORD,       /* a record is not an object */
    QCC_PUSHJSON_ERR_RECORD_SIZE,  /* a record is larger than record_max */
    QCC_PUSHJSON_ERR_RECORD_PARSE, /* cJSON refused a record */
    QCC_PUSHJSON_ERR_ID_MISSING,   /* a record without "id" */
    QCC_PUSHJSON_ERR_ID_TYPE,      /* a record whose "id" is no string */
    QCC_PUSHJSON_ERR_ID_EMPTY,     /* a record whose "id" is "" */
    QCC_PUSHJSON_ERR_COUNT,        /* records != totalSize */
    QCC_PUSHJSON_ERR_CALLBACK,     /* on_record returned non-zero */
    QCC_PUSHJSON_ERR_NOMEM,
    QCC_PUSHJSON_ERR_STATE,        /* fed after finish */
    QCC_PUSHJSON_ERR_LAST
} qcc_pushjson_rc_e;


/*
 * Called once per validated record, in order: n counts from 1, rec/len
 * are the record's bytes from '{' to '}' exactly as in the file, id its
 * decoded "id" (NUL-terminated).  Non-zero stops with ERR_CALLBACK.
 */
typedef int (*qcc_pushjson_record_pt)(void *data, uint64_t n,
    const unsigned char *rec, size_t len, const char *id);


/*
 * limits.flags: QCC_PUSHJSON_NO_CJSON finds each record's first "id" member
 * in the scan itself instead of parsing the record with cJSON: the same
 * verdicts (the fuzz target checks both ways agree), about five times
 * faster.
 */
#define QCC_PUSHJSON_NO_CJSON     0x01

typedef struct {
    size_t                   record_max;   /* 0: QCC_PUSHJSON_RECORD_MAX */
    unsigned                 depth_max;    /* 0: QCC_PUSHJSON_DEPTH, at
                                              most QCC_PUSHJSON_DEPTH_LIMIT */
    unsigned                 flags;
    qcc_pushjson_record_pt   on_record;    /* may be NULL */
    void                    *data;
} qcc_pushjson_limits_t;


/* Treat as opaque, except for the results documented below. */
typedef struct {
    /* results, valid once qcc_pushjson_finish() returned QCC_PUSHJSON_OK */
    uint64_t                 records;      /* records seen so far */
    uint64_t                 total_size;
    char                     push_date[QCC_PUSHJSON_DATE_MAX + 1];
    size_t                   push_date_len;

    /* statistics, valid at any time */
    uint64_t                 offset;       /* bytes consumed */
    size_t                   mem_peak;     /* largest record buffer held */
    size_t                   record_peak;  /* largest record, in bytes */

    /* private */
    qcc_pushjson_limits_t    limits;
    int                      rc;
    uint64_t                 err_offset;
    uint64_t                 key_offset;
    unsigned                 state;
    unsigned                 after_str;    /* state after a string */
    unsigned                 depth;
    unsigned                 member;       /* which top-level member */
    unsigned                 capture;      /* what a string is copied to */
    unsigned                 flags;
    unsigned                 u8_need;
    unsigned char            u8_lo;
    unsigned char            u8_hi;
    unsigned                 hexn;
    unsigned                 ucode;
    unsigned                 uhigh;
    unsigned                 lit_len;
    const char              *lit;
    unsigned                 num_len;      /* totalSize digits so far */
    unsigned                 idk;          /* "id" matched so far */
    unsigned                 id_state;
    unsigned char           *id;           /* the record's id, decoded */
    size_t                   id_len;
    size_t                   id_size;
    uint64_t                 rec_start;
    unsigned char           *rec;
    size_t                   rec_len;
    size_t                   rec_size;
    size_t                   key_start;
    size_t                   keys_len;
    unsigned char            keys[QCC_PUSHJSON_KEYS_MAX];
    unsigned char            num[QCC_PUSHJSON_TOTAL_DIGITS + 1];
    unsigned char            stack[QCC_PUSHJSON_DEPTH_LIMIT];
    char                     err[QCC_PUSHJSON_ERRLEN];
} qcc_pushjson_t;


/* limits may be NULL for the defaults.  Allocates nothing. */
void qcc_pushjson_init(qcc_pushjson_t *ctx,
    const qcc_pushjson_limits_t *limits);

/*
 * Feeds the next len bytes.  Returns QCC_PUSHJSON_OK to ask for more, or
 * an error code, which every later call returns again.
 */
int qcc_pushjson_feed(qcc_pushjson_t *ctx, const unsigned char *chunk,
    size_t len);

/*
 * The end of the input: returns QCC_PUSHJSON_OK if the whole push is
 * valid, or an error code.  Frees the record buffer.
 */
int qcc_pushjson_finish(qcc_pushjson_t *ctx);

/* Frees what the context holds; safe to call more than once. */
void qcc_pushjson_free(qcc_pushjson_t *ctx);

/*
 * The reason of the failure, naming the byte offset, e.g. "record 17 at
 * byte 40213: missing string id" (records count from 1, bytes from 0);
 * "" while there is none.
 */
const char *qcc_pushjson_error(const qcc_pushjson_t *ctx);

/* The byte offset of the failure (its record's start for record errors). */
uint64_t qcc_pushjson_error_offset(const qcc_pushjson_t *ctx);

/* A short stable name of a code ("syntax", "record_size", ...). */
const char *qcc_pushjson_strerror(int rc);

#endif /* QCC_PUSHJSON_H */
