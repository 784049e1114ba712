/*
 * The order journal, nginx-free: the record codec, replay of a journal
 * file, appends with fdatasync, and compaction into a snapshot.  Pure
 * functions over buffers and file descriptors: no globals, safe in a
 * thread.
 *
 * Byte format (version 1)
 * -----------------------
 * A journal file is a sequence of records, then zero bytes or nothing
 * (no file header; an empty file is an empty journal).  The zero bytes
 * are room written ahead of the appends, QCC_JOURNAL_ROOM at a time: an
 * append then overwrites blocks the file system has already allocated,
 * and fdatasync() has data to flush but no metadata (size, extents) to
 * commit.  The records end at the first record boundary from which every
 * byte is zero (a record never starts with a zero byte).  Integers are
 * little-endian; times are signed 64-bit Unix seconds.  Each record:
 *
 *   offset  size  field
 *   0       2     magic "QJ" (0x51 0x4a)
 *   2       1     version: 1
 *   3       1     type: 1 ORDER, 2 STATE, 3 LINK
 *   4       4     payload length N, 1 .. 4096
 *   8       8     sequence number, >= 1
 *   16      4     CRC-32 of the payload (zlib's crc32(), ISO-HDLC)
 *   20      4     CRC-32 of bytes 0 .. 19 (the header)
 *   24      N     payload
 *
 * Strings in a payload are a length (u8, or u16 for the URL) and that
 * many bytes, no NUL.  Feeds: 0 dd_risk_mnr, 1 dd_corp_monitor.
 *
 *   ORDER (1): a new order, from a push or from reconciliation
 *     u8 feed | u8 source (0 push, 1 reconcile)
 *     u8 len + orderNo        1..64   [A-Za-z0-9_-]
 *     u16 len + downloadUrl   1..2048 bytes 0x21..0x7e
 *     u8 len + unzipPassword  1..128  bytes 0x20..0x7e
 *     i64 expires (downloadUrlExpiredTime) | i64 received
 *
 *   STATE (2): an order's new state
 *     u8 feed | u8 state (0 queued, 1 downloading, 2 unpacking,
 *                         3 delivered, 4 failed)
 *     u8 len + orderNo
 *     u32 attempts | i64 next_try | i64 updated
 *     u8 len + last error     0..200  bytes 0x20..0x7e but '"' and '\'
 *
 *   LINK (3): a refreshed download link
 *     u8 feed | u8 len + orderNo | u16 len + downloadUrl
 *     u8 len + unzipPassword | i64 expires | i64 updated
 *
 * A payload must be consumed exactly.  Decoding a record at the end of a
 * buffer gives NEED_MORE when the bytes are a prefix of a record (a torn
 * append: fewer than 24 bytes, or a valid header whose payload is cut),
 * CORRUPT when the magic, a CRC, a length or a field is wrong, and
 * UNSUPPORTED for a well-formed header of another version (written by a
 * newer module: do not truncate it).  A replay treats a torn append into
 * the room (a prefix of a record, then only zeros) as a torn tail too.
 *
 * Folding: records apply in file order.  ORDER creates an order in state
 * queued (a second ORDER of the same feed and orderNo is ignored); STATE
 * and LINK update an existing order and are ignored for an unknown one.
 * A compacted journal holds, per live order, one ORDER (with its current
 * link) followed by one STATE.
 */

#ifndef QCC_JOURNAL_H
#define QCC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qcc_callback.h"


#define QCC_JOURNAL_VERSION        1
#define QCC_JOURNAL_HEADER_LEN     24
#define QCC_JOURNAL_PAYLOAD_MAX    4096
#define QCC_JOURNAL_RECORD_MAX     (QCC_JOURNAL_HEADER_LEN                    \
                                    + QCC_JOURNAL_PAYLOAD_MAX)
#define QCC_JOURNAL_ERROR_MAX      200
#define QCC_JOURNAL_FILE_MAX       (1024 * 1024 * 1024)

/* zeros written ahead of the appends at a time (see the format above) */
#define QCC_JOURNAL_ROOM           (1024 * 1024)

/* record types */
#define QCC_JOURNAL_ORDER          1
#define QCC_JOURNAL_STATE          2
#define QCC_JOURNAL_LINK           3

/* feeds: the same indexes as NGX_HTTP_QCC_FEED_* */
#define QCC_JOURNAL_FEED_RISK      0     /* dd_risk_mnr */
#define QCC_JOURNAL_FEED_CORP      1     /* dd_corp_monitor */
#define QCC_JOURNAL_FEEDS          2

/* states: the same values as NGX_HTTP_QCC_QUEUED ... FAILED */
#define QCC_JOURNAL_QUEUED         0
#define QCC_JOURNAL_DOWNLOADING    1
#define QCC_JOURNAL_UNPACKING      2
#define QCC_JOURNAL_DELIVERED      3
#define QCC_JOURNAL_FAILED         4
#define QCC_JOURNAL_STATES         5

