/*
 * libFuzzer target of the journal codec (qcc_journal.c).
 *
 * 1. The input as a journal: replayed; every record it accepts must
 *    re-encode to exactly its bytes, every strict prefix of it must be
 *    NEED_MORE, the replay's report must agree with the input, the
 *    folded orders must survive a snapshot (encode, decode, fold), and a
 *    clean journal must replay the same with room (zeros) after it.
 * 2. The same with the magic, lengths and CRCs of the input's records
 *    made right first, so that mutated payloads reach the field checks.
 * 3. The input as the fields of a record: whatever encodes must decode
 *    to the same fields.
 */

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "qcc_journal.h"


#define need(cond)  do { if (!(cond)) abort(); } while (0)

#define MAX_ORDERS  8


typedef struct {
    const unsigned char  *data;
    size_t                size;
    qcc_journal_order_t   orders[MAX_ORDERS];
    size_t                n;
    uint64_t              next_offset;
} ctx_t;


static void check_room(const unsigned char *data, size_t size,
    const qcc_journal_replay_t *was);


static void
check_snapshot(const qcc_journal_order_t *o)
{
    size_t               len, used;
    unsigned char        buf[QCC_JOURNAL_RECORD_MAX];
    qcc_journal_rec_t    a, b, d;
    qcc_journal_order_t  copy;

    qcc_journal_order_records(o, &a, &b);
    memset(&copy, 0, sizeof(copy));

    a.seq = 1;
    need(qcc_journal_encode(&a, buf, sizeof(buf), &len) == QCC_JOURNAL_OK);
    need(qcc_journal_decode(buf, len, &d, &used) == QCC_JOURNAL_OK);
    need(qcc_journal_fold(&copy, &d) == 1);

    b.seq = 2;
    need(qcc_journal_encode(&b, buf, sizeof(buf), &len) == QCC_JOURNAL_OK);
    need(qcc_journal_decode(buf, len, &d, &used) == QCC_JOURNAL_OK);
    need(qcc_journal_fold(&copy, &d) == 1);

    copy.seq = o->seq;
    need(memcmp(&copy, o, sizeof(copy)) == 0);
}


static int
on_record(void *data, const qcc_journal_rec_t *rec, uint64_t offset)
{
    int                   changed;
    size_t                i, len, used, cut;
    ctx_t                *ctx = data;
    unsigned char         buf[QCC_JOURNAL_RECORD_MAX];
    qcc_journal_rec_t     d;
    qcc_journal_order_t  *o;

    /* records come in order, back to back */
    need(offset == ctx->next_offset);

    need(qcc_journal_encode(rec, buf, sizeof(buf), &len) == QCC_JOURNAL_OK);
    need(len == qcc_journal_size(rec));
    need(offset + len <= ctx->size);
    need(memcmp(buf, ctx->data + offset, len) == 0);

    ctx->next_offset = offset + len;

    /* a strict prefix of a record is a torn tail, never a record */
    for (cut = 0; cut < len; cut += (cut < 32 || cut + 8 > len) ? 1 : 61) {
        need(qcc_journal_decode(buf, cut, &d, &used)
             == QCC_JOURNAL_NEED_MORE);
    }

    for (i = 0; i < ctx->n; i++) {
        o = &ctx->orders[i];

        if (o->feed == rec->feed && o->order_no_len == rec->order_no_len
            && memcmp(o->order_no, rec->order_no, rec->order_no_len) == 0)
        {
            changed = qcc_journal_fold(o, rec);
            need(changed == (rec->type != QCC_JOURNAL_ORDER));
            return 0;
        }
    }

    if (ctx->n < MAX_ORDERS) {
        o = &ctx->orders[ctx->n];
        memset(o, 0, sizeof(qcc_journal_order_t));

        changed = qcc_journal_fold(o, rec);
        need(changed == (rec->type == QCC_JOURNAL_ORDER));
        ctx->n += changed;
    }

    return 0;
}


static void
check_replay(const unsigned char *data, size_t size)
{
    int                   rc;
    size_t                i, used, end;
    ctx_t                *ctx;
    qcc_journal_rec_t     d;
    qcc_journal_replay_t  r;

    ctx = calloc(1, sizeof(ctx_t));
    need(ctx);

    ctx->data = data;
    ctx->size = size;

    rc = qcc_journal_replay_buf(data, size, on_record, ctx, &r);

    need(r.size == size && r.valid <= size);
    need(r.valid == ctx->next_offset);

    /* the end of the data without the zeros after it (the room) */
    for (end = size; end > r.valid && data[end - 1] == 0; end--) {
        /* void */
    }

    switch (rc) {

    case QCC_JOURNAL_OK:
        need(end == r.valid);
        break;

    case QCC_JOURNAL_NEED_MORE:
        need(r.valid < end && end - r.valid < QCC_JOURNAL_RECORD_MAX);
        break;

    case QCC_JOURNAL_CORRUPT:
        need(r.valid < size);

        if (r.resync) {
            need(r.resync > r.valid);
            need(qcc_journal_decode(data + r.resync, size - r.resync, &d,
                                    &used) == QCC_JOURNAL_OK);
        }

        break;

    case QCC_JOURNAL_UNSUPPORTED:
        need(r.valid < size);
        break;

    default:
        abort();
    }

    for (i = 0; i < ctx->n; i++) {
        check_snapshot(&ctx->orders[i]);
    }

    free(ctx);

    /* a clean journal with room made after it replays the same */
    if (rc == QCC_JOURNAL_OK && size == end && size < 65536) {
        check_room(data, size, &r);
    }
}


