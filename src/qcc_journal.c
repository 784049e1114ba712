/*
 * The order journal, nginx-free: record codec, replay, appends and
 * compaction.  The byte format is described in qcc_journal.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zlib.h>

#include "qcc_journal.h"


#define QCC_JOURNAL_COMPACT_BUF  32768


typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
    unsigned              bad:1;
} qcc_journal_reader_t;


static size_t qcc_journal_header(const unsigned char *p);


static uint32_t
qcc_journal_crc(const unsigned char *p, size_t len)
{
    return (uint32_t) crc32(crc32(0L, Z_NULL, 0), p, (uInt) len);
}


static unsigned char *
qcc_journal_put(unsigned char *p, uint64_t v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        *p++ = (unsigned char) (v >> (8 * i));
    }

    return p;
}


static unsigned char *
qcc_journal_put_str(unsigned char *p, const unsigned char *s, size_t len,
    size_t n)
{
    p = qcc_journal_put(p, len, n);

    if (len) {
        memcpy(p, s, len);
    }

    return p + len;
}


static uint64_t
qcc_journal_get(const unsigned char *p, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }

    return v;
}


static uint64_t
qcc_journal_read(qcc_journal_reader_t *r, size_t n)
{
    uint64_t  v;

    if (r->bad || (size_t) (r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }

    v = qcc_journal_get(r->p, n);
    r->p += n;

    return v;
}


/* A length-prefixed string of at most max bytes. */
static const unsigned char *
qcc_journal_read_str(qcc_journal_reader_t *r, size_t n, size_t max,
    size_t *len)
{
    size_t                l;
    const unsigned char  *s;

    l = (size_t) qcc_journal_read(r, n);

    if (r->bad || l > max || (size_t) (r->end - r->p) < l) {
        r->bad = 1;
        *len = 0;
        return NULL;
    }

    s = r->p;
    r->p += l;
    *len = l;

    return s;
}


static int
qcc_journal_check_url(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > QCC_CALLBACK_URL_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] >= 0x7f) {
            return -1;
        }
    }

    return 0;
}


static int
qcc_journal_error_char(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}


/* The payload length of rec, 0 if a field is out of bounds. */
static size_t
qcc_journal_payload_len(const qcc_journal_rec_t *rec)
{
    size_t  n, el;

    if (rec->feed >= QCC_JOURNAL_FEEDS
        || qcc_callback_check_order_no(rec->order_no, rec->order_no_len)
           != 0)
    {
        return 0;
    }

    switch (rec->type) {

    case QCC_JOURNAL_ORDER:
    case QCC_JOURNAL_LINK:
        if (qcc_journal_check_url(rec->url, rec->url_len) != 0
            || qcc_callback_check_password(rec->password, rec->password_len)
               != 0
            || (rec->type == QCC_JOURNAL_ORDER
                && rec->source > QCC_JOURNAL_SOURCE_RECONCILE))
        {
            return 0;
        }

        n = 1 + 1 + rec->order_no_len + 2 + rec->url_len + 1
            + rec->password_len + 8 + 8;

        return (rec->type == QCC_JOURNAL_ORDER) ? n + 1 : n;

    case QCC_JOURNAL_STATE:
        if (rec->state >= QCC_JOURNAL_STATES
            || (rec->error_len && rec->error == NULL))
        {
            return 0;
        }

        el = rec->error_len;
        if (el > QCC_JOURNAL_ERROR_MAX) {
            el = QCC_JOURNAL_ERROR_MAX;
        }

        return 1 + 1 + 1 + rec->order_no_len + 4 + 8 + 8 + 1 + el;

    default:
        return 0;
    }
}


size_t
qcc_journal_size(const qcc_journal_rec_t *rec)
{
    size_t  n;

    n = qcc_journal_payload_len(rec);

    return n ? QCC_JOURNAL_HEADER_LEN + n : 0;
}