/* sources of an ORDER */
#define QCC_JOURNAL_SOURCE_PUSH       0
#define QCC_JOURNAL_SOURCE_RECONCILE  1


typedef enum {
    QCC_JOURNAL_OK = 0,
    QCC_JOURNAL_NEED_MORE,     /* a torn tail: a prefix of a record */
    QCC_JOURNAL_CORRUPT,       /* a bad record */
    QCC_JOURNAL_UNSUPPORTED,   /* a record of another version */
    QCC_JOURNAL_INVALID,       /* encode: a field out of its bounds */
    QCC_JOURNAL_NOSPACE,       /* encode: the buffer is too small */
    QCC_JOURNAL_ERROR,         /* I/O: see the errno returned */
    QCC_JOURNAL_STOPPED        /* replay: the handler asked to stop */
} qcc_journal_rc_e;


/*
 * One record, decoded or to encode.  Which fields count depends on the
 * type (see the format above); the others are ignored by the encoder
 * and zero after decoding.  Decoded strings point into the input buffer.
 */
typedef struct {
    uint64_t               seq;
    uint8_t                type;
    uint8_t                feed;
    uint8_t                source;       /* ORDER */
    uint8_t                state;        /* STATE */
    uint32_t               attempts;     /* STATE */
    int64_t                expires;      /* ORDER, LINK */
    int64_t                received;     /* ORDER */
    int64_t                next_try;     /* STATE */
    int64_t                updated;      /* STATE, LINK */

    const unsigned char   *order_no;
    size_t                 order_no_len;
    const unsigned char   *url;          /* ORDER, LINK */
    size_t                 url_len;
    const unsigned char   *password;     /* ORDER, LINK */
    size_t                 password_len;
    const unsigned char   *error;        /* STATE */
    size_t                 error_len;
} qcc_journal_rec_t;


/* The latest state of one order, folded from its records. */
typedef struct {
    uint8_t                feed;
    uint8_t                state;
    uint8_t                source;
    uint32_t               attempts;
    int64_t                received;
    int64_t                updated;
    int64_t                expires;
    int64_t                next_try;
    uint64_t               seq;          /* of the last record applied */

    size_t                 order_no_len; /* 0: a fresh, unused slot */
    size_t                 url_len;
    size_t                 password_len;
    size_t                 error_len;
    unsigned char          order_no[QCC_CALLBACK_ORDER_NO_MAX];
    unsigned char          url[QCC_CALLBACK_URL_MAX];
    unsigned char          password[QCC_CALLBACK_PASSWORD_MAX];
    unsigned char          error[QCC_JOURNAL_ERROR_MAX];
} qcc_journal_order_t;


/* What a replay found. */
typedef struct {
    uint64_t               size;      /* bytes read */
    uint64_t               valid;     /* bytes of whole valid records from
                                         the start: on OK where the
                                         records end (the room follows),
                                         else truncate here */
    uint64_t               records;   /* valid records handed over */
    uint64_t               last_seq;  /* the highest sequence number */
    uint64_t               resync;    /* after CORRUPT: offset of the next
                                         valid record (a damaged middle,
                                         not a torn tail), 0 if none */
    int                    err;       /* errno, on QCC_JOURNAL_ERROR */
} qcc_journal_replay_t;


/*
 * Called per valid record, in file order, with the record's offset;
 * returns 0 to go on, anything else to stop the replay.
 */
typedef int (*qcc_journal_record_pt)(void *data,
    const qcc_journal_rec_t *rec, uint64_t offset);

/*
 * Compaction's source of records: fills rec (the seq is assigned by the
 * compaction) and returns 1, returns 0 at the end, -1 to abort.  rec's
 * strings must stay valid until the next call.
 */
typedef int (*qcc_journal_next_pt)(void *data, qcc_journal_rec_t *rec);


/* The encoded size of rec (header included), 0 if a field is invalid. */
size_t qcc_journal_size(const qcc_journal_rec_t *rec);

/*
 * Encodes rec into buf (size bytes, QCC_JOURNAL_RECORD_MAX always
 * enough); *len gets the record's length.  The error text is cut to
 * QCC_JOURNAL_ERROR_MAX bytes, and bytes outside 0x20..0x7e, '"' and '\'
 * become '?', so it is JSON-safe.  Returns OK, INVALID or NOSPACE.
 */
int qcc_journal_encode(const qcc_journal_rec_t *rec, unsigned char *buf,
    size_t size, size_t *len);

/*
 * Decodes the record at the start of buf; *used gets its length on OK.
 * Never reads past len.  Returns OK, NEED_MORE, CORRUPT or UNSUPPORTED.
 */
int qcc_journal_decode(const unsigned char *buf, size_t len,
    qcc_journal_rec_t *rec, size_t *used);

/*
 * Replays a journal held in memory: handler (may be NULL) per valid
 * record, stopping at the first record that is not.  Returns OK (clean
 * end: the buffer's end, or only zeros from r->valid on), NEED_MORE (torn
 * tail after r->valid, maybe followed by zeros), CORRUPT or UNSUPPORTED
 * (at r->valid), or STOPPED.  r is always filled.
 */
