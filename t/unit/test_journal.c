/* Unit tests of the journal codec, replay and files (qcc_journal.c). */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "unit.h"
#include "qcc_journal.h"


#define URL   "http://pro-files.qichacha.com/DdMonitor/x.zip"                \
              "?Expires=1615897140&OSSAccessKeyId=a&Signature=b%2B%3D"
#define URL2  "https://pro-files.qichacha.com/DdMonitor/y.zip?Expires=2"
#define ORDER "DDMON2021031616145803273367"

#define MAX_ORDERS  16


typedef struct {
    qcc_journal_order_t   orders[MAX_ORDERS];
    size_t                n;
    size_t                ignored;
    uint64_t              last_offset;
} table_t;


static char  dir[64];


static qcc_journal_rec_t
order_rec(uint8_t feed, const char *order_no, const char *url,
    const char *pw)
{
    qcc_journal_rec_t  r;

    memset(&r, 0, sizeof(r));
    r.type = QCC_JOURNAL_ORDER;
    r.feed = feed;
    r.source = QCC_JOURNAL_SOURCE_PUSH;
    r.order_no = (const unsigned char *) order_no;
    r.order_no_len = strlen(order_no);
    r.url = (const unsigned char *) url;
    r.url_len = strlen(url);
    r.password = (const unsigned char *) pw;
    r.password_len = strlen(pw);
    r.expires = 1615897140;
    r.received = 1615882000;

    return r;
}


static qcc_journal_rec_t
state_rec(uint8_t feed, const char *order_no, uint8_t state,
    const char *error)
{
    qcc_journal_rec_t  r;

    memset(&r, 0, sizeof(r));
    r.type = QCC_JOURNAL_STATE;
    r.feed = feed;
    r.state = state;
    r.order_no = (const unsigned char *) order_no;
    r.order_no_len = strlen(order_no);
    r.attempts = 3;
    r.next_try = -5;
    r.updated = 1615883000;
    r.error = (const unsigned char *) error;
    r.error_len = error ? strlen(error) : 0;

    return r;
}


static qcc_journal_rec_t
link_rec(uint8_t feed, const char *order_no, const char *url,
    const char *pw)
{
    qcc_journal_rec_t  r;

    r = order_rec(feed, order_no, url, pw);
    r.type = QCC_JOURNAL_LINK;
    r.source = 0;
    r.received = 0;
    r.expires = 1700000000;
    r.updated = 1615884000;

    return r;
}


