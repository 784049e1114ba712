/*
 * Unpacking a pushed order, nginx-free.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* sync_file_range() */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcc_unpack.h"
#include "qcc_zip.h"
#include "qcc_pushjson.h"


/* written bytes are handed to writeback every so often (see below) */
#define QCC_UNPACK_WRITEBACK    (8 * 1024 * 1024)


/*
 * With the validator's thread, that thread owns all of it (the output and
 * the validator) until it is joined: the reading thread only decrypts,
 * inflates and fills the ring.
 */
typedef struct {
    int                    fd;
    int                    err;       /* errno of a failed write */
    uint64_t               bytes;
    uint64_t               flushed;   /* bytes handed to writeback */
    qcc_pushjson_t        *json;
    int                    json_rc;
} qcc_unpack_sink_t;


/*
 * The ring between the ZIP reader (the calling thread, which fills slots)
 * and the validator (the thread it starts, which validates and writes
 * them out).  A slot is filled, validated or written without the lock:
 * only the filling side touches a free slot, only the emptying side a
 * full one.  A side that waits is woken only once half the ring is ready
 * for it, so that on a busy machine the two threads switch a few hundred
 * times per 500 MB rather than once per chunk.
 */
typedef struct {
    pthread_mutex_t        mutex;
    pthread_cond_t         filled;
    pthread_cond_t         emptied;
    unsigned char         *buf;       /* QCC_UNPACK_SLOTS slots */
    size_t                 len[QCC_UNPACK_SLOTS];
    unsigned               head;      /* the next slot to empty */
    unsigned               count;     /* full slots */
    int                    done;      /* the reader has finished */
    int                    cancel;    /* ... and what is left is moot */
    int                    invalid;   /* the JSON failed: no more slots */
    int                    failed;    /* a write failed: stop reading */
    int                    reader_waits;
    int                    validator_waits;
    qcc_unpack_sink_t     *sink;
} qcc_unpack_pipe_t;


/* writes one chunk to the output; -1 if that failed */

static int
qcc_unpack_output(qcc_unpack_sink_t *s, const unsigned char *p, size_t n)
{
    ssize_t  w;

    while (n) {
        w = write(s->fd, p, n);

        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }

            s->err = errno;
            return -1;
        }

        p += w;
        n -= w;
        s->bytes += w;
    }

    /*
     * Start writeback of what is written so far without waiting for it:
     * the disk works while the rest is unpacked, so the final fsync()
     * finds little left to do, and the dirty pages of one push stay few.
     * A failure here shows again in fsync().
     */
    if (s->bytes - s->flushed >= QCC_UNPACK_WRITEBACK) {
        (void) sync_file_range(s->fd, s->flushed, s->bytes - s->flushed,
                               SYNC_FILE_RANGE_WRITE);
        s->flushed = s->bytes;
    }

    return 0;
}


/*
 * The ZIP reader's sink without the validator's thread: validates, then
 * writes.  The validator sees every byte; the first error sticks.  After
 * it, the entry is still read to its end, unwritten, so that its MAC
 * decides whether the bytes were tampered with: that is the reason to
 * report, not the JSON error it caused.
 */

static int
qcc_unpack_write(void *data, const unsigned char *p, size_t n)
{
    qcc_unpack_sink_t *s = data;

    if (s->json_rc == 0) {
        s->json_rc = qcc_pushjson_feed(s->json, p, n);
    }

    if (s->json_rc != 0) {
        return 0;
    }

    return qcc_unpack_output(s, p, n);
}


/*
 * The reading side's wait for a free slot: the next one, whose number
 * stays the same until it is filled, however many the validator empties
 * meanwhile.  Returns 0, or 1 once the JSON failed (the slots are no
 * longer read), or -1 once a write failed.
 */

static int
qcc_unpack_free_slot(qcc_unpack_pipe_t *pp, unsigned *slot)
{
    int  rc;

    (void) pthread_mutex_lock(&pp->mutex);

    while (pp->count == QCC_UNPACK_SLOTS && !pp->invalid && !pp->failed) {
        pp->reader_waits = 1;
        (void) pthread_cond_wait(&pp->emptied, &pp->mutex);
    }

    pp->reader_waits = 0;

    rc = pp->failed ? -1 : pp->invalid ? 1 : 0;
    *slot = (pp->head + pp->count) % QCC_UNPACK_SLOTS;

    (void) pthread_mutex_unlock(&pp->mutex);

    return rc;
}