int
qcc_journal_encode(const qcc_journal_rec_t *rec, unsigned char *buf,
    size_t size, size_t *len)
{
    size_t          n, i, el;
    unsigned char  *p, *h;

    n = qcc_journal_payload_len(rec);

    if (n == 0 || rec->seq == 0) {
        return QCC_JOURNAL_INVALID;
    }

    if (size < QCC_JOURNAL_HEADER_LEN + n) {
        return QCC_JOURNAL_NOSPACE;
    }

    h = buf;
    p = buf + QCC_JOURNAL_HEADER_LEN;

    p = qcc_journal_put(p, rec->feed, 1);

    switch (rec->type) {

    case QCC_JOURNAL_ORDER:
        p = qcc_journal_put(p, rec->source, 1);
        p = qcc_journal_put_str(p, rec->order_no, rec->order_no_len, 1);
        p = qcc_journal_put_str(p, rec->url, rec->url_len, 2);
        p = qcc_journal_put_str(p, rec->password, rec->password_len, 1);
        p = qcc_journal_put(p, (uint64_t) rec->expires, 8);
        p = qcc_journal_put(p, (uint64_t) rec->received, 8);
        break;

    case QCC_JOURNAL_STATE:
        p = qcc_journal_put(p, rec->state, 1);
        p = qcc_journal_put_str(p, rec->order_no, rec->order_no_len, 1);
        p = qcc_journal_put(p, rec->attempts, 4);
        p = qcc_journal_put(p, (uint64_t) rec->next_try, 8);
        p = qcc_journal_put(p, (uint64_t) rec->updated, 8);

        el = rec->error_len;
        if (el > QCC_JOURNAL_ERROR_MAX) {
            el = QCC_JOURNAL_ERROR_MAX;
        }

        /* error texts come from anywhere: made safe here, once */
        *p++ = (unsigned char) el;
        for (i = 0; i < el; i++) {
            *p++ = qcc_journal_error_char(rec->error[i]) ? rec->error[i]
                                                         : '?';
        }
        break;

    default: /* QCC_JOURNAL_LINK */
        p = qcc_journal_put_str(p, rec->order_no, rec->order_no_len, 1);
        p = qcc_journal_put_str(p, rec->url, rec->url_len, 2);
        p = qcc_journal_put_str(p, rec->password, rec->password_len, 1);
        p = qcc_journal_put(p, (uint64_t) rec->expires, 8);
        p = qcc_journal_put(p, (uint64_t) rec->updated, 8);
        break;
    }

    h[0] = 'Q';
    h[1] = 'J';
    h[2] = QCC_JOURNAL_VERSION;
    h[3] = rec->type;
    qcc_journal_put(h + 4, n, 4);
    qcc_journal_put(h + 8, rec->seq, 8);
    qcc_journal_put(h + 16, qcc_journal_crc(h + QCC_JOURNAL_HEADER_LEN, n),
                    4);
    qcc_journal_put(h + 20, qcc_journal_crc(h, 20), 4);

    *len = QCC_JOURNAL_HEADER_LEN + n;

    return QCC_JOURNAL_OK;
}


