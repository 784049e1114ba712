/*
 * Unpacking a pushed order, nginx-free: the downloaded ZIP is decrypted
 * and inflated entry by entry, the push file of the feed streams through
 * the push-JSON validator into a new file, and that file is kept only if
 * the entry authenticated and the JSON is valid.  Runs in a thread: all
 * state is in the job and the result.
 */

#ifndef QCC_UNPACK_H
#define QCC_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#define QCC_UNPACK_REASON_MAX   256
#define QCC_UNPACK_IGNORED_MAX  256


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
 * On success out_path is written and fsync'd.  Returns res->rc.
 */
int qcc_unpack(const qcc_unpack_job_t *job, qcc_unpack_result_t *res);

#endif /* QCC_UNPACK_H */