static void
check_room(const unsigned char *data, size_t size,
    const qcc_journal_replay_t *was)
{
    unsigned char         *buf;
    qcc_journal_replay_t   r;

    buf = calloc(1, size + 100);
    need(buf);
    memcpy(buf, data, size);

    need(qcc_journal_replay_buf(buf, size + 100, NULL, NULL, &r)
         == QCC_JOURNAL_OK);
    need(r.valid == was->valid && r.records == was->records
         && r.last_seq == was->last_seq);

    free(buf);
}


static uint64_t
take(const unsigned char **p, const unsigned char *end, size_t n)
{
    uint64_t  v;

    v = 0;

    while (n-- && *p < end) {
        v = v << 8 | *(*p)++;
    }

    return v;
}


static const unsigned char *
take_str(const unsigned char **p, const unsigned char *end, size_t *len,
    size_t max)
{
    const unsigned char  *s;

    *len = (size_t) take(p, end, 2) % (max + 2);

    if ((size_t) (end - *p) < *len) {
        *len = end - *p;
    }

    s = *p;
    *p += *len;

    return s;
}


static void
check_encode(const unsigned char *data, size_t size)
{
    int                   rc;
    size_t                len, used, i;
    unsigned char         buf[QCC_JOURNAL_RECORD_MAX];
    qcc_journal_rec_t     rec, d;
    const unsigned char  *p, *end;

    p = data;
    end = data + size;

    memset(&rec, 0, sizeof(rec));
    rec.type = (uint8_t) (take(&p, end, 1) % 5);
    rec.feed = (uint8_t) (take(&p, end, 1) % 3);
    rec.source = (uint8_t) (take(&p, end, 1) % 3);
    rec.state = (uint8_t) (take(&p, end, 1) % 6);
    rec.seq = take(&p, end, 8);
    rec.attempts = (uint32_t) take(&p, end, 4);
    rec.expires = (int64_t) take(&p, end, 8);
    rec.received = (int64_t) take(&p, end, 8);
    rec.next_try = (int64_t) take(&p, end, 8);
    rec.updated = (int64_t) take(&p, end, 8);
    rec.order_no = take_str(&p, end, &rec.order_no_len, 70);
    rec.password = take_str(&p, end, &rec.password_len, 130);
    rec.error = take_str(&p, end, &rec.error_len, 260);
    rec.url = p;
    rec.url_len = end - p;

    rc = qcc_journal_encode(&rec, buf, sizeof(buf), &len);

    if (rc != QCC_JOURNAL_OK) {
        need(rc == QCC_JOURNAL_INVALID);
        need(qcc_journal_size(&rec) == 0 || rec.seq == 0);
        return;
    }

    need(len == qcc_journal_size(&rec));
    need(qcc_journal_decode(buf, len, &d, &used) == QCC_JOURNAL_OK);
    need(used == len);

    need(d.seq == rec.seq && d.type == rec.type && d.feed == rec.feed);
    need(d.order_no_len == rec.order_no_len
         && memcmp(d.order_no, rec.order_no, d.order_no_len) == 0);

    switch (rec.type) {

    case QCC_JOURNAL_STATE:
        need(d.state == rec.state && d.attempts == rec.attempts
             && d.next_try == rec.next_try && d.updated == rec.updated);
        need(d.error_len == (rec.error_len < QCC_JOURNAL_ERROR_MAX
                             ? rec.error_len : QCC_JOURNAL_ERROR_MAX));

        for (i = 0; i < d.error_len; i++) {
            need(d.error[i] == rec.error[i] || d.error[i] == '?');
        }

        break;

    default:
        need(d.url_len == rec.url_len
             && memcmp(d.url, rec.url, d.url_len) == 0);
        need(d.password_len == rec.password_len
             && memcmp(d.password, rec.password, d.password_len) == 0);
        need(d.expires == rec.expires);

        if (rec.type == QCC_JOURNAL_ORDER) {
            need(d.source == rec.source && d.received == rec.received);

        } else {
            need(d.updated == rec.updated);
        }
    }

    /* in a journal of its own, it replays as one record */
    check_replay(buf, len);
}


static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static void
check_fixed(const unsigned char *data, size_t size)
{
    size_t          off, n;
    unsigned char  *buf, *h;

    buf = malloc(size ? size : 1);
    need(buf);
    memcpy(buf, data, size);

    for (off = 0; size - off >= QCC_JOURNAL_HEADER_LEN; off += 24 + n) {
        h = buf + off;

        n = (h[4] | h[5] << 8 | (size_t) h[6] << 16 | (size_t) h[7] << 24)
            % (QCC_JOURNAL_PAYLOAD_MAX + 1);

        h[0] = 'Q';
        h[1] = 'J';
        put32(h + 4, (uint32_t) n);

        if (size - off - QCC_JOURNAL_HEADER_LEN < n) {
            put32(h + 20, (uint32_t) crc32(0, h, 20));
            break;
        }

        put32(h + 16, (uint32_t) crc32(0, h + QCC_JOURNAL_HEADER_LEN,
                                       (uInt) n));
        put32(h + 20, (uint32_t) crc32(0, h, 20));
    }

    check_replay(buf, size);

    free(buf);
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    check_replay(data, size);
    check_fixed(data, size);
    check_encode(data, size);

    return 0;
}