int
qcc_journal_decode(const unsigned char *buf, size_t len,
    qcc_journal_rec_t *rec, size_t *used)
{
    size_t                 i, n;
    qcc_journal_reader_t   r;

    static const unsigned char  magic[2] = { 'Q', 'J' };

    memset(rec, 0, sizeof(qcc_journal_rec_t));

    if (len < QCC_JOURNAL_HEADER_LEN) {
        /* a torn append still starts as a record does */
        for (i = 0; i < len && i < 2; i++) {
            if (buf[i] != magic[i]) {
                return QCC_JOURNAL_CORRUPT;
            }
        }

        return QCC_JOURNAL_NEED_MORE;
    }

    if (buf[0] != 'Q' || buf[1] != 'J'
        || qcc_journal_get(buf + 20, 4) != qcc_journal_crc(buf, 20))
    {
        return QCC_JOURNAL_CORRUPT;
    }

    if (buf[2] != QCC_JOURNAL_VERSION) {
        return QCC_JOURNAL_UNSUPPORTED;
    }

    rec->type = buf[3];
    n = (size_t) qcc_journal_get(buf + 4, 4);
    rec->seq = qcc_journal_get(buf + 8, 8);

    if (rec->type < QCC_JOURNAL_ORDER || rec->type > QCC_JOURNAL_LINK
        || n == 0 || n > QCC_JOURNAL_PAYLOAD_MAX || rec->seq == 0)
    {
        return QCC_JOURNAL_CORRUPT;
    }

    if (len - QCC_JOURNAL_HEADER_LEN < n) {
        return QCC_JOURNAL_NEED_MORE;
    }

    if (qcc_journal_get(buf + 16, 4)
        != qcc_journal_crc(buf + QCC_JOURNAL_HEADER_LEN, n))
    {
        return QCC_JOURNAL_CORRUPT;
    }

    /* the CRC only says these bytes were written: check every field */

    r.p = buf + QCC_JOURNAL_HEADER_LEN;
    r.end = r.p + n;
    r.bad = 0;

    rec->feed = (uint8_t) qcc_journal_read(&r, 1);

    switch (rec->type) {

    case QCC_JOURNAL_ORDER:
        rec->source = (uint8_t) qcc_journal_read(&r, 1);
        rec->order_no = qcc_journal_read_str(&r, 1,
                                             QCC_CALLBACK_ORDER_NO_MAX,
                                             &rec->order_no_len);
        rec->url = qcc_journal_read_str(&r, 2, QCC_CALLBACK_URL_MAX,
                                        &rec->url_len);
        rec->password = qcc_journal_read_str(&r, 1,
                                             QCC_CALLBACK_PASSWORD_MAX,
                                             &rec->password_len);
        rec->expires = (int64_t) qcc_journal_read(&r, 8);
        rec->received = (int64_t) qcc_journal_read(&r, 8);
        break;

    case QCC_JOURNAL_STATE:
        rec->state = (uint8_t) qcc_journal_read(&r, 1);
        rec->order_no = qcc_journal_read_str(&r, 1,
                                             QCC_CALLBACK_ORDER_NO_MAX,
                                             &rec->order_no_len);
        rec->attempts = (uint32_t) qcc_journal_read(&r, 4);
        rec->next_try = (int64_t) qcc_journal_read(&r, 8);
        rec->updated = (int64_t) qcc_journal_read(&r, 8);
        rec->error = qcc_journal_read_str(&r, 1, QCC_JOURNAL_ERROR_MAX,
                                          &rec->error_len);
        break;

    default: /* QCC_JOURNAL_LINK */
        rec->order_no = qcc_journal_read_str(&r, 1,
                                             QCC_CALLBACK_ORDER_NO_MAX,
                                             &rec->order_no_len);
        rec->url = qcc_journal_read_str(&r, 2, QCC_CALLBACK_URL_MAX,
                                        &rec->url_len);
        rec->password = qcc_journal_read_str(&r, 1,
                                             QCC_CALLBACK_PASSWORD_MAX,
                                             &rec->password_len);
        rec->expires = (int64_t) qcc_journal_read(&r, 8);
        rec->updated = (int64_t) qcc_journal_read(&r, 8);
        break;
    }

    if (r.bad || r.p != r.end) {
        goto corrupt;
    }

    for (i = 0; i < rec->error_len; i++) {
        if (!qcc_journal_error_char(rec->error[i])) {
            goto corrupt;
        }
    }

    /* the encoder's own bounds, so a decoded record re-encodes */
    if (qcc_journal_payload_len(rec) != n) {
        goto corrupt;
    }

    *used = QCC_JOURNAL_HEADER_LEN + n;

    return QCC_JOURNAL_OK;

corrupt:

    memset(rec, 0, sizeof(qcc_journal_rec_t));

    return QCC_JOURNAL_CORRUPT;
}


/* The end of buf[off..len) without its trailing zeros. */
static size_t
qcc_journal_trim_zeros(const unsigned char *buf, size_t off, size_t len)
{
    while (len > off && buf[len - 1] == 0) {
        len--;
    }

    return len;
}