static int
same_rec(const qcc_journal_rec_t *a, const qcc_journal_rec_t *b)
{
#define SAME_STR(f)                                                          \
    (a->f##_len == b->f##_len                                                \
     && (a->f##_len == 0 || memcmp(a->f, b->f, a->f##_len) == 0))

    return a->seq == b->seq && a->type == b->type && a->feed == b->feed
           && a->source == b->source && a->state == b->state
           && a->attempts == b->attempts && a->expires == b->expires
           && a->received == b->received && a->next_try == b->next_try
           && a->updated == b->updated && SAME_STR(order_no)
           && SAME_STR(url) && SAME_STR(password) && SAME_STR(error);

#undef SAME_STR
}


static size_t
append(unsigned char *buf, size_t off, qcc_journal_rec_t r, uint64_t seq)
{
    size_t  len;

    r.seq = seq;
    CHECK_INT(qcc_journal_encode(&r, buf + off, QCC_JOURNAL_RECORD_MAX,
                                 &len), QCC_JOURNAL_OK);

    return off + len;
}


/* Frames any payload with correct CRCs: the decoder must not trust it. */
static size_t
frame(unsigned char *out, unsigned version, unsigned type, uint64_t seq,
    const unsigned char *payload, size_t n)
{
    size_t    i;
    uint32_t  crc;

    out[0] = 'Q';
    out[1] = 'J';
    out[2] = (unsigned char) version;
    out[3] = (unsigned char) type;

    for (i = 0; i < 4; i++) {
        out[4 + i] = (unsigned char) (n >> (8 * i));
    }

    for (i = 0; i < 8; i++) {
        out[8 + i] = (unsigned char) (seq >> (8 * i));
    }

    crc = crc32(0, payload, n);
    for (i = 0; i < 4; i++) {
        out[16 + i] = (unsigned char) (crc >> (8 * i));
    }

    crc = crc32(0, out, 20);
    for (i = 0; i < 4; i++) {
        out[20 + i] = (unsigned char) (crc >> (8 * i));
    }

    memcpy(out + 24, payload, n);

    return 24 + n;
}


static int
table_add(void *data, const qcc_journal_rec_t *rec, uint64_t offset)
{
    size_t                i;
    table_t              *t = data;
    qcc_journal_order_t  *o;

    t->last_offset = offset;

    for (i = 0; i < t->n; i++) {
        o = &t->orders[i];

        if (o->feed == rec->feed && o->order_no_len == rec->order_no_len
            && memcmp(o->order_no, rec->order_no, rec->order_no_len) == 0)
        {
            if (!qcc_journal_fold(o, rec)) {
                t->ignored++;
            }

            return 0;
        }
    }

    if (t->n == MAX_ORDERS) {
        return 1;
    }

    o = &t->orders[t->n];
    memset(o, 0, sizeof(*o));

    if (qcc_journal_fold(o, rec)) {
        t->n++;

    } else {
        t->ignored++;
    }

    return 0;
}


static void
test_round_trip(void)
{
    size_t             len, used, i;
    unsigned char      buf[QCC_JOURNAL_RECORD_MAX];
    unsigned char      buf2[QCC_JOURNAL_RECORD_MAX];
    qcc_journal_rec_t  recs[4], d;

    recs[0] = order_rec(QCC_JOURNAL_FEED_RISK, ORDER, URL, "p@ss word~");
    recs[0].source = QCC_JOURNAL_SOURCE_RECONCILE;
    recs[1] = state_rec(QCC_JOURNAL_FEED_CORP, "A", QCC_JOURNAL_FAILED,
                        "HTTP 403 from upstream");
    recs[2] = state_rec(QCC_JOURNAL_FEED_RISK, ORDER,
                        QCC_JOURNAL_DELIVERED, NULL);
    recs[3] = link_rec(QCC_JOURNAL_FEED_CORP, "x_-9", URL2, " ");

    recs[1].attempts = 0xfffffffe;
    recs[1].next_try = INT64_MAX;
    recs[2].updated = INT64_MIN;

    for (i = 0; i < 4; i++) {
        recs[i].seq = 0x0102030405060708ULL + i;

        CHECK_INT(qcc_journal_encode(&recs[i], buf, sizeof(buf), &len),
                  QCC_JOURNAL_OK);
        CHECK_INT(len, qcc_journal_size(&recs[i]));

        CHECK_INT(qcc_journal_decode(buf, len, &d, &used), QCC_JOURNAL_OK);
        CHECK_INT(used, len);
        CHECK(same_rec(&d, &recs[i]));

        /* with bytes after it: only the record is consumed */
        memcpy(buf2, buf, len);
        buf2[len] = 'Q';
        CHECK_INT(qcc_journal_decode(buf2, len + 1, &d, &used),
                  QCC_JOURNAL_OK);
        CHECK_INT(used, len);

        /* decoded, it encodes to the same bytes */
        CHECK_INT(qcc_journal_encode(&d, buf2, sizeof(buf2), &used),
                  QCC_JOURNAL_OK);
        CHECK_MEM(buf2, used, buf, len);

        /* too small a buffer */
        CHECK_INT(qcc_journal_encode(&recs[i], buf, len - 1, &used),
                  QCC_JOURNAL_NOSPACE);
    }

    /* the largest records fit QCC_JOURNAL_RECORD_MAX */
    {
        unsigned char  on[64], url[2048], pw[128];

        memset(on, 'Z', sizeof(on));
        memcpy(url, "http://", 7);
        memset(url + 7, 'u', sizeof(url) - 7);
        memset(pw, '~', sizeof(pw));

        d = order_rec(1, "x", "http://x", "p");
        d.order_no = on;
        d.order_no_len = 64;
        d.url = url;
        d.url_len = 2048;
        d.password = pw;
        d.password_len = 128;
        d.seq = UINT64_MAX;

        CHECK_INT(qcc_journal_encode(&d, buf, sizeof(buf), &len),
                  QCC_JOURNAL_OK);
        CHECK_INT(len, 24 + 1 + 1 + 1 + 64 + 2 + 2048 + 1 + 128 + 16);
        CHECK_INT(qcc_journal_decode(buf, len, &recs[0], &used),
                  QCC_JOURNAL_OK);
        CHECK(same_rec(&d, &recs[0]));
    }
}


/* The byte format of qcc_journal.h, byte for byte. */
static void
test_format(void)
{
    size_t             len;
    unsigned char      buf[256];
    qcc_journal_rec_t  r;

    static const unsigned char  payload[] = {
        0x01,                                   /* feed dd_corp_monitor */
        0x04,                                   /* state failed */
        0x02, 'A', 'b',                         /* orderNo */
        0x03, 0x00, 0x00, 0x00,                 /* attempts */
        0x10, 0, 0, 0, 0, 0, 0, 0,              /* next_try 16 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* updated -1 */
        0x03, 'a', '?', '?'                     /* error "a\"\n" made safe */
    };

    unsigned char  expect[256];
    size_t         elen;

    memset(&r, 0, sizeof(r));
    r.type = QCC_JOURNAL_STATE;
    r.feed = QCC_JOURNAL_FEED_CORP;
    r.state = QCC_JOURNAL_FAILED;
    r.order_no = (const unsigned char *) "Ab";
    r.order_no_len = 2;
    r.attempts = 3;
    r.next_try = 16;
    r.updated = -1;
    r.error = (const unsigned char *) "a\"\n";
    r.error_len = 3;
    r.seq = 0x1122334455667788ULL;

    CHECK_INT(qcc_journal_encode(&r, buf, sizeof(buf), &len),
              QCC_JOURNAL_OK);

    elen = frame(expect, 1, QCC_JOURNAL_STATE, r.seq, payload,
                 sizeof(payload));
    CHECK_MEM(buf, len, expect, elen);

    /* the header fields at their offsets */
    CHECK_MEM(buf, 4, "QJ\x01\x02", 4);
    CHECK_MEM(buf + 4, 4, "\x1d\x00\x00\x00", 4);
    CHECK_MEM(buf + 8, 8, "\x88\x77\x66\x55\x44\x33\x22\x11", 8);
    CHECK_INT(buf[16] | buf[17] << 8 | buf[18] << 16
              | (uint32_t) buf[19] << 24,
              crc32(0, payload, sizeof(payload)));
}


typedef struct {
    const char  *what;
    int          version;
    int          type;
    uint64_t     seq;
    const char  *payload;
    size_t       n;
    int          rc;
} frame_case_t;


#define P(s)  s, sizeof(s) - 1


static void
test_untrusted(void)
{
    size_t             i, len, used;
    unsigned char      buf[8192];
    qcc_journal_rec_t  d;

    static const unsigned char  zeros[4200];

    static const frame_case_t  cases[] = {
        { "valid state", 1, 2, 1,
          P("\x00\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_OK },
        { "trailing byte", 1, 2, 1,
          P("\x00\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00" "x"), QCC_JOURNAL_CORRUPT },
        { "error length past the end", 1, 2, 1,
          P("\x00\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x05" "ab"), QCC_JOURNAL_CORRUPT },
        { "short ints", 1, 2, 1, P("\x00\x00\x01Z\x00\x00"),
          QCC_JOURNAL_CORRUPT },
        { "feed 2", 1, 2, 1,
          P("\x02\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_CORRUPT },
        { "state 5", 1, 2, 1,
          P("\x00\x05\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_CORRUPT },
        { "orderNo empty", 1, 2, 1,
          P("\x00\x00\x00\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_CORRUPT },
        { "orderNo '/'", 1, 2, 1,
          P("\x00\x00\x01/\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_CORRUPT },
        { "orderNo 255 long", 1, 2, 1,
          P("\x00\x00\xffZ\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x00"), QCC_JOURNAL_CORRUPT },
        { "error with '\"'", 1, 2, 1,
          P("\x00\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x01\""), QCC_JOURNAL_CORRUPT },
        { "error with NUL", 1, 2, 1,
          P("\x00\x00\x01Z\x00\x00\x00\x00" "\0\0\0\0\0\0\0\0"
            "\0\0\0\0\0\0\0\0" "\x01\x00"), QCC_JOURNAL_CORRUPT },
        { "valid order", 1, 1, 1,
          P("\x00\x01\x01Z\x08\x00http://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_OK },
        { "source 2", 1, 1, 1,
          P("\x00\x02\x01Z\x08\x00http://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "url with space", 1, 1, 1,
          P("\x00\x01\x01Z\x08\x00http:/ x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "url longer than payload", 1, 1, 1,
          P("\x00\x01\x01Z\xff\xffhttp://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "password empty", 1, 1, 1,
          P("\x00\x01\x01Z\x08\x00http://x\x00"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "password with TAB", 1, 1, 1,
          P("\x00\x01\x01Z\x08\x00http://x\x01\t"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "order as link", 1, 3, 1,
          P("\x00\x01\x01Z\x08\x00http://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "valid link", 1, 3, 1,
          P("\x01\x01Z\x08\x00http://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_OK },
        { "type 0", 1, 0, 1, P("\x00"), QCC_JOURNAL_CORRUPT },
        { "type 4", 1, 4, 1, P("\x00"), QCC_JOURNAL_CORRUPT },
        { "seq 0", 1, 3, 0,
          P("\x01\x01Z\x08\x00http://x\x01p"
            "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"), QCC_JOURNAL_CORRUPT },
        { "empty payload", 1, 2, 1, "", 0, QCC_JOURNAL_CORRUPT },
        { "version 2", 2, 2, 1, P("anything"), QCC_JOURNAL_UNSUPPORTED },
        { "version 0", 0, 2, 1, P("anything"), QCC_JOURNAL_UNSUPPORTED },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = frame(buf, cases[i].version, cases[i].type, cases[i].seq,
                    (const unsigned char *) cases[i].payload, cases[i].n);

        if (qcc_journal_decode(buf, len, &d, &used) != cases[i].rc) {
            fprintf(stderr, "frame case \"%s\"\n", cases[i].what);
        }

        CHECK_INT(qcc_journal_decode(buf, len, &d, &used), cases[i].rc);
    }

    /* a payload length over the bound, with a good header CRC */
    len = frame(buf, 1, 2, 1, zeros, 4097);
    CHECK_INT(qcc_journal_decode(buf, len, &d, &used), QCC_JOURNAL_CORRUPT);

    /* a huge length with a good header CRC: no read past the buffer */
    len = frame(buf, 1, 2, 1, (const unsigned char *) "x", 1);
    buf[4] = 0xff;
    buf[5] = 0xff;
    buf[6] = 0xff;
    buf[7] = 0x7f;
    {
        uint32_t  crc = crc32(0, buf, 20);

        buf[20] = crc;
        buf[21] = crc >> 8;
        buf[22] = crc >> 16;
        buf[23] = crc >> 24;
    }
    CHECK_INT(qcc_journal_decode(buf, len, &d, &used), QCC_JOURNAL_CORRUPT);

    /* short tails */
    CHECK_INT(qcc_journal_decode((const unsigned char *) "", 0, &d, &used),
              QCC_JOURNAL_NEED_MORE);
    CHECK_INT(qcc_journal_decode((const unsigned char *) "Q", 1, &d, &used),
              QCC_JOURNAL_NEED_MORE);
    CHECK_INT(qcc_journal_decode((const unsigned char *) "QJ\x05", 3, &d,
                                 &used), QCC_JOURNAL_NEED_MORE);
    CHECK_INT(qcc_journal_decode((const unsigned char *) "\0\0\0", 3, &d,
                                 &used), QCC_JOURNAL_CORRUPT);
    CHECK_INT(qcc_journal_decode((const unsigned char *) "Qx", 2, &d,
                                 &used), QCC_JOURNAL_CORRUPT);
    memset(buf, 0, 100);
    CHECK_INT(qcc_journal_decode(buf, 100, &d, &used), QCC_JOURNAL_CORRUPT);
}


static void
test_invalid_encode(void)
{
    size_t             i, len;
    unsigned char      buf[QCC_JOURNAL_RECORD_MAX];
    qcc_journal_rec_t  r[24];
    size_t             n = 0;
    char               long_url[2100], long_pw[140], long_on[70];

    memset(long_url, 'a', sizeof(long_url));
    memcpy(long_url, "http://", 7);
    long_url[2049] = '\0';
    memset(long_pw, 'p', sizeof(long_pw));
    long_pw[129] = '\0';
    memset(long_on, 'o', sizeof(long_on));
    long_on[65] = '\0';

    r[n] = order_rec(2, ORDER, URL, "pw"); n++;
    r[n] = order_rec(0, "", URL, "pw"); n++;
    r[n] = order_rec(0, "a b", URL, "pw"); n++;
    r[n] = order_rec(0, long_on, URL, "pw"); n++;
    r[n] = order_rec(0, ORDER, "", "pw"); n++;
    r[n] = order_rec(0, ORDER, "http://a b", "pw"); n++;
    r[n] = order_rec(0, ORDER, long_url, "pw"); n++;
    r[n] = order_rec(0, ORDER, URL, ""); n++;
    r[n] = order_rec(0, ORDER, URL, "\x7f"); n++;
    r[n] = order_rec(0, ORDER, URL, long_pw); n++;
    r[n] = order_rec(0, ORDER, URL, "pw"); r[n].source = 2; n++;
    r[n] = order_rec(0, ORDER, URL, "pw"); r[n].type = 0; n++;
    r[n] = order_rec(0, ORDER, URL, "pw"); r[n].type = 4; n++;
    r[n] = state_rec(0, ORDER, 5, NULL); n++;
    r[n] = state_rec(0, ORDER, 0, NULL); r[n].error_len = 3; n++;
    r[n] = link_rec(0, ORDER, URL, ""); n++;
    r[n] = link_rec(1, "", URL, "x"); n++;

    for (i = 0; i < n; i++) {
        r[i].seq = 1;
        CHECK_INT(qcc_journal_size(&r[i]), 0);
        CHECK_INT(qcc_journal_encode(&r[i], buf, sizeof(buf), &len),
                  QCC_JOURNAL_INVALID);
    }

    /* seq 0 is refused too */
    r[0] = order_rec(0, ORDER, URL, "pw");
    CHECK(qcc_journal_size(&r[0]) > 0);
    CHECK_INT(qcc_journal_encode(&r[0], buf, sizeof(buf), &len),
              QCC_JOURNAL_INVALID);

    /* a long, dirty error text is cut and cleaned, not refused */
    {
        char               err[300];
        qcc_journal_rec_t  d;

        memset(err, '\\', sizeof(err));
        err[0] = '\xff';
        err[199] = 'z';
        r[0] = state_rec(0, ORDER, QCC_JOURNAL_FAILED, NULL);
        r[0].error = (const unsigned char *) err;
        r[0].error_len = sizeof(err);
        r[0].seq = 9;

        CHECK_INT(qcc_journal_encode(&r[0], buf, sizeof(buf), &len),
                  QCC_JOURNAL_OK);
        CHECK_INT(qcc_journal_decode(buf, len, &d, &i), QCC_JOURNAL_OK);
        CHECK_INT(d.error_len, QCC_JOURNAL_ERROR_MAX);
        CHECK(d.error[0] == '?' && d.error[1] == '?' && d.error[199] == 'z');
    }
}


/* Three records; the tests cut and damage them. */
static size_t
three(unsigned char *buf, size_t *start)
{
    size_t  off;

    off = 0;
    start[0] = off;
    off = append(buf, off, order_rec(0, ORDER, URL, "secret pw"), 1);
    start[1] = off;
    off = append(buf, off, state_rec(0, ORDER, QCC_JOURNAL_DOWNLOADING,
                                     "timeout"), 2);
    start[2] = off;
    off = append(buf, off, link_rec(0, ORDER, URL2, "pw2"), 3);
    start[3] = off;

    return off;
}


static void
test_torn_tail(void)
{
    int                   rc;
    size_t                len, cut, start[4];
    unsigned char         buf[3 * QCC_JOURNAL_RECORD_MAX];
    qcc_journal_replay_t  r;

    len = three(buf, start);

    rc = qcc_journal_replay_buf(buf, len, NULL, NULL, &r);
    CHECK_INT(rc, QCC_JOURNAL_OK);
    CHECK_INT(r.valid, len);
    CHECK_INT(r.records, 3);
    CHECK_INT(r.last_seq, 3);
    CHECK_INT(r.size, len);

    /* every cut inside the last record is a torn tail */
    for (cut = start[2] + 1; cut < len; cut++) {
        rc = qcc_journal_replay_buf(buf, cut, NULL, NULL, &r);

        if (rc != QCC_JOURNAL_NEED_MORE || r.valid != start[2]
            || r.records != 2)
        {
            fprintf(stderr, "cut at %zu: rc %d valid %llu\n", cut, rc,
                    (unsigned long long) r.valid);
        }

        CHECK_INT(rc, QCC_JOURNAL_NEED_MORE);
        CHECK_INT(r.valid, start[2]);
        CHECK_INT(r.records, 2);
        CHECK_INT(r.last_seq, 2);
    }

    /* a cut at a record boundary is a clean end */
    CHECK_INT(qcc_journal_replay_buf(buf, start[2], NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(qcc_journal_replay_buf(buf, 0, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 0);

    /* zeros after the records (room, or a crash that extended the file) */
    memset(buf + len, 0, 512);
    CHECK_INT(qcc_journal_replay_buf(buf, len + 512, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.valid, len);
    CHECK_INT(r.records, 3);
    CHECK_INT(r.size, len + 512);
}


/* The room after the records: zeros written ahead of the appends. */

static void
test_room(void)
{
    int                   rc;
    size_t                len, cut, last, start[4];
    unsigned char         buf[4 * QCC_JOURNAL_RECORD_MAX];
    unsigned char         room[4 * QCC_JOURNAL_RECORD_MAX];
    qcc_journal_replay_t  r;

    len = three(buf, start);
    memset(buf + len, 0, sizeof(buf) - len);

    /* nothing but room, of any length: an empty journal */
    memset(room, 0, sizeof(room));
    CHECK_INT(qcc_journal_replay_buf(room, 1, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(qcc_journal_replay_buf(room, 23, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(qcc_journal_replay_buf(room, sizeof(room), NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.valid, 0);
    CHECK_INT(r.records, 0);

    /* records, then room shorter than a header or longer than a record */
    CHECK_INT(qcc_journal_replay_buf(buf, len + 7, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.valid, len);
    CHECK_INT(qcc_journal_replay_buf(buf, sizeof(buf), NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.valid, len);
    CHECK_INT(r.records, 3);

    /* an append torn anywhere in the room: the last record is dropped
     * (a cut in the zeros it ends with leaves it whole) */
    for (last = len; buf[last - 1] == 0; last--) { /* void */ }

    for (cut = start[2] + 1; cut < last; cut++) {
        memcpy(room, buf, cut);
        memset(room + cut, 0, sizeof(room) - cut);

        rc = qcc_journal_replay_buf(room, sizeof(room), NULL, NULL, &r);

        if (rc != QCC_JOURNAL_NEED_MORE || r.valid != start[2]) {
            fprintf(stderr, "cut at %zu: rc %d valid %llu\n", cut, rc,
                    (unsigned long long) r.valid);
        }

        CHECK_INT(rc, QCC_JOURNAL_NEED_MORE);
        CHECK_INT(r.valid, start[2]);
        CHECK_INT(r.records, 2);
    }

    /* a record zeroed in the middle (a page lost in a crash): skipped */
    memcpy(room, buf, sizeof(room));
    memset(room + start[1], 0, start[2] - start[1]);
    CHECK_INT(qcc_journal_replay_buf(room, sizeof(room), NULL, NULL, &r),
              QCC_JOURNAL_CORRUPT);
    CHECK_INT(r.valid, start[1]);
    CHECK_INT(r.resync, start[2]);

    /* a damaged header before the room is no torn append */
    memcpy(room, buf, sizeof(room));
    room[start[2] + 5] ^= 0x40;
    CHECK_INT(qcc_journal_replay_buf(room, sizeof(room), NULL, NULL, &r),
              QCC_JOURNAL_CORRUPT);
    CHECK_INT(r.valid, start[2]);
    CHECK_INT(r.resync, 0);
}


static void
test_flipped(void)
{
    int                   rc, bit;
    size_t                len, pos, rec, start[4], bad;
    unsigned char         buf[3 * QCC_JOURNAL_RECORD_MAX];
    qcc_journal_replay_t  r;

    len = three(buf, start);
    bad = 0;

    for (pos = 0; pos < len; pos++) {
        rec = (pos >= start[2]) ? 2 : (pos >= start[1]) ? 1 : 0;

        for (bit = 0; bit < 8; bit++) {
            buf[pos] ^= (unsigned char) (1 << bit);

            rc = qcc_journal_replay_buf(buf, len, NULL, NULL, &r);

            if (rc != QCC_JOURNAL_CORRUPT || r.valid != start[rec]
                || r.records != rec
                || r.resync != (rec < 2 ? start[rec + 1] : 0))
            {
                if (bad++ < 5) {
                    fprintf(stderr, "flip %zu.%d: rc %d valid %llu "
                            "resync %llu\n", pos, bit, rc,
                            (unsigned long long) r.valid,
                            (unsigned long long) r.resync);
                }
            }

            buf[pos] ^= (unsigned char) (1 << bit);
        }
    }

    CHECK_INT(bad, 0);

    /* and untouched, it all replays */
    CHECK_INT(qcc_journal_replay_buf(buf, len, NULL, NULL, &r),
              QCC_JOURNAL_OK);
}


static int
stop_at_two(void *data, const qcc_journal_rec_t *rec, uint64_t offset)
{
    (void) data;
    (void) offset;

    return rec->seq == 2;
}


static void
test_fold(void)
{
    int                   rc;
    size_t                off, start[4];
    unsigned char         buf[12 * QCC_JOURNAL_RECORD_MAX];
    table_t               t;
    qcc_journal_replay_t  r;
    qcc_journal_order_t  *o;

    off = three(buf, start);
    /* another feed, same orderNo: another order */
    off = append(buf, off, order_rec(1, ORDER, URL, "corp"), 4);
    /* a repeated push: ignored */
    off = append(buf, off, order_rec(0, ORDER, URL2, "other"), 5);
    /* an orphan state: ignored */
    off = append(buf, off, state_rec(0, "NOPE", 3, NULL), 6);
    off = append(buf, off, state_rec(1, ORDER, QCC_JOURNAL_DELIVERED,
                                     NULL), 7);

    memset(&t, 0, sizeof(t));
    rc = qcc_journal_replay_buf(buf, off, table_add, &t, &r);
    CHECK_INT(rc, QCC_JOURNAL_OK);
    CHECK_INT(r.records, 7);
    CHECK_INT(t.n, 2);
    CHECK_INT(t.ignored, 2);
    CHECK_INT(t.last_offset, off - qcc_journal_size(
                  &(qcc_journal_rec_t) { .type = QCC_JOURNAL_STATE,
                      .order_no = (const unsigned char *) ORDER,
                      .order_no_len = sizeof(ORDER) - 1 }));

    o = &t.orders[0];
    CHECK_INT(o->feed, 0);
    CHECK_INT(o->state, QCC_JOURNAL_DOWNLOADING);
    CHECK_INT(o->attempts, 3);
    CHECK_INT(o->next_try, -5);
    CHECK_INT(o->received, 1615882000);
    CHECK_INT(o->updated, 1615884000);
    CHECK_INT(o->expires, 1700000000);
    CHECK_INT(o->seq, 3);
    CHECK_MEM(o->url, o->url_len, URL2, sizeof(URL2) - 1);
    CHECK_MEM(o->password, o->password_len, "pw2", 3);
    CHECK_MEM(o->error, o->error_len, "timeout", 7);

    o = &t.orders[1];
    CHECK_INT(o->feed, 1);
    CHECK_INT(o->state, QCC_JOURNAL_DELIVERED);
    CHECK_MEM(o->password, o->password_len, "corp", 4);
    CHECK_INT(o->error_len, 0);

    /* the handler stops the replay */
    memset(&t, 0, sizeof(t));
    rc = qcc_journal_replay_buf(buf, off, stop_at_two, NULL, &r);
    CHECK_INT(rc, QCC_JOURNAL_STOPPED);
    CHECK_INT(r.records, 1);
    CHECK_INT(r.valid, start[1]);

    /* a snapshot of an order folds back into the same order */
    {
        size_t               len, used;
        unsigned char        snap[2 * QCC_JOURNAL_RECORD_MAX];
        qcc_journal_rec_t    a, b, d;
        qcc_journal_order_t  copy;

        o = &t.orders[0];
        memset(&t, 0, sizeof(t));
        qcc_journal_replay_buf(buf, off, table_add, &t, &r);

        qcc_journal_order_records(o, &a, &b);
        a.seq = 100;
        b.seq = 101;
        CHECK_INT(qcc_journal_encode(&a, snap, sizeof(snap), &len),
                  QCC_JOURNAL_OK);
        CHECK_INT(qcc_journal_encode(&b, snap + len, sizeof(snap) - len,
                                     &used), QCC_JOURNAL_OK);

        memset(&copy, 0, sizeof(copy));
        CHECK_INT(qcc_journal_decode(snap, len, &d, &used), QCC_JOURNAL_OK);
        CHECK_INT(qcc_journal_fold(&copy, &d), 1);
        CHECK_INT(qcc_journal_decode(snap + len, sizeof(snap) - len, &d,
                                     &used), QCC_JOURNAL_OK);
        CHECK_INT(qcc_journal_fold(&copy, &d), 1);

        copy.seq = o->seq;
        CHECK(memcmp(&copy, o, sizeof(copy)) == 0);

        /* an ORDER for a known order, and a mismatched record: no-ops */
        CHECK_INT(qcc_journal_fold(&copy, &a), 0);
        b.feed = 1;
        CHECK_INT(qcc_journal_fold(&copy, &b), 0);
        b.feed = 0;
        b.order_no_len--;
        CHECK_INT(qcc_journal_fold(&copy, &b), 0);
        CHECK(memcmp(&copy, o, sizeof(copy)) == 0);
    }
}


/* Compaction's iterator over a table. */
typedef struct {
    table_t   *t;
    size_t     i;
    int        half;
    int        fail_at;
    int        calls;
} snap_t;


static int
snap_next(void *data, qcc_journal_rec_t *rec)
{
    snap_t             *s = data;
    qcc_journal_rec_t   a, b;

    if (++s->calls == s->fail_at) {
        return -1;
    }

    if (s->i == s->t->n) {
        return 0;
    }

    qcc_journal_order_records(&s->t->orders[s->i], &a, &b);

    *rec = s->half ? b : a;

    if (s->half) {
        s->i++;
    }

    s->half = !s->half;

    return 1;
}


static int
bad_next(void *data, qcc_journal_rec_t *rec)
{
    int  *n = data;

    if ((*n)++ == 0) {
        *rec = order_rec(0, "bad order", URL, "pw");
        return 1;
    }

    return 0;
}


static off_t
file_size(const char *path)
{
    struct stat  st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}


static int
file_mode(const char *path)
{
    struct stat  st;

    return stat(path, &st) == 0 ? (int) (st.st_mode & 07777) : -1;
}


static void
test_files(void)
{
    int                   fd, rc, err, i;
    char                  path[128], tmp[160];
    size_t                len, off, start[4];
    uint64_t              seq;
    unsigned char         buf[16 * QCC_JOURNAL_RECORD_MAX];
    table_t               t, t2;
    snap_t                s;
    qcc_journal_pos_t     pos;
    qcc_journal_replay_t  r;

    snprintf(path, sizeof(path), "%s/journal", dir);
    snprintf(tmp, sizeof(tmp), "%s/journal.tmp", dir);

    /* a missing journal is an empty one */
    CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 0);

    umask(0);
    fd = qcc_journal_open(path, (uid_t) -1, (gid_t) -1, &err);
    umask(022);
    CHECK(fd >= 0);
    CHECK_INT(file_mode(path), 0600);

    len = three(buf, start);
    memset(&pos, 0, sizeof(pos));

    /* one record, then the two others as one group, into room made ahead */
    CHECK_INT(qcc_journal_write(fd, &pos, buf, start[1], &err),
              QCC_JOURNAL_OK);
    CHECK_INT(file_size(path), QCC_JOURNAL_ROOM);
    CHECK_INT(pos.end, start[1]);
    CHECK_INT(pos.size, QCC_JOURNAL_ROOM);
    CHECK_INT(qcc_journal_write(fd, &pos, buf + start[1], len - start[1],
                                &err), QCC_JOURNAL_OK);
    CHECK_INT(file_size(path), QCC_JOURNAL_ROOM);
    CHECK_INT(pos.end, len);

    memset(&t, 0, sizeof(t));
    CHECK_INT(qcc_journal_replay_path(path, table_add, &t, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 3);
    CHECK_INT(r.valid, len);
    CHECK_INT(r.size, QCC_JOURNAL_ROOM);
    CHECK_INT(t.n, 1);

    /* a torn append: replay stops before it, truncate drops it */
    CHECK_INT(qcc_journal_write(fd, &pos, buf, 30, &err), QCC_JOURNAL_OK);
    CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
              QCC_JOURNAL_NEED_MORE);
    CHECK_INT(r.valid, len);
    CHECK_INT(r.size, QCC_JOURNAL_ROOM);
    CHECK_INT(qcc_journal_truncate(fd, r.valid, &err), QCC_JOURNAL_OK);
    CHECK_INT(file_size(path), len);

    /* a writer that was past the cut finds the end again from the start */
    off = append(buf, 0, state_rec(0, ORDER, QCC_JOURNAL_UNPACKING, NULL),
                 4);
    CHECK_INT(qcc_journal_write(fd, &pos, buf, off, &err), QCC_JOURNAL_OK);
    CHECK_INT(pos.end, len + off);
    CHECK_INT(file_size(path), QCC_JOURNAL_ROOM);
    CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 4);
    CHECK_INT(r.last_seq, 4);

    /* two writers (two workers): each walks past what the other wrote */
    {
        int                fd2;
        size_t             o1, o2;
        qcc_journal_pos_t  pos2;
        unsigned char      b1[QCC_JOURNAL_RECORD_MAX];
        unsigned char      b2[QCC_JOURNAL_RECORD_MAX];

        fd2 = qcc_journal_open(path, (uid_t) -1, (gid_t) -1, &err);
        CHECK(fd2 >= 0);
        memset(&pos2, 0, sizeof(pos2));

        o1 = append(b1, 0, state_rec(0, ORDER, QCC_JOURNAL_DOWNLOADING,
                                     "w2"), 5);
        o2 = append(b2, 0, state_rec(0, ORDER, QCC_JOURNAL_UNPACKING, "w1"),
                    6);

        CHECK_INT(qcc_journal_write(fd2, &pos2, b1, o1, &err),
                  QCC_JOURNAL_OK);
        CHECK_INT(pos2.end, len + off + o1);
        CHECK_INT(qcc_journal_write(fd, &pos, b2, o2, &err),
                  QCC_JOURNAL_OK);
        CHECK_INT(pos.end, len + off + o1 + o2);

        memset(&t, 0, sizeof(t));
        CHECK_INT(qcc_journal_replay_path(path, table_add, &t, &r),
                  QCC_JOURNAL_OK);
        CHECK_INT(r.records, 6);
        CHECK_INT(r.valid, len + off + o1 + o2);
        CHECK_INT(t.orders[0].state, QCC_JOURNAL_UNPACKING);

        /* the end is found past garbage-free records only */
        CHECK_INT(pwrite(fd2, "garbage", 7, r.valid), 7);
        memset(&pos2, 0, sizeof(pos2));
        CHECK_INT(qcc_journal_find_end(fd2, &pos2, &err), QCC_JOURNAL_OK);
        CHECK_INT(pos2.end, r.valid);
        CHECK_INT(pwrite(fd2, "\0\0\0\0\0\0\0", 7, r.valid), 7);

        close(fd2);

        /* back to the four records of the tests below */
        CHECK_INT(qcc_journal_truncate(fd, len + off, &err),
                  QCC_JOURNAL_OK);
    }

    /* a short write (the file size limit) is cut back */
    {
        struct rlimit  old, lim;
        off_t          before;

        before = file_size(path);
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &old);
        lim = old;
        lim.rlim_cur = before + 10;
        setrlimit(RLIMIT_FSIZE, &lim);

        rc = qcc_journal_write(fd, &pos, buf, off, &err);

        CHECK_INT(rc, QCC_JOURNAL_ERROR);
        CHECK_INT(err, EFBIG);
        CHECK_INT(file_size(path), before);
        CHECK_INT(pos.end, before);

        /* no room on a full disk: the record alone extends the file */
        lim.rlim_cur = before + off;
        setrlimit(RLIMIT_FSIZE, &lim);

        rc = qcc_journal_write(fd, &pos, buf, off, &err);

        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, SIG_DFL);

        CHECK_INT(rc, QCC_JOURNAL_OK);
        CHECK_INT(file_size(path), before + off);
        CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
                  QCC_JOURNAL_OK);
        CHECK_INT(r.records, 5);

        CHECK_INT(qcc_journal_truncate(fd, before, &err), QCC_JOURNAL_OK);
    }

    /* replay_fd reads from offset 0 and leaves the position alone */
    {
        int    rfd;
        off_t  pos;

        rfd = open(path, O_RDONLY);
        CHECK(rfd >= 0);
        pos = lseek(rfd, 17, SEEK_SET);
        CHECK_INT(qcc_journal_replay_fd(rfd, NULL, NULL, &r),
                  QCC_JOURNAL_OK);
        CHECK_INT(r.records, 4);
        CHECK_INT(lseek(rfd, 0, SEEK_CUR), pos);
        close(rfd);

        CHECK_INT(qcc_journal_replay_fd(-1, NULL, NULL, &r),
                  QCC_JOURNAL_ERROR);
        CHECK_INT(r.err, EBADF);
    }

    /* a failed write: nothing written */
    CHECK_INT(qcc_journal_write(-1, &pos, buf, off, &err),
              QCC_JOURNAL_ERROR);
    CHECK_INT(err, EBADF);

    close(fd);

    /* reopening keeps the records and tightens a loose mode */
    chmod(path, 0644);
    fd = qcc_journal_open(path, (uid_t) -1, (gid_t) -1, &err);
    CHECK(fd >= 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(file_size(path), len + off);

    /* compaction: the folded table, as ORDER + STATE per order */
    memset(&t, 0, sizeof(t));
    CHECK_INT(qcc_journal_replay_path(path, table_add, &t, &r),
              QCC_JOURNAL_OK);

    memset(&s, 0, sizeof(s));
    s.t = &t;
    seq = 41;
    rc = qcc_journal_compact(path, snap_next, &s, &seq, (uid_t) -1,
                             (gid_t) -1, &err);
    CHECK_INT(rc, QCC_JOURNAL_OK);
    CHECK_INT(seq, 43);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(file_size(tmp), -1);

    memset(&t2, 0, sizeof(t2));
    CHECK_INT(qcc_journal_replay_path(path, table_add, &t2, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 2);
    CHECK_INT(r.last_seq, 43);
    CHECK_INT(t2.n, 1);
    t2.orders[0].seq = t.orders[0].seq;
    CHECK(memcmp(&t2.orders[0], &t.orders[0], sizeof(t.orders[0])) == 0);
    CHECK_INT(t2.orders[0].state, QCC_JOURNAL_UNPACKING);

    /* the old fd writes to the old file: reopen after compaction */
    close(fd);
    fd = qcc_journal_open(path, (uid_t) -1, (gid_t) -1, &err);
    CHECK(fd >= 0);
    off = append(buf, 0, state_rec(0, ORDER, QCC_JOURNAL_DELIVERED, NULL),
                 seq + 1);
    memset(&pos, 0, sizeof(pos));
    CHECK_INT(qcc_journal_write(fd, &pos, buf, off, &err), QCC_JOURNAL_OK);
    close(fd);
    CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 3);

    /* an aborted or invalid compaction leaves the journal alone */
    memset(&s, 0, sizeof(s));
    s.t = &t;
    s.fail_at = 2;
    rc = qcc_journal_compact(path, snap_next, &s, &seq, (uid_t) -1,
                             (gid_t) -1, &err);
    CHECK_INT(rc, QCC_JOURNAL_ERROR);
    CHECK_INT(err, ECANCELED);
    CHECK_INT(seq, 43);
    CHECK_INT(file_size(tmp), -1);

    i = 0;
    rc = qcc_journal_compact(path, bad_next, &i, &seq, (uid_t) -1,
                             (gid_t) -1, &err);
    CHECK_INT(rc, QCC_JOURNAL_INVALID);
    CHECK_INT(file_size(tmp), -1);

    CHECK_INT(qcc_journal_replay_path(path, NULL, NULL, &r),
              QCC_JOURNAL_OK);
    CHECK_INT(r.records, 3);

    /* a compaction of nothing: an empty journal */
    memset(&t2, 0, sizeof(t2));
    memset(&s, 0, sizeof(s));
    s.t = &t2;
    CHECK_INT(qcc_journal_compact(path, snap_next, &s, &seq, (uid_t) -1,
                                  (gid_t) -1, &err), QCC_JOURNAL_OK);
    CHECK_INT(file_size(path), 0);

    /* many records, through the compaction buffer more than once */
    {
        char     name[16];
        table_t  big;

        memset(&big, 0, sizeof(big));

        for (i = 0; i < MAX_ORDERS; i++) {
            qcc_journal_order_t  *o = &big.orders[i];

            snprintf(name, sizeof(name), "O%d", i);
            o->feed = i & 1;
            o->order_no_len = strlen(name);
            memcpy(o->order_no, name, o->order_no_len);
            o->url_len = 2000;
            memcpy(o->url, "http://", 7);
            memset(o->url + 7, 'u', 1993);
            o->password_len = 1;
            o->password[0] = 'p';
            o->state = i % QCC_JOURNAL_STATES;
        }

        big.n = MAX_ORDERS;

        memset(&s, 0, sizeof(s));
        s.t = &big;
        seq = 0;
        CHECK_INT(qcc_journal_compact(path, snap_next, &s, &seq, (uid_t) -1,
                                      (gid_t) -1, &err), QCC_JOURNAL_OK);
        CHECK_INT(seq, 2 * MAX_ORDERS);

        memset(&t2, 0, sizeof(t2));
        CHECK_INT(qcc_journal_replay_path(path, table_add, &t2, &r),
                  QCC_JOURNAL_OK);
        CHECK_INT(t2.n, MAX_ORDERS);
        CHECK_INT(t2.orders[7].state, 2);
        CHECK_INT(t2.orders[7].url_len, 2000);
    }

    /* a path too long for PATH.tmp, a directory that is not there */
    {
        char  longp[5000];

        memset(longp, 'a', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = '\0';
        CHECK_INT(qcc_journal_compact(longp, snap_next, &s, &seq,
                                      (uid_t) -1, (gid_t) -1, &err),
                  QCC_JOURNAL_ERROR);
        CHECK_INT(err, ENAMETOOLONG);
    }

    CHECK_INT(qcc_journal_open("/nonexistent-dir/j", (uid_t) -1,
                               (gid_t) -1, &err), -1);
    CHECK_INT(err, ENOENT);
    CHECK_INT(qcc_journal_replay_path(dir, NULL, NULL, &r),
              QCC_JOURNAL_ERROR);

    unlink(path);
}


int
main(void)
{
    char  cmd[128];

    snprintf(dir, sizeof(dir), "/tmp/qcc-journal-test.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    test_round_trip();
    test_format();
    test_untrusted();
    test_invalid_encode();
    test_torn_tail();
    test_room();
    test_flipped();
    test_fold();
    test_files();

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }

    return UNIT_DONE("test_journal");
}
