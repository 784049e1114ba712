/*
 * Unpacking a pushed order, nginx-free.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qcc_unpack.h"
#include "qcc_zip.h"
#include "qcc_pushjson.h"


typedef struct {
    int                    fd;
    int                    err;       /* errno of a failed write */
    uint64_t               bytes;
    qcc_pushjson_t        *json;
    int                    json_rc;
} qcc_unpack_sink_t;


static int
qcc_unpack_write(void *data, const unsigned char *p, size_t n)
{
    qcc_unpack_sink_t *s = data;

    ssize_t  w;

    /*
     * The validator sees every byte; the first error sticks.  After it,
     * the entry is still read to its end, unwritten, so that its MAC
     * decides whether the bytes were tampered with: that is the reason
     * to report, not the JSON error it caused.
     */
    if (s->json_rc == 0) {
        s->json_rc = qcc_pushjson_feed(s->json, p, n);
    }

    if (s->json_rc != 0 || s->err) {
        return 0;
    }

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

    return 0;
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
    qcc_pushjson_init(&json, &jl);

    sink.err = 0;
    sink.bytes = 0;
    sink.json = &json;
    sink.json_rc = 0;

    zrc = qcc_zip_extract(&zip, entry, job->password, job->password_len,
                          qcc_unpack_write, &sink);

    if (zrc == QCC_ZIP_OK) {
        sink.json_rc = qcc_pushjson_finish(&json);
    }

    if (zrc == QCC_ZIP_OK && sink.json_rc == QCC_PUSHJSON_OK) {
        res->records = json.records;
        res->total_size = json.total_size;
        res->bytes = sink.bytes;

        if (fsync(sink.fd) == -1) {
            sink.err = errno;
        }
    }

    if (close(sink.fd) == -1 && sink.err == 0) {
        sink.err = errno;
    }

    /* the ZIP's verdict first: a tampered entry explains bad JSON */
    if (zrc != QCC_ZIP_OK) {
        snprintf(res->reason, sizeof(res->reason), "%s: %s", entry->name,
                 qcc_zip_strerror(zrc));
        rc = (zrc == QCC_ZIP_ERR_PASSWORD) ? QCC_UNPACK_PASSWORD
             : (zrc == QCC_ZIP_ERR_IO || zrc == QCC_ZIP_ERR_NOMEM)
               ? QCC_UNPACK_IO : QCC_UNPACK_ZIP;

    } else if (sink.json_rc != QCC_PUSHJSON_OK) {
        snprintf(res->reason, sizeof(res->reason), "%s: %s", entry->name,
                 qcc_pushjson_error(&json));
        rc = QCC_UNPACK_JSON;

    } else if (sink.err) {
        snprintf(res->reason, sizeof(res->reason),
                 "cannot write the output: %s", strerror(sink.err));
        rc = QCC_UNPACK_IO;

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