int
qcc_journal_replay_buf(const unsigned char *buf, size_t len,
    qcc_journal_record_pt handler, void *data, qcc_journal_replay_t *r)
{
    int                rc;
    size_t             off, used, next, end;
    qcc_journal_rec_t  rec;

    memset(r, 0, sizeof(qcc_journal_replay_t));
    r->size = len;

    off = 0;
    rc = QCC_JOURNAL_OK;

    while (off < len) {
        rc = qcc_journal_decode(buf + off, len - off, &rec, &used);

        if (rc != QCC_JOURNAL_OK) {
            break;
        }

        if (handler && handler(data, &rec, off) != 0) {
            rc = QCC_JOURNAL_STOPPED;
            break;
        }

        off += used;
        r->valid = off;
        r->records++;

        if (rec.seq > r->last_seq) {
            r->last_seq = rec.seq;
        }
    }

    if (rc == QCC_JOURNAL_CORRUPT || rc == QCC_JOURNAL_NEED_MORE) {
        /*
         * Zeros after the records are the room made for appends; a record
         * cut short by them is a torn append into that room.
         */
        end = qcc_journal_trim_zeros(buf, off, len);

        if (end == off) {
            return QCC_JOURNAL_OK;
        }

        /*
         * The written bytes a prefix of a record, and zeros beyond the
         * whole length it would have: torn.  (Damage to a record that
         * ends in zeros, with room after it, looks the same; either way
         * the tail is dropped.)
         */
        if (rc == QCC_JOURNAL_CORRUPT
            && qcc_journal_decode(buf + off, end - off, &rec, &used)
               == QCC_JOURNAL_NEED_MORE
            && len - off > QCC_JOURNAL_HEADER_LEN
            && (end - off < QCC_JOURNAL_HEADER_LEN
                || qcc_journal_header(buf + off) < len - off))
        {
            return QCC_JOURNAL_NEED_MORE;
        }
    }

    if (rc == QCC_JOURNAL_CORRUPT) {
        /* whether whole records follow: a damaged middle, not a tail */
        for (next = off + 1;
             len - next >= QCC_JOURNAL_HEADER_LEN;
             next++)
        {
            if (buf[next] == 'Q' && buf[next + 1] == 'J'
                && qcc_journal_decode(buf + next, len - next, &rec, &used)
                   == QCC_JOURNAL_OK)
            {
                r->resync = next;
                break;
            }
        }
    }

    return rc;
}


int
qcc_journal_replay_fd(int fd, qcc_journal_record_pt handler, void *data,
    qcc_journal_replay_t *r)
{
    int             rc;
    size_t          size, got;
    ssize_t         n;
    struct stat     st;
    unsigned char  *buf;

    memset(r, 0, sizeof(qcc_journal_replay_t));

    if (fstat(fd, &st) == -1) {
        r->err = errno;
        return QCC_JOURNAL_ERROR;
    }

    if (st.st_size > QCC_JOURNAL_FILE_MAX) {
        r->err = EFBIG;
        return QCC_JOURNAL_ERROR;
    }

    size = (size_t) st.st_size;

    /* one byte more, to see a file that grew since fstat() */
    buf = malloc(size + 1);
    if (buf == NULL) {
        r->err = ENOMEM;
        return QCC_JOURNAL_ERROR;
    }

    got = 0;

    while (got < size + 1) {
        n = pread(fd, buf + got, size + 1 - got, (off_t) got);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            rc = errno;
            OPENSSL_cleanse(buf, got);
            free(buf);
            r->err = rc;
            return QCC_JOURNAL_ERROR;
        }

        if (n == 0) {
            break;
        }

        got += (size_t) n;
    }

    /* bytes appended meanwhile are left for the next replay */
    if (got > size) {
        got = size;
    }

    rc = qcc_journal_replay_buf(buf, got, handler, data, r);

    /* the journal holds passwords */
    OPENSSL_cleanse(buf, got);
    free(buf);

    return rc;
}


int
qcc_journal_replay_path(const char *path, qcc_journal_record_pt handler,
    void *data, qcc_journal_replay_t *r)
{
    int  fd, rc, e;

    fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        e = errno;
        memset(r, 0, sizeof(qcc_journal_replay_t));

        if (e == ENOENT) {
            return QCC_JOURNAL_OK;
        }

        r->err = e;
        return QCC_JOURNAL_ERROR;
    }

    rc = qcc_journal_replay_fd(fd, handler, data, r);

    close(fd);

    return rc;
}


/* Replaces a field, wiping what is left of the old value (a password). */
static size_t
qcc_journal_copy(unsigned char *dst, size_t size, const unsigned char *src,
    size_t len)
{
    if (len > size) {
        len = size;
    }

    if (len) {
        memcpy(dst, src, len);
    }

    OPENSSL_cleanse(dst + len, size - len);

    return len;
}


