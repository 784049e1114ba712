/*
 * Unpacking a pushed order, nginx-free: the downloaded ZIP is decrypted
 * and inflated entry by entry, the push file of the feed streams through
 * the push-JSON validator into a new file, and that file is kept only if
 * the entry authenticated and the JSON is valid.  Runs in a thread: all
 * state is in the job and the result.
 *
 * Validation and writing overlap with decryption and inflation: the ZIP
 * reader inflates each chunk straight into a ring of QCC_UNPACK_SLOTS
 * buffers of QCC_UNPACK_SLOT_SIZE bytes (2 MB in all: enough to ride out a
 * few ms of either thread losing its core), and a second thread, started
 * and joined by qcc_unpack(), validates each and writes it to the output.
 * Without that thread (QCC_UNPACK_SERIAL, or if it cannot be started) the
 * same work is done in the calling thread, with the same results.
 */

#ifndef QCC_UNPACK_H
#define QCC_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#define QCC_UNPACK_REASON_MAX   256
#define QCC_UNPACK_IGNORED_MAX  256

#define QCC_UNPACK_SLOTS        8
#define QCC_UNPACK_SLOT_SIZE    (256 * 1024)

/*
 * job.flags.  QCC_UNPACK_CJSON parses each record with cJSON, as the
 * validator did first: the same verdicts as the default, which finds each
 * record's id in the scan itself (the fuzz target checks both agree), but
 * several times the CPU.  On bench/large.sh's 500 MB push, decrypting and
 * inflating alone take about 0.75 s of CPU, the scanner about 0.45 s, the
 * scanner with cJSON about 2.5 s (plus 0.2 s of writing either way): with
 * cJSON the validator's thread alone is under 0.3x the speed of
 * unpacking, whatever overlaps (README "Large pushes").
 */
#define QCC_UNPACK_CJSON        0x01
#define QCC_UNPACK_SERIAL       0x02    /* one thread: no overlap */


typedef enum {
    QCC_UNPACK_OK = 0,
    QCC_UNPACK_IO,          /* the archive or the output could not be
                               read or written: worth retrying */
    QCC_UNPACK_PASSWORD,    /* the password does not open the entry */
    QCC_UNPACK_ZIP,         /* corrupt, tampered or unsupported ZIP */
    QCC_UNPACK_NO_ENTRY,    /* no push file of the feed in the ZIP */
    QCC_UNPACK_JSON         /* the push file is not a valid push */
} qcc_unpack_rc_e;


typedef struct {
    const char            *zip_path;
    const char            *out_path;    /* created new, mode 0640 */
    const unsigned char   *password;
    size_t                 password_len;
    const char           **names;       /* accepted push file names, */
    size_t                 nnames;      /* the first found is used */
    uint64_t               max_output;  /* 0: the ZIP reader's default */
    size_t                 record_max;  /* 0: the validator's default */
    unsigned               flags;       /* QCC_UNPACK_CJSON, _SERIAL */
} qcc_unpack_job_t;


typedef struct {
    int                    rc;          /* a qcc_unpack_rc_e */
    uint64_t               bytes;       /* of the push file */
    uint64_t               records;
    uint64_t               total_size;
    char                   reason[QCC_UNPACK_REASON_MAX];
    char                   ignored[QCC_UNPACK_IGNORED_MAX];  /* names */
} qcc_unpack_result_t;


/*
 * Does the whole job; on any failure out_path does not exist afterwards.
 * On success out_path is written and fsync'd.  Returns res->rc.  Safe to
 * call from several threads at once (nothing global is touched); the
 * thread it starts has the caller's signal mask and is joined before
 * return.
 */
int qcc_unpack(const qcc_unpack_job_t *job, qcc_unpack_result_t *res);

#endif /* QCC_UNPACK_H */