/*
 * Lends the ZIP reader the next free slot to inflate into, so that the
 * bytes need no copy (once the JSON failed, the bytes go nowhere and any
 * slot will do).
 */

static unsigned char *
qcc_unpack_lend(void *data, size_t *size)
{
    qcc_unpack_pipe_t *pp = data;

    unsigned  slot;

    if (qcc_unpack_free_slot(pp, &slot) < 0) {
        return NULL;
    }

    *size = QCC_UNPACK_SLOT_SIZE;

    return pp->buf + (size_t) slot * QCC_UNPACK_SLOT_SIZE;
}


/*
 * The ZIP reader's sink with it: hands the chunk to the validator's
 * thread in the next free slot (where it was inflated, or copied there if
 * the entry is stored), which validates it and then writes it: inflating
 * is the larger part of the work, so all the rest, write() included, is
 * done on the other side.  What is written before the validator finds an
 * error is removed with the output; after it, the entry is read on to its
 * MAC as above.  A failed write stops the reading: the ZIP reader returns
 * QCC_ZIP_ERR_WRITE, unless the MAC says more.
 */

static int
qcc_unpack_produce(void *data, const unsigned char *p, size_t n)
{
    qcc_unpack_pipe_t *pp = data;

    int             rc;
    size_t          k;
    unsigned        slot;
    unsigned char  *dst;

    while (n) {
        rc = qcc_unpack_free_slot(pp, &slot);

        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }

        dst = pp->buf + (size_t) slot * QCC_UNPACK_SLOT_SIZE;
        k = n < QCC_UNPACK_SLOT_SIZE ? n : QCC_UNPACK_SLOT_SIZE;

        if (p != dst) {
            memcpy(dst, p, k);
        }

        pp->len[slot] = k;

        (void) pthread_mutex_lock(&pp->mutex);
        pp->count++;

        if (pp->validator_waits && pp->count >= QCC_UNPACK_SLOTS / 2) {
            (void) pthread_cond_signal(&pp->filled);
        }

        (void) pthread_mutex_unlock(&pp->mutex);

        p += k;
        n -= k;
    }

    return 0;
}


/*
 * The validator's thread: validates and writes slots until the reader is
 * done, as qcc_unpack_write() does in one thread.
 */

static void *
qcc_unpack_validator(void *data)
{
    qcc_unpack_pipe_t *pp = data;

    size_t              n;
    unsigned            slot;
    unsigned char      *p;
    qcc_unpack_sink_t  *s;

    s = pp->sink;

    for ( ;; ) {
        (void) pthread_mutex_lock(&pp->mutex);

        while (pp->count == 0 && !pp->done) {
            pp->validator_waits = 1;
            (void) pthread_cond_wait(&pp->filled, &pp->mutex);
        }

        pp->validator_waits = 0;

        if (pp->count == 0 || pp->cancel) {
            (void) pthread_mutex_unlock(&pp->mutex);
            break;
        }

        slot = pp->head;

        (void) pthread_mutex_unlock(&pp->mutex);

        p = pp->buf + (size_t) slot * QCC_UNPACK_SLOT_SIZE;
        n = pp->len[slot];

        /* after a failed write, what is left goes nowhere */
        if (s->json_rc == 0 && s->err == 0) {
            s->json_rc = qcc_pushjson_feed(s->json, p, n);

            if (s->json_rc == 0) {
                (void) qcc_unpack_output(s, p, n);
            }
        }

        (void) pthread_mutex_lock(&pp->mutex);

        pp->head = (pp->head + 1) % QCC_UNPACK_SLOTS;
        pp->count--;
        pp->invalid = (s->json_rc != 0);
        pp->failed = (s->err != 0);

        if (pp->reader_waits
            && (pp->invalid || pp->failed
                || pp->count <= QCC_UNPACK_SLOTS / 2))
        {
            (void) pthread_cond_signal(&pp->emptied);
        }

        (void) pthread_mutex_unlock(&pp->mutex);
    }

    return NULL;
}