int
qcc_journal_fold(qcc_journal_order_t *o, const qcc_journal_rec_t *rec)
{
    if (rec->order_no_len == 0
        || rec->order_no_len > sizeof(o->order_no)
        || rec->url_len > sizeof(o->url)
        || rec->password_len > sizeof(o->password))
    {
        return 0;
    }

    if (o->order_no_len == 0) {
        if (rec->type != QCC_JOURNAL_ORDER) {
            return 0;   /* an orphan STATE or LINK */
        }

        memset(o, 0, sizeof(qcc_journal_order_t));

        o->feed = rec->feed;
        o->state = QCC_JOURNAL_QUEUED;
        o->source = rec->source;
        o->received = rec->received;
        o->updated = rec->received;
        o->expires = rec->expires;
        o->seq = rec->seq;

        o->order_no_len = rec->order_no_len;
        memcpy(o->order_no, rec->order_no, rec->order_no_len);
        o->url_len = rec->url_len;
        memcpy(o->url, rec->url, rec->url_len);
        o->password_len = rec->password_len;
        memcpy(o->password, rec->password, rec->password_len);

        return 1;
    }

    if (rec->feed != o->feed || rec->order_no_len != o->order_no_len
        || memcmp(rec->order_no, o->order_no, o->order_no_len) != 0)
    {
        return 0;
    }

    switch (rec->type) {

    case QCC_JOURNAL_STATE:
        o->state = rec->state;
        o->attempts = rec->attempts;
        o->next_try = rec->next_try;
        o->updated = rec->updated;
        o->error_len = qcc_journal_copy(o->error, sizeof(o->error),
                                        rec->error, rec->error_len);
        break;

    case QCC_JOURNAL_LINK:
        o->url_len = qcc_journal_copy(o->url, sizeof(o->url), rec->url,
                                      rec->url_len);
        o->password_len = qcc_journal_copy(o->password,
                                           sizeof(o->password),
                                           rec->password, rec->password_len);
        o->expires = rec->expires;
        o->updated = rec->updated;
        break;

    default:
        return 0;   /* a repeated ORDER: the first one stands */
    }

    o->seq = rec->seq;

    return 1;
}


void
qcc_journal_order_records(const qcc_journal_order_t *o,
    qcc_journal_rec_t *order, qcc_journal_rec_t *state)
{
    memset(order, 0, sizeof(qcc_journal_rec_t));
    memset(state, 0, sizeof(qcc_journal_rec_t));

    order->type = QCC_JOURNAL_ORDER;
    order->feed = o->feed;
    order->source = o->source;
    order->order_no = o->order_no;
    order->order_no_len = o->order_no_len;
    order->url = o->url;
    order->url_len = o->url_len;
    order->password = o->password;
    order->password_len = o->password_len;
    order->expires = o->expires;
    order->received = o->received;

    state->type = QCC_JOURNAL_STATE;
    state->feed = o->feed;
    state->state = o->state;
    state->order_no = o->order_no;
    state->order_no_len = o->order_no_len;
    state->attempts = o->attempts;
    state->next_try = o->next_try;
    state->updated = o->updated;
    state->error = o->error;
    state->error_len = o->error_len;
}


/* --- files --------------------------------------------------------------- */


/* fsync()s the directory of path, so a new name in it is durable. */
static int
qcc_journal_sync_dir(const char *path)
{
    int          fd, rc, e;
    char         dir[PATH_MAX];
    const char  *slash;
    size_t       n;

    slash = strrchr(path, '/');

    if (slash == NULL) {
        strcpy(dir, ".");

    } else {
        n = (slash == path) ? 1 : (size_t) (slash - path);

        if (n >= sizeof(dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }

        memcpy(dir, path, n);
        dir[n] = '\0';
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    rc = fsync(fd);
    e = errno;

    close(fd);

    errno = e;

    return rc;
}


/* Mode 0600 and, if asked, the owner, on a file we just opened. */
static int
qcc_journal_own(int fd, uid_t uid, gid_t gid)
{
    struct stat  st;

    if (fstat(fd, &st) == -1) {
        return -1;
    }

    if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) == -1) {
        return -1;
    }

    if ((uid != (uid_t) -1 && uid != st.st_uid)
        || (gid != (gid_t) -1 && gid != st.st_gid))
    {
        return fchown(fd, uid, gid);
    }

    return 0;
}


int
qcc_journal_open(const char *path, uid_t uid, gid_t gid, int *err)
{
    int  fd, created;

    created = 0;

    fd = open(path, O_RDWR | O_CLOEXEC);

    if (fd == -1 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        created = (fd != -1);

        if (fd == -1 && errno == EEXIST) {
            /* created by someone else between the two calls */
            fd = open(path, O_RDWR | O_CLOEXEC);
        }
    }

    if (fd == -1) {
        *err = errno;
        return -1;
    }

    if (qcc_journal_own(fd, uid, gid) == -1
        || (created && qcc_journal_sync_dir(path) == -1))
    {
        *err = errno;
        close(fd);
        return -1;
    }

    return fd;
}