int qcc_journal_replay_buf(const unsigned char *buf, size_t len,
    qcc_journal_record_pt handler, void *data, qcc_journal_replay_t *r);

/*
 * The same over a file, read whole from offset 0 with pread (the file
 * position is left alone); ERROR with r->err on an I/O error or a file
 * over QCC_JOURNAL_FILE_MAX.  A missing path is an empty journal.
 */
int qcc_journal_replay_fd(int fd, qcc_journal_record_pt handler,
    void *data, qcc_journal_replay_t *r);
int qcc_journal_replay_path(const char *path,
    qcc_journal_record_pt handler, void *data, qcc_journal_replay_t *r);

/*
 * Applies rec to the order o.  The caller finds o by (rec->feed,
 * rec->order_no); for an unknown order it passes a zeroed slot.
 * Returns 1 if o changed (an ORDER filled the fresh slot, or a STATE or
 * LINK updated a known order), 0 if the record was ignored (a repeated
 * ORDER, a STATE or LINK for a fresh slot, a feed or orderNo that is not
 * o's).  Interrupted orders (downloading, unpacking) stay as they were:
 * requeueing them is the caller's policy.
 */
int qcc_journal_fold(qcc_journal_order_t *o, const qcc_journal_rec_t *rec);

/*
 * The two records of a snapshot of o: an ORDER with its current link and
 * a STATE (seq left 0; pointers into o).
 */
void qcc_journal_order_records(const qcc_journal_order_t *o,
    qcc_journal_rec_t *order, qcc_journal_rec_t *state);

/*
 * Opens (creating, mode 0600) a journal for appending: O_RDWR | O_CLOEXEC
 * (appends are positioned: see qcc_journal_append()).  uid/gid as for
 * fchown(), (uid_t) -1 and (gid_t) -1 to leave the owner alone.  Returns
 * the fd, or -1 with *err.
 */
int qcc_journal_open(const char *path, uid_t uid, gid_t gid, int *err);

/*
 * A writer's knowledge of the file: a record boundary at or before the
 * end of the records (where it last appended; 0 will always do), and the
 * file's size as it last saw it (0: unknown).
 */
typedef struct {
    uint64_t               end;
    uint64_t               size;
} qcc_journal_pos_t;

/*
 * Finds the end of the records from pos->end on: walks the headers of
 * whatever other writers appended (a valid header is a record; anything
 * else, zeros or a torn record, is where the next record goes), and sets
 * pos->end.  A pos->end past the end of the file (it was cut meanwhile)
 * starts again from 0.  Returns OK, or ERROR with *err.
 */
int qcc_journal_find_end(int fd, qcc_journal_pos_t *pos, int *err);

/*
 * Appends buf (one record or a group of them) at the end of the records:
 * finds it (qcc_journal_find_end()), writes zeros ahead if buf does not
 * fit in the room left (QCC_JOURNAL_ROOM at a time; without room on a
 * full disk, buf alone extends the file), and writes buf there with
 * pwrite(); pos->end moves past it.  On a failed or short write it wipes
 * what it wrote (zeros again, or the file cut back to its size before the
 * call), so no torn record is left in front of the next append, and
 * returns ERROR with *err.  The caller serializes the writers (a lock
 * held across the call) and calls fdatasync() afterwards, outside it.
 */
int qcc_journal_append(int fd, qcc_journal_pos_t *pos,
    const unsigned char *buf, size_t len, int *err);

/*
 * qcc_journal_append() then fdatasync(): the records are durable when it
 * returns OK.  A failed sync wipes them as a failed write does.  For a
 * single writer, or writers serialized by a lock held across the call.
 */
int qcc_journal_write(int fd, qcc_journal_pos_t *pos,
    const unsigned char *buf, size_t len, int *err);

/* Cuts a journal to the valid bytes a replay found, and fsyncs it. */
int qcc_journal_truncate(int fd, uint64_t valid, int *err);

/*
 * Compaction: writes every record next() gives to PATH.tmp (mode 0600,
 * owner uid/gid), with sequence numbers ++*seq, fsyncs it, renames it
 * over path and fsyncs the directory.  On failure PATH.tmp is removed
 * and path is untouched.  Records appended to the old file meanwhile are
 * not in the new one: run it where appends are serialized with it, and
 * reopen the append fd afterwards (the old fd still writes to the old,
 * unlinked file).  Returns OK, INVALID (a record), or ERROR with *err;
 * *seq advances only once the new file is in place (an ERROR from the
 * directory's fsync comes after the rename: the new file is there, maybe
 * not durably).
 */
int qcc_journal_compact(const char *path, qcc_journal_next_pt next,
    void *data, uint64_t *seq, uid_t uid, gid_t gid, int *err);

#endif /* QCC_JOURNAL_H */