/*
 * Streams the entry through the validator into the output: with the
 * validator's thread if it can be had, in this thread otherwise.
 */

static qcc_zip_rc_t
qcc_unpack_extract(qcc_zip_t *zip, const qcc_zip_entry_t *entry,
    const qcc_unpack_job_t *job, qcc_unpack_sink_t *sink)
{
    int                 inited;
    pthread_t           tid;
    qcc_zip_rc_t        zrc;
    qcc_unpack_pipe_t   pp;

    if (job->flags & QCC_UNPACK_SERIAL) {
        goto serial;
    }

    memset(&pp, 0, sizeof(qcc_unpack_pipe_t));
    pp.sink = sink;
    inited = 0;

    pp.buf = malloc((size_t) QCC_UNPACK_SLOTS * QCC_UNPACK_SLOT_SIZE);
    if (pp.buf == NULL) {
        goto serial;
    }

    if (pthread_mutex_init(&pp.mutex, NULL) != 0) {
        goto failed;
    }

    inited++;

    if (pthread_cond_init(&pp.filled, NULL) != 0) {
        goto failed;
    }

    inited++;

    if (pthread_cond_init(&pp.emptied, NULL) != 0) {
        goto failed;
    }

    inited++;

    if (pthread_create(&tid, NULL, qcc_unpack_validator, &pp) != 0) {
        goto failed;
    }

    zrc = qcc_zip_extract_lent(zip, entry, job->password,
                               job->password_len, qcc_unpack_lend,
                               qcc_unpack_produce, &pp);

    (void) pthread_mutex_lock(&pp.mutex);
    pp.done = 1;
    pp.cancel = (zrc != QCC_ZIP_OK);
    (void) pthread_cond_signal(&pp.filled);
    (void) pthread_mutex_unlock(&pp.mutex);

    (void) pthread_join(tid, NULL);

    (void) pthread_cond_destroy(&pp.emptied);
    (void) pthread_cond_destroy(&pp.filled);
    (void) pthread_mutex_destroy(&pp.mutex);
    free(pp.buf);

    return zrc;

failed:

    if (inited > 2) {
        (void) pthread_cond_destroy(&pp.emptied);
    }

    if (inited > 1) {
        (void) pthread_cond_destroy(&pp.filled);
    }

    if (inited > 0) {
        (void) pthread_mutex_destroy(&pp.mutex);
    }

    free(pp.buf);

serial:

    return qcc_zip_extract(zip, entry, job->password, job->password_len,
                           qcc_unpack_write, sink);
}


static void
qcc_unpack_ignored(qcc_unpack_result_t *res, const char *name)
{
    size_t  len, room;

    len = strlen(res->ignored);
    room = sizeof(res->ignored) - len;

    if (room > 2) {
        snprintf(res->ignored + len, room, "%s%s", len ? ", " : "", name);
    }
}