static int
qcc_journal_pwrite_all(int fd, const unsigned char *buf, size_t len,
    uint64_t off)
{
    ssize_t  n;

    while (len) {
        n = pwrite(fd, buf, len, (off_t) off);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        if (n == 0) {
            errno = EIO;
            return -1;
        }

        buf += n;
        off += (uint64_t) n;
        len -= (size_t) n;
    }

    return 0;
}


/* Writes len zeros at off, 64 KB at a time. */
static int
qcc_journal_zero(int fd, uint64_t off, uint64_t len)
{
    size_t  n;

    static const unsigned char  zeros[65536];

    while (len) {
        n = (len < sizeof(zeros)) ? (size_t) len : sizeof(zeros);

        if (qcc_journal_pwrite_all(fd, zeros, n, off) == -1) {
            return -1;
        }

        off += n;
        len -= n;
    }

    return 0;
}


/* The length of the record whose header is at p, 0 if it is not one. */
static size_t
qcc_journal_header(const unsigned char *p)
{
    size_t  n;

    if (p[0] != 'Q' || p[1] != 'J'
        || qcc_journal_get(p + 20, 4) != qcc_journal_crc(p, 20))
    {
        return 0;
    }

    n = (size_t) qcc_journal_get(p + 4, 4);

    if (n == 0 || n > QCC_JOURNAL_PAYLOAD_MAX) {
        return 0;
    }

    return QCC_JOURNAL_HEADER_LEN + n;
}


int
qcc_journal_find_end(int fd, qcc_journal_pos_t *pos, int *err)
{
    size_t         i, n, want, rec;
    ssize_t        got;
    uint64_t       at;
    struct stat    st;
    unsigned char  buf[4 * QCC_JOURNAL_RECORD_MAX];

    at = pos->end;

    /* the usual case, nobody else appended: one header's worth of zeros */
    want = QCC_JOURNAL_HEADER_LEN;

    for ( ;; ) {
        got = pread(fd, buf, want, (off_t) at);

        if (got == -1) {
            if (errno == EINTR) {
                continue;
            }

            *err = errno;
            return QCC_JOURNAL_ERROR;
        }

        n = (size_t) got;

        if (n == 0 && at > 0) {
            /* at the end of the file, or past it if it was cut */
            if (fstat(fd, &st) == -1) {
                *err = errno;
                return QCC_JOURNAL_ERROR;
            }

            pos->size = (uint64_t) st.st_size;

            if (pos->size < at) {
                at = 0;
                want = sizeof(buf);
                continue;
            }
        }

        /* whole records in the buffer are skipped */
        for (i = 0; n - i >= QCC_JOURNAL_HEADER_LEN; i += rec) {
            rec = qcc_journal_header(buf + i);

            if (rec == 0) {
                pos->end = at + i;
                return QCC_JOURNAL_OK;
            }

            if (rec > n - i) {
                break;
            }
        }

        if (n < want) {
            /* the file ends here, maybe in a torn record: it goes */
            pos->end = at + i;
            return QCC_JOURNAL_OK;
        }

        /* records of other writers go on: read on from the first cut */
        at += i;
        want = sizeof(buf);
    }
}


int
qcc_journal_append(int fd, qcc_journal_pos_t *pos, const unsigned char *buf,
    size_t len, int *err)
{
    int          e;
    uint64_t     end, room;
    struct stat  st;

    if (qcc_journal_find_end(fd, pos, err) != QCC_JOURNAL_OK) {
        return QCC_JOURNAL_ERROR;
    }

    end = pos->end;

    if (end + len > pos->size) {
        /* another writer may have made room meanwhile */
        if (fstat(fd, &st) == -1) {
            *err = errno;
            return QCC_JOURNAL_ERROR;
        }

        pos->size = (uint64_t) st.st_size;
    }

    if (end + len > pos->size) {
        room = (end + len + QCC_JOURNAL_ROOM - 1)
               / QCC_JOURNAL_ROOM * QCC_JOURNAL_ROOM;

        if (qcc_journal_zero(fd, pos->size, room - pos->size) == 0) {
            pos->size = room;

        } else {
            /* no room on a full disk: buf alone extends the file */
            (void) ftruncate(fd, (off_t) pos->size);
        }
    }

    if (qcc_journal_pwrite_all(fd, buf, len, end) == 0) {
        pos->end = end + len;
        return QCC_JOURNAL_OK;
    }

    e = errno;

    /* no torn record may stay in front of the next append */
    if (end + len > pos->size) {
        (void) ftruncate(fd, (off_t) pos->size);
    }

    if (end < pos->size) {
        (void) qcc_journal_zero(fd, end,
                                ((end + len < pos->size) ? end + len
                                                         : pos->size)
                                - end);
    }

    *err = e;

    return QCC_JOURNAL_ERROR;
}


