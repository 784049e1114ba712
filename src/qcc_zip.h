/*
 * A ZIP reader for QCC pushes, nginx-free: stored and deflated entries,
 * plain or in WinZip AES (AE-1, AE-2; AES-128/192/256), read from a file
 * descriptor (pread) or a memory buffer.  Every byte is treated as hostile.
 *
 * All state lives in a qcc_zip_t, so one archive per thread needs no lock.
 * Plaintext is streamed to a callback in chunks; it is authentic only when
 * qcc_zip_extract() returns QCC_ZIP_OK, so callers commit output only then.
 */

#ifndef QCC_ZIP_H
#define QCC_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>
#include <openssl/evp.h>


typedef enum {
    QCC_ZIP_OK = 0,
    QCC_ZIP_ERR_IO,             /* read error of the archive */
    QCC_ZIP_ERR_NOMEM,
    QCC_ZIP_ERR_CRYPTO,         /* OpenSSL failed */
    QCC_ZIP_ERR_CORRUPT,        /* truncated or malformed */
    QCC_ZIP_ERR_OVERLAP,        /* overlapping or out-of-order entry data */
    QCC_ZIP_ERR_DUPLICATE,      /* two entries with one name */
    QCC_ZIP_ERR_METHOD,         /* compression method not 0 or 8 */
    QCC_ZIP_ERR_ENCRYPTION,     /* ZipCrypto, strong encryption, AE-3... */
    QCC_ZIP_ERR_NO_PASSWORD,    /* encrypted entry, no password given */
    QCC_ZIP_ERR_PASSWORD,       /* wrong password (verifier mismatch) */
    QCC_ZIP_ERR_AUTH,           /* HMAC mismatch: tampered or wrong pass */
    QCC_ZIP_ERR_CRC,            /* CRC-32 mismatch */
    QCC_ZIP_ERR_TOO_LARGE,      /* beyond declared size, total or ratio */
    QCC_ZIP_ERR_TOO_MANY,       /* more entries than allowed */
    QCC_ZIP_ERR_NAME,           /* unsafe or too long entry name */
    QCC_ZIP_ERR_WRITE,          /* the caller's callback failed */
    QCC_ZIP_ERR_LAST
} qcc_zip_rc_t;


/* Zero in any field means the default shown. */
typedef struct {
    uint32_t        max_entries;    /* 1000: each costs a key derivation */
    uint32_t        max_name;       /* 1024 bytes */
    uint32_t        max_ratio;      /* 100: uncompressed / compressed */
    uint64_t        max_total;      /* 4 GiB: sum of uncompressed sizes */
    uint64_t        max_cd;         /* 4 MiB: central directory in memory */
} qcc_zip_limits_t;


typedef struct {
    const char     *name;           /* NUL-terminated, checked safe */
    size_t          name_len;
    uint64_t        usize;          /* uncompressed size (central dir) */
    uint64_t        csize;          /* stored size, AES overhead included */
    uint64_t        header;         /* local header offset */
    uint64_t        data;           /* offset of the entry data */
    uint32_t        crc;
    uint16_t        flags;
    uint16_t        method;         /* the real one: 0 or 8 */
    uint8_t         aes;            /* 0, or AES strength 1, 2, 3 */
    uint8_t         ae;             /* 0, or WinZip vendor version 1, 2 */
    uint8_t         dir;            /* name ends with '/' */
} qcc_zip_entry_t;


/*
 * Plaintext sink: returns 0 to go on, anything else to stop with
 * QCC_ZIP_ERR_WRITE.
 */
typedef int (*qcc_zip_write_pt)(void *data, const unsigned char *p,
    size_t n);

/*
 * For qcc_zip_extract_lent(): a buffer of the caller, of *size bytes (set
 * it; at most 256 KB are used), for the next inflated bytes; NULL stops
 * with QCC_ZIP_ERR_WRITE.  Whatever lands there comes to write() next,
 * in place, unless it was nothing: then the next call lends again.
 */
typedef unsigned char *(*qcc_zip_lend_pt)(void *data, size_t *size);


typedef struct {
    int                    fd;
    const unsigned char   *buf;
    uint64_t               size;
    qcc_zip_limits_t       limits;

    qcc_zip_entry_t       *entries;
    uint32_t               nentries;
    char                  *names;

    /* the entry an error is about, or -1; its name, escaped, or "" */
    int64_t                err_entry;
    char                   err_name[128];

    /* working state of qcc_zip_extract(), allocated on first use */
    unsigned char         *in;
    unsigned char         *out;
    unsigned char         *ks;
    z_stream               zs;
    unsigned               zs_init:1;
    void                  *isal;        /* with QCC_ZIP_ISAL: ISA-L state */
    EVP_CIPHER_CTX        *aes;
    EVP_MAC               *mac;
    EVP_MAC_CTX           *hmac;
} qcc_zip_t;


void qcc_zip_limits_default(qcc_zip_limits_t *limits);

/*
 * Reads and checks the whole directory: every local header against its
 * central entry, names, bounds, overlaps, limits.  On error the archive
 * is closed already and zip->err_entry tells the entry, if any.  limits
 * may be NULL.
 */
qcc_zip_rc_t qcc_zip_open_fd(qcc_zip_t *zip, int fd,
    const qcc_zip_limits_t *limits);
qcc_zip_rc_t qcc_zip_open_mem(qcc_zip_t *zip, const unsigned char *buf,
    size_t len, const qcc_zip_limits_t *limits);

/*
 * Streams the plaintext of an entry to write().  QCC_ZIP_OK means the
 * HMAC (and CRC where present) passed and exactly usize bytes went out.
 * After a fault in an AES entry (bad deflate data, output past its size,
 * a refusal of write()), the rest is read for the MAC only, and a MAC
 * mismatch is what is returned: QCC_ZIP_ERR_AUTH.  Derived keys are wiped
 * before return; the caller wipes its password.
 */
qcc_zip_rc_t qcc_zip_extract(qcc_zip_t *zip, const qcc_zip_entry_t *entry,
    const unsigned char *password, size_t password_len,
    qcc_zip_write_pt write, void *data);

/*
 * The same, but a deflated entry is inflated straight into buffers that
 * lend() gives, saving write() a copy; a stored entry still comes to
 * write() from the reader's own buffer.
 */
qcc_zip_rc_t qcc_zip_extract_lent(qcc_zip_t *zip,
    const qcc_zip_entry_t *entry, const unsigned char *password,
    size_t password_len, qcc_zip_lend_pt lend, qcc_zip_write_pt write,
    void *data);

/* Frees everything; the fd is the caller's. */
void qcc_zip_close(qcc_zip_t *zip);

const char *qcc_zip_strerror(qcc_zip_rc_t rc);

/* Whether a name is safe to extract: exported for the glue and tests. */
int qcc_zip_name_safe(const unsigned char *name, size_t len);

#endif /* QCC_ZIP_H */