int
qcc_unpack(const qcc_unpack_job_t *job, qcc_unpack_result_t *res)
{
    int                     fd, zrc, rc;
    size_t                  i, k;
    qcc_zip_t               zip;
    qcc_pushjson_t          json;
    qcc_zip_limits_t        limits;
    qcc_unpack_sink_t       sink;
    const qcc_zip_entry_t  *entry;
    qcc_pushjson_limits_t   jl;

    memset(res, 0, sizeof(qcc_unpack_result_t));
    memset(&zip, 0, sizeof(qcc_zip_t));

    fd = open(job->zip_path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(res->reason, sizeof(res->reason),
                 "cannot open the download: %s", strerror(errno));
        return res->rc = QCC_UNPACK_IO;
    }

    qcc_zip_limits_default(&limits);

    if (job->max_output) {
        limits.max_total = job->max_output;
    }

    zrc = qcc_zip_open_fd(&zip, fd, &limits);

    if (zrc != QCC_ZIP_OK) {
        snprintf(res->reason, sizeof(res->reason), "bad ZIP: %s",
                 qcc_zip_strerror(zrc));
        rc = (zrc == QCC_ZIP_ERR_IO || zrc == QCC_ZIP_ERR_NOMEM)
             ? QCC_UNPACK_IO : QCC_UNPACK_ZIP;
        goto done;
    }

    /* the push file: the first entry with an accepted name */

    entry = NULL;

    for (i = 0; i < zip.nentries; i++) {
        for (k = 0; k < job->nnames; k++) {
            if (entry == NULL && strcmp(zip.entries[i].name, job->names[k])
                                 == 0)
            {
                entry = &zip.entries[i];
                break;
            }
        }

        if (entry != &zip.entries[i]) {
            qcc_unpack_ignored(res, zip.entries[i].name);
        }
    }

    if (entry == NULL) {
        snprintf(res->reason, sizeof(res->reason),
                 "no %s in the ZIP", job->names[0]);
        rc = QCC_UNPACK_NO_ENTRY;
        goto done;
    }

    sink.fd = open(job->out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                   0640);
    if (sink.fd == -1) {
        snprintf(res->reason, sizeof(res->reason),
                 "cannot create the output: %s", strerror(errno));
        rc = QCC_UNPACK_IO;
        goto done;
    }

    memset(&jl, 0, sizeof(qcc_pushjson_limits_t));
    jl.record_max = job->record_max;
    jl.flags = (job->flags & QCC_UNPACK_CJSON) ? 0 : QCC_PUSHJSON_NO_CJSON;
    qcc_pushjson_init(&json, &jl);

    sink.err = 0;
    sink.bytes = 0;
    sink.flushed = 0;
    sink.json = &json;
    sink.json_rc = 0;

    zrc = qcc_unpack_extract(&zip, entry, job, &sink);

    /*
     * A write that failed leaves the validator short of the rest (the
     * pipelined reader may have finished meanwhile): no verdict on it.
     */
    if (zrc == QCC_ZIP_OK && sink.err == 0) {
        sink.json_rc = qcc_pushjson_finish(&json);
    }

    if (zrc == QCC_ZIP_OK && sink.err == 0
        && sink.json_rc == QCC_PUSHJSON_OK)
    {
        res->records = json.records;
        res->total_size = json.total_size;
        res->bytes = sink.bytes;

        if (fsync(sink.fd) == -1) {
            sink.err = errno;
        }
    }

    if (close(sink.fd) == -1 && sink.err == 0
        && sink.json_rc == QCC_PUSHJSON_OK)
    {
        sink.err = errno;
    }

    /*
     * The ZIP's verdict first: a tampered entry explains bad JSON.  But a
     * write that failed stopped the reading: the output is to blame.
     */
    if (zrc == QCC_ZIP_ERR_WRITE && sink.err) {
        snprintf(res->reason, sizeof(res->reason),
                 "cannot write the output: %s", strerror(sink.err));
        rc = QCC_UNPACK_IO;

    } else if (zrc != QCC_ZIP_OK) {
        snprintf(res->reason, sizeof(res->reason), "%s: %s", entry->name,
                 qcc_zip_strerror(zrc));
        rc = (zrc == QCC_ZIP_ERR_PASSWORD) ? QCC_UNPACK_PASSWORD
             : (zrc == QCC_ZIP_ERR_IO || zrc == QCC_ZIP_ERR_NOMEM)
               ? QCC_UNPACK_IO : QCC_UNPACK_ZIP;

    } else if (sink.err) {
        snprintf(res->reason, sizeof(res->reason),
                 "cannot write the output: %s", strerror(sink.err));
        rc = QCC_UNPACK_IO;

    } else if (sink.json_rc != QCC_PUSHJSON_OK) {
        snprintf(res->reason, sizeof(res->reason), "%s: %s", entry->name,
                 qcc_pushjson_error(&json));
        rc = QCC_UNPACK_JSON;

    } else {
        rc = QCC_UNPACK_OK;
    }

    qcc_pushjson_free(&json);

    if (rc != QCC_UNPACK_OK) {
        (void) unlink(job->out_path);
    }

done:

    qcc_zip_close(&zip);
    close(fd);

    return res->rc = rc;
}