int
qcc_journal_write(int fd, qcc_journal_pos_t *pos, const unsigned char *buf,
    size_t len, int *err)
{
    int       e;
    uint64_t  end;

    if (qcc_journal_append(fd, pos, buf, len, err) != QCC_JOURNAL_OK) {
        return QCC_JOURNAL_ERROR;
    }

    if (fdatasync(fd) == 0) {
        return QCC_JOURNAL_OK;
    }

    e = errno;

    /* not durable, so never acknowledged: wiped, as a failed write is */
    end = pos->end - len;

    if (end + len <= pos->size) {
        (void) qcc_journal_zero(fd, end, len);

    } else if (ftruncate(fd, (off_t) end) == 0) {
        pos->size = end;
    }

    pos->end = end;
    *err = e;

    return QCC_JOURNAL_ERROR;
}


int
qcc_journal_truncate(int fd, uint64_t valid, int *err)
{
    if (valid > QCC_JOURNAL_FILE_MAX
        || ftruncate(fd, (off_t) valid) == -1 || fsync(fd) == -1)
    {
        *err = (valid > QCC_JOURNAL_FILE_MAX) ? EFBIG : errno;
        return QCC_JOURNAL_ERROR;
    }

    return QCC_JOURNAL_OK;
}


int
qcc_journal_compact(const char *path, qcc_journal_next_pt next,
    void *data, uint64_t *seq, uid_t uid, gid_t gid, int *err)
{
    int                rc, fd, n;
    char               tmp[PATH_MAX];
    size_t             used, len;
    uint64_t           s, off;
    qcc_journal_rec_t  rec;
    unsigned char      buf[QCC_JOURNAL_COMPACT_BUF];

    *err = 0;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        *err = ENAMETOOLONG;
        return QCC_JOURNAL_ERROR;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd == -1) {
        *err = errno;
        return QCC_JOURNAL_ERROR;
    }

    if (qcc_journal_own(fd, uid, gid) == -1) {
        goto failed;
    }

    s = *seq;
    used = 0;
    off = 0;

    for ( ;; ) {
        memset(&rec, 0, sizeof(qcc_journal_rec_t));

        rc = next(data, &rec);

        if (rc == 0) {
            break;
        }

        if (rc < 0) {
            errno = ECANCELED;
            goto failed;
        }

        rec.seq = s + 1;

        rc = qcc_journal_encode(&rec, buf + used, sizeof(buf) - used, &len);

        if (rc == QCC_JOURNAL_NOSPACE) {
            if (qcc_journal_pwrite_all(fd, buf, used, off) == -1) {
                goto failed;
            }

            off += used;
            used = 0;
            rc = qcc_journal_encode(&rec, buf, sizeof(buf), &len);
        }

        if (rc != QCC_JOURNAL_OK) {
            OPENSSL_cleanse(buf, sizeof(buf));
            close(fd);
            unlink(tmp);
            return QCC_JOURNAL_INVALID;
        }

        used += len;
        s++;
    }

    if ((used && qcc_journal_pwrite_all(fd, buf, used, off) == -1)
        || fsync(fd) == -1)
    {
        goto failed;
    }

    OPENSSL_cleanse(buf, sizeof(buf));

    if (close(fd) == -1) {
        fd = -1;
        goto failed;
    }

    fd = -1;

    if (rename(tmp, path) == -1) {
        goto failed;
    }

    *seq = s;

    /* the rename is durable only once the directory is */
    if (qcc_journal_sync_dir(path) == -1) {
        *err = errno;
        return QCC_JOURNAL_ERROR;
    }

    return QCC_JOURNAL_OK;

failed:

    *err = errno;

    OPENSSL_cleanse(buf, sizeof(buf));

    if (fd != -1) {
        close(fd);
    }

    unlink(tmp);

    return QCC_JOURNAL_ERROR;
}
