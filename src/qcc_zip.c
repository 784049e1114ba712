/*
 * A hardened ZIP reader with WinZip AES, nginx-free (see qcc_zip.h).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "qcc_zip.h"

/*
 * Built with -DQCC_ZIP_ISAL=1 (and -lisal), deflate goes through ISA-L's
 * igzip, streaming like zlib in about 90 KB of state and twice as fast
 * on this kind of data; zlib otherwise.
 */
#if (QCC_ZIP_ISAL)
#include <isa-l/igzip_lib.h>
#endif


#define QCC_ZIP_IN_SIZE      (256 * 1024)
#define QCC_ZIP_OUT_SIZE     (256 * 1024)
#define QCC_ZIP_KS_SIZE      (32 * 1024)

/* below this, an entry may compress as well as it likes */
#define QCC_ZIP_RATIO_FLOOR  (1024 * 1024)

#define QCC_ZIP_SIG_LOCAL    0x04034b50
#define QCC_ZIP_SIG_CENTRAL  0x02014b50
#define QCC_ZIP_SIG_DD       0x08074b50
#define QCC_ZIP_SIG_EOCD     0x06054b50
#define QCC_ZIP_SIG_EOCD64   0x06064b50
#define QCC_ZIP_SIG_LOC64    0x07064b50

#define QCC_ZIP_F_ENCRYPTED  0x0001
#define QCC_ZIP_F_DD         0x0008
#define QCC_ZIP_F_STRONG     0x0040

#define QCC_ZIP_M_AES        99

#define QCC_ZIP_MAC_LEN      10
#define QCC_ZIP_PBKDF2_ITER  1000


typedef struct {
    uint64_t   start;
    uint64_t   end;
    uint32_t   index;
} qcc_zip_span_t;


/* what the extra fields of one header say */
typedef struct {
    uint64_t   usize;
    uint64_t   csize;
    uint64_t   header;
    uint32_t   disk;
    uint16_t   ae;
    uint16_t   aes;
    uint16_t   method;
    unsigned   has_aes:1;
} qcc_zip_extra_t;


typedef struct {
    qcc_zip_t         *zip;
    const qcc_zip_entry_t  *entry;
    qcc_zip_lend_pt    lend;
    qcc_zip_write_pt   write;
    void              *data;
    uint64_t           done;
    uint32_t           crc;
    unsigned           check_crc:1;
} qcc_zip_sink_t;


static const char  *qcc_zip_errors[] = {
    "ok",
    "read error",
    "out of memory",
    "crypto library error",
    "truncated or corrupt archive",
    "overlapping or out-of-bounds entries",
    "duplicate entry name",
    "unsupported compression method",
    "unsupported encryption (ZipCrypto or strong encryption)",
    "encrypted entry and no password",
    "wrong password",
    "authentication failed (tampered, or wrong password)",
    "CRC mismatch",
    "too large (declared size, total size or compression ratio)",
    "too many entries",
    "unsafe or too long entry name",
    "write failed",
};


static uint16_t
qcc_zip_get16(const unsigned char *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}


static uint32_t
qcc_zip_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


static uint64_t
qcc_zip_get64(const unsigned char *p)
{
    return (uint64_t) qcc_zip_get32(p) | (uint64_t) qcc_zip_get32(p + 4) << 32;
}


const char *
qcc_zip_strerror(qcc_zip_rc_t rc)
{
    if ((unsigned) rc >= QCC_ZIP_ERR_LAST) {
        return "unknown error";
    }

    return qcc_zip_errors[rc];
}


void
qcc_zip_limits_default(qcc_zip_limits_t *limits)
{
    limits->max_entries = 1000;
    limits->max_name = 1024;
    limits->max_ratio = 100;
    limits->max_total = (uint64_t) 4 << 30;
    limits->max_cd = 4 << 20;
}


/* Reads exactly n bytes at off, which must lie inside the archive. */
static qcc_zip_rc_t
qcc_zip_read(qcc_zip_t *zip, uint64_t off, unsigned char *p, size_t n)
{
    ssize_t  r;

    if (off > zip->size || n > zip->size - off) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (zip->buf) {
        memcpy(p, zip->buf + off, n);
        return QCC_ZIP_OK;
    }

    while (n) {
        r = pread(zip->fd, p, n, (off_t) off);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }

            return QCC_ZIP_ERR_IO;
        }

        if (r == 0) {
            /* the file shrank under us */
            return QCC_ZIP_ERR_CORRUPT;
        }

        p += r;
        n -= r;
        off += r;
    }

    return QCC_ZIP_OK;
}


/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t
qcc_zip_utf8(const unsigned char *p, size_t len)
{
    size_t    n, i;
    uint32_t  c, min;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; c &= 0x1f; min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; c &= 0x0f; min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; c &= 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = c << 6 | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


/*
 * Keeps the name of the entry an error is about, for the message: a
 * name can hold anything when it is the reason for the error, so bytes
 * other than printable ASCII and UTF-8 (C1 controls excluded) are escaped.
 */
static void
qcc_zip_err_name(qcc_zip_t *zip, const unsigned char *name, size_t len)
{
    char           *p, *end;
    size_t          i, n;
    unsigned char   c;

    static const char  hex[] = "0123456789abcdef";

    p = zip->err_name;
    end = p + sizeof(zip->err_name) - 1;

    for (i = 0; i < len; i++) {
        c = name[i];
        n = c >= 0x80 ? qcc_zip_utf8(name + i, len - i) : 0;

        if (n && !(c == 0xc2 && name[i + 1] < 0xa0)) {
            if (end - p < (ptrdiff_t) n) {
                break;
            }

            memcpy(p, name + i, n);
            p += n;
            i += n - 1;
            continue;
        }

        if (c < 0x20 || c >= 0x7f || c == '\\') {
            if (end - p < 4) {
                break;
            }

            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            if (p == end) {
                break;
            }

            *p++ = (char) c;
        }
    }

    *p = '\0';
}


int
qcc_zip_name_safe(const unsigned char *name, size_t len)
{
    size_t         i, start, n;
    unsigned char  c;

    if (len == 0 || name[0] == '/') {
        return 0;
    }

    /* "C:", "C:x": a drive letter on Windows */
    if (len >= 2 && name[1] == ':'
        && ((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z'))
    {
        return 0;
    }

    start = 0;

    for (i = 0; i <= len; i++) {

        if (i == len || name[i] == '/') {
            n = i - start;

            /* empty, "." and ".." components; a trailing '/' is a dir */
            if ((n == 0 && i != len)
                || (n == 1 && name[start] == '.')
                || (n == 2 && name[start] == '.' && name[start + 1] == '.'))
            {
                return 0;
            }

            start = i + 1;
            continue;
        }

        c = name[i];

        if (c < 0x20 || c == 0x7f || c == '\\') {
            return 0;
        }

        if (c >= 0x80) {
            n = qcc_zip_utf8(name + i, len - i);

            /* invalid, or a C1 control (U+0080 to U+009F) */
            if (n == 0 || (c == 0xc2 && name[i + 1] < 0xa0)) {
                return 0;
            }

            i += n - 1;
        }
    }

    return 1;
}


/*
 * Parses an extra field block.  The zip64 field holds only the values
 * whose 32-bit fields are 0xffffffff (0xffff for the disk), in order.
 */
static qcc_zip_rc_t
qcc_zip_extra(const unsigned char *p, size_t len, int want_usize,
    int want_csize, int want_header, int want_disk, qcc_zip_extra_t *x)
{
    size_t                id, n, need;
    const unsigned char  *end, *f;

    end = p + len;

    while (end - p >= 4) {
        id = qcc_zip_get16(p);
        n = qcc_zip_get16(p + 2);
        p += 4;

        if (n > (size_t) (end - p)) {
            return QCC_ZIP_ERR_CORRUPT;
        }

        if (id == 0x0001) {
            need = 8 * (want_usize + want_csize + want_header)
                   + 4 * want_disk;

            if (n < need) {
                return QCC_ZIP_ERR_CORRUPT;
            }

            f = p;

            if (want_usize) {
                x->usize = qcc_zip_get64(f);
                f += 8;
            }

            if (want_csize) {
                x->csize = qcc_zip_get64(f);
                f += 8;
            }

            if (want_header) {
                x->header = qcc_zip_get64(f);
                f += 8;
            }

            if (want_disk) {
                x->disk = qcc_zip_get32(f);
            }

            want_usize = want_csize = want_header = want_disk = 0;

        } else if (id == 0x9901) {
            if (n != 7 || p[2] != 'A' || p[3] != 'E' || x->has_aes) {
                return QCC_ZIP_ERR_CORRUPT;
            }

            x->has_aes = 1;
            x->ae = qcc_zip_get16(p);
            x->aes = p[4];
            x->method = qcc_zip_get16(p + 5);
        }

        p += n;
    }

    /* a 0xffffffff field with no zip64 value behind it */
    if (want_usize || want_csize || want_header || want_disk) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    return QCC_ZIP_OK;
}


/* Finds the central directory through the end record(s). */
static qcc_zip_rc_t
qcc_zip_find_cd(qcc_zip_t *zip, uint64_t *cd_off, uint64_t *cd_size,
    uint64_t *count)
{
    size_t          tail, i;
    uint64_t        eocd, end, off64, rec;
    qcc_zip_rc_t    rc;
    unsigned char  *buf, *p, loc[20], e64[56];

    if (zip->size < 22) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    tail = zip->size < 22 + 65535 ? (size_t) zip->size : 22 + 65535;

    buf = malloc(tail);
    if (buf == NULL) {
        return QCC_ZIP_ERR_NOMEM;
    }

    rc = qcc_zip_read(zip, zip->size - tail, buf, tail);
    if (rc != QCC_ZIP_OK) {
        free(buf);
        return rc;
    }

    /* the last record whose comment ends exactly at the end of file */
    p = NULL;

    for (i = tail - 22; ; i--) {
        if (qcc_zip_get32(buf + i) == QCC_ZIP_SIG_EOCD
            && (size_t) qcc_zip_get16(buf + i + 20) == tail - i - 22)
        {
            p = buf + i;
            break;
        }

        if (i == 0) {
            break;
        }
    }

    if (p == NULL) {
        free(buf);
        return QCC_ZIP_ERR_CORRUPT;
    }

    eocd = zip->size - tail + i;

    /* no multi-disk archives */
    if (qcc_zip_get16(p + 4) != 0 || qcc_zip_get16(p + 6) != 0
        || qcc_zip_get16(p + 8) != qcc_zip_get16(p + 10))
    {
        free(buf);
        return QCC_ZIP_ERR_CORRUPT;
    }

    *count = qcc_zip_get16(p + 10);
    *cd_size = qcc_zip_get32(p + 12);
    *cd_off = qcc_zip_get32(p + 16);
    end = eocd;

    free(buf);

    if (eocd >= 20) {
        rc = qcc_zip_read(zip, eocd - 20, loc, 20);
        if (rc != QCC_ZIP_OK) {
            return rc;
        }

    } else {
        memset(loc, 0, sizeof(loc));
    }

    if (qcc_zip_get32(loc) == QCC_ZIP_SIG_LOC64) {

        off64 = qcc_zip_get64(loc + 8);

        if (qcc_zip_get32(loc + 4) != 0 || qcc_zip_get32(loc + 16) > 1
            || off64 > eocd - 20 || eocd - 20 - off64 < 56)
        {
            return QCC_ZIP_ERR_CORRUPT;
        }

        rc = qcc_zip_read(zip, off64, e64, 56);
        if (rc != QCC_ZIP_OK) {
            return rc;
        }

        rec = qcc_zip_get64(e64 + 4);

        if (qcc_zip_get32(e64) != QCC_ZIP_SIG_EOCD64
            || rec < 44 || rec > eocd - 20 - off64 - 12
            || qcc_zip_get32(e64 + 16) != 0 || qcc_zip_get32(e64 + 20) != 0
            || qcc_zip_get64(e64 + 24) != qcc_zip_get64(e64 + 32))
        {
            return QCC_ZIP_ERR_CORRUPT;
        }

        *count = qcc_zip_get64(e64 + 32);
        *cd_size = qcc_zip_get64(e64 + 40);
        *cd_off = qcc_zip_get64(e64 + 48);
        end = off64;

    } else if (*count == 0xffff || *cd_size == 0xffffffff
               || *cd_off == 0xffffffff)
    {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (*count > zip->limits.max_entries) {
        return QCC_ZIP_ERR_TOO_MANY;
    }

    /* the directory ends where the end record(s) begin */
    if (*cd_off > end || *cd_size != end - *cd_off
        || *cd_size < *count * 46)
    {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (*cd_size > zip->limits.max_cd) {
        return QCC_ZIP_ERR_TOO_LARGE;
    }

    return QCC_ZIP_OK;
}


/* Checks what a central entry says about method and encryption. */
static qcc_zip_rc_t
qcc_zip_check_entry(qcc_zip_t *zip, qcc_zip_entry_t *e, uint16_t method,
    qcc_zip_extra_t *x, uint64_t *total)
{
    uint64_t  over, dlen;

    if (e->flags & QCC_ZIP_F_STRONG) {
        return QCC_ZIP_ERR_ENCRYPTION;
    }

    if (e->flags & QCC_ZIP_F_ENCRYPTED) {
        if (method != QCC_ZIP_M_AES) {
            /* traditional PKWARE encryption (ZipCrypto) */
            return QCC_ZIP_ERR_ENCRYPTION;
        }

        if (!x->has_aes) {
            return QCC_ZIP_ERR_CORRUPT;
        }

        if ((x->ae != 1 && x->ae != 2) || x->aes < 1 || x->aes > 3) {
            return QCC_ZIP_ERR_ENCRYPTION;
        }

        e->ae = (uint8_t) x->ae;
        e->aes = (uint8_t) x->aes;
        method = x->method;

    } else if (method == QCC_ZIP_M_AES) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (method != 0 && method != 8) {
        return QCC_ZIP_ERR_METHOD;
    }

    e->method = method;

    /* salt, verifier, MAC */
    over = e->aes ? 4 + 4 * e->aes + 2 + QCC_ZIP_MAC_LEN : 0;

    if (e->csize < over) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    dlen = e->csize - over;

    if ((method == 0 && dlen != e->usize) || (e->dir && e->usize != 0)) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (e->usize > QCC_ZIP_RATIO_FLOOR
        && e->usize / zip->limits.max_ratio >= dlen)
    {
        return QCC_ZIP_ERR_TOO_LARGE;
    }

    if (e->usize > zip->limits.max_total
        || *total > zip->limits.max_total - e->usize)
    {
        return QCC_ZIP_ERR_TOO_LARGE;
    }

    *total += e->usize;

    return QCC_ZIP_OK;
}


static qcc_zip_rc_t
qcc_zip_read_cd(qcc_zip_t *zip, uint64_t cd_off, uint64_t cd_size,
    uint64_t count)
{
    char                 *np;
    size_t                nlen, elen, clen, names;
    uint16_t              method;
    uint32_t              i;
    uint64_t              total;
    qcc_zip_rc_t          rc;
    qcc_zip_extra_t       x;
    qcc_zip_entry_t      *e;
    const unsigned char  *p, *end;
    unsigned char        *cd;

    cd = malloc(cd_size ? cd_size : 1);
    if (cd == NULL) {
        return QCC_ZIP_ERR_NOMEM;
    }

    zip->entries = calloc(count ? count : 1, sizeof(qcc_zip_entry_t));
    if (zip->entries == NULL) {
        free(cd);
        return QCC_ZIP_ERR_NOMEM;
    }

    rc = qcc_zip_read(zip, cd_off, cd, cd_size);
    if (rc != QCC_ZIP_OK) {
        goto done;
    }

    p = cd;
    end = cd + cd_size;
    names = 0;
    total = 0;
    rc = QCC_ZIP_ERR_CORRUPT;

    for (i = 0; i < count; i++) {
        zip->err_entry = i;
        zip->err_name[0] = '\0';
        e = &zip->entries[i];

        if (end - p < 46 || qcc_zip_get32(p) != QCC_ZIP_SIG_CENTRAL) {
            goto done;
        }

        nlen = qcc_zip_get16(p + 28);
        elen = qcc_zip_get16(p + 30);
        clen = qcc_zip_get16(p + 32);

        if ((size_t) (end - p) - 46 < nlen + elen + clen) {
            goto done;
        }

        qcc_zip_err_name(zip, p + 46, nlen);

        if (nlen > zip->limits.max_name
            || !qcc_zip_name_safe(p + 46, nlen))
        {
            rc = QCC_ZIP_ERR_NAME;
            goto done;
        }

        e->name = (const char *) p + 46;
        e->name_len = nlen;
        e->dir = p[46 + nlen - 1] == '/';
        e->flags = qcc_zip_get16(p + 8);
        method = qcc_zip_get16(p + 10);
        e->crc = qcc_zip_get32(p + 16);

        memset(&x, 0, sizeof(x));
        x.csize = qcc_zip_get32(p + 20);
        x.usize = qcc_zip_get32(p + 24);
        x.disk = qcc_zip_get16(p + 34);
        x.header = qcc_zip_get32(p + 42);

        rc = qcc_zip_extra(p + 46 + nlen, elen,
                           x.usize == 0xffffffff, x.csize == 0xffffffff,
                           x.header == 0xffffffff, x.disk == 0xffff, &x);
        if (rc != QCC_ZIP_OK) {
            goto done;
        }

        rc = QCC_ZIP_ERR_CORRUPT;

        if (x.disk != 0) {
            goto done;
        }

        e->usize = x.usize;
        e->csize = x.csize;
        e->header = x.header;

        rc = qcc_zip_check_entry(zip, e, method, &x, &total);
        if (rc != QCC_ZIP_OK) {
            goto done;
        }

        rc = QCC_ZIP_ERR_CORRUPT;
        names += nlen + 1;
        p += 46 + nlen + elen + clen;
    }

    if (p != end) {
        zip->err_entry = -1;
        goto done;
    }

    zip->names = malloc(names ? names : 1);
    if (zip->names == NULL) {
        rc = QCC_ZIP_ERR_NOMEM;
        goto done;
    }

    np = zip->names;

    for (i = 0; i < count; i++) {
        e = &zip->entries[i];
        memcpy(np, e->name, e->name_len);
        np[e->name_len] = '\0';
        e->name = np;
        np += e->name_len + 1;
    }

    zip->nentries = (uint32_t) count;
    zip->err_entry = -1;
    zip->err_name[0] = '\0';
    rc = QCC_ZIP_OK;

done:

    if (rc != QCC_ZIP_OK) {
        /* names still point into cd */
        free(zip->entries);
        zip->entries = NULL;
    }

    free(cd);

    return rc;
}


/*
 * Checks the local header of an entry against its central entry and
 * returns the span that the entry occupies: header, data, descriptor.
 */
static qcc_zip_rc_t
qcc_zip_check_local(qcc_zip_t *zip, qcc_zip_entry_t *e, uint64_t cd_off,
    qcc_zip_span_t *span)
{
    size_t           nlen, elen, dd;
    uint16_t         flags, method;
    uint32_t         crc;
    uint64_t         end, left;
    qcc_zip_rc_t     rc;
    qcc_zip_extra_t  x;
    unsigned char    h[30], *v;

    span->start = e->header;

    if (e->header > cd_off || cd_off - e->header < 30) {
        return QCC_ZIP_ERR_OVERLAP;
    }

    rc = qcc_zip_read(zip, e->header, h, 30);
    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    flags = qcc_zip_get16(h + 6);
    method = e->aes ? QCC_ZIP_M_AES : e->method;
    crc = qcc_zip_get32(h + 14);
    nlen = qcc_zip_get16(h + 26);
    elen = qcc_zip_get16(h + 28);

    if (qcc_zip_get32(h) != QCC_ZIP_SIG_LOCAL
        || ((flags ^ e->flags)
            & (QCC_ZIP_F_ENCRYPTED | QCC_ZIP_F_DD | QCC_ZIP_F_STRONG))
        || qcc_zip_get16(h + 8) != method
        || nlen != e->name_len)
    {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (cd_off - e->header - 30 < nlen + elen) {
        return QCC_ZIP_ERR_OVERLAP;
    }

    /* zip->in holds at least 2 * 64 KiB */
    v = zip->in;

    rc = qcc_zip_read(zip, e->header + 30, v, nlen + elen);
    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    if (memcmp(v, e->name, nlen) != 0) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    memset(&x, 0, sizeof(x));
    x.csize = qcc_zip_get32(h + 18);
    x.usize = qcc_zip_get32(h + 22);

    rc = qcc_zip_extra(v + nlen, elen, x.usize == 0xffffffff,
                       x.csize == 0xffffffff, 0, 0, &x);
    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    if (e->aes
        && (!x.has_aes || x.ae != e->ae || x.aes != e->aes
            || x.method != e->method))
    {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (!(e->flags & QCC_ZIP_F_DD)) {
        if (crc != e->crc || x.csize != e->csize || x.usize != e->usize) {
            return QCC_ZIP_ERR_CORRUPT;
        }

    } else if ((crc != 0 && crc != e->crc)
               || (x.csize != 0 && x.csize != e->csize)
               || (x.usize != 0 && x.usize != e->usize))
    {
        return QCC_ZIP_ERR_CORRUPT;
    }

    e->data = e->header + 30 + nlen + elen;

    if (e->csize > cd_off - e->data) {
        return QCC_ZIP_ERR_OVERLAP;
    }

    end = e->data + e->csize;

    if (e->flags & QCC_ZIP_F_DD) {
        /* crc, sizes of 4 or 8 bytes, with or without a signature */
        left = cd_off - end;
        memset(h, 0, 24);

        rc = qcc_zip_read(zip, end, h, left < 24 ? left : 24);
        if (rc != QCC_ZIP_OK) {
            return rc;
        }

        v = h;
        dd = 0;

        if (qcc_zip_get32(v) == QCC_ZIP_SIG_DD) {
            v += 4;
            dd = 4;
        }

        for ( ;; ) {
            if (qcc_zip_get32(v) == e->crc
                && qcc_zip_get32(v + 4) == e->csize
                && qcc_zip_get32(v + 8) == e->usize)
            {
                dd += 12;
                break;
            }

            if (dd + 20 <= 24
                && qcc_zip_get32(v) == e->crc
                && qcc_zip_get64(v + 4) == e->csize
                && qcc_zip_get64(v + 12) == e->usize)
            {
                dd += 20;
                break;
            }

            if (dd == 0) {
                return QCC_ZIP_ERR_CORRUPT;
            }

            /* the "signature" may have been a CRC */
            v = h;
            dd = 0;
        }

        if (dd > left) {
            return QCC_ZIP_ERR_CORRUPT;
        }

        end += dd;
    }

    span->end = end;

    return QCC_ZIP_OK;
}


static int
qcc_zip_cmp_span(const void *a, const void *b)
{
    const qcc_zip_span_t  *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}


static int
qcc_zip_cmp_name(const void *a, const void *b)
{
    const qcc_zip_entry_t  *x = *(qcc_zip_entry_t * const *) a;
    const qcc_zip_entry_t  *y = *(qcc_zip_entry_t * const *) b;

    return strcmp(x->name, y->name);
}


/* Local headers, overlaps and duplicate names, all before any output. */
static qcc_zip_rc_t
qcc_zip_check_layout(qcc_zip_t *zip, uint64_t cd_off)
{
    uint32_t           i, n;
    qcc_zip_rc_t       rc;
    qcc_zip_span_t    *spans;
    qcc_zip_entry_t  **byname;

    n = zip->nentries;

    if (n == 0) {
        return QCC_ZIP_OK;
    }

    spans = malloc(n * sizeof(qcc_zip_span_t));
    byname = malloc(n * sizeof(qcc_zip_entry_t *));

    if (spans == NULL || byname == NULL) {
        rc = QCC_ZIP_ERR_NOMEM;
        goto done;
    }

    for (i = 0; i < n; i++) {
        zip->err_entry = i;
        spans[i].index = i;
        byname[i] = &zip->entries[i];

        rc = qcc_zip_check_local(zip, &zip->entries[i], cd_off, &spans[i]);
        if (rc != QCC_ZIP_OK) {
            goto done;
        }
    }

    qsort(spans, n, sizeof(qcc_zip_span_t), qcc_zip_cmp_span);

    for (i = 1; i < n; i++) {
        if (spans[i].start < spans[i - 1].end) {
            zip->err_entry = spans[i].index;
            rc = QCC_ZIP_ERR_OVERLAP;
            goto done;
        }
    }

    qsort(byname, n, sizeof(qcc_zip_entry_t *), qcc_zip_cmp_name);

    for (i = 1; i < n; i++) {
        if (strcmp(byname[i]->name, byname[i - 1]->name) == 0) {
            zip->err_entry = byname[i] - zip->entries;
            rc = QCC_ZIP_ERR_DUPLICATE;
            goto done;
        }
    }

    zip->err_entry = -1;
    rc = QCC_ZIP_OK;

done:

    if (rc != QCC_ZIP_OK && zip->err_entry >= 0) {
        qcc_zip_err_name(zip,
                    (const unsigned char *) zip->entries[zip->err_entry].name,
                    zip->entries[zip->err_entry].name_len);
    }

    free(spans);
    free(byname);

    return rc;
}


static qcc_zip_rc_t
qcc_zip_open(qcc_zip_t *zip, const qcc_zip_limits_t *limits)
{
    uint64_t          cd_off, cd_size, count;
    qcc_zip_rc_t      rc;
    qcc_zip_limits_t  d;

    qcc_zip_limits_default(&d);

    if (limits) {
        zip->limits = *limits;
    }

#define qcc_zip_default(f)  if (zip->limits.f == 0) zip->limits.f = d.f

    qcc_zip_default(max_entries);
    qcc_zip_default(max_name);
    qcc_zip_default(max_ratio);
    qcc_zip_default(max_total);
    qcc_zip_default(max_cd);

#undef qcc_zip_default

    zip->err_entry = -1;

    zip->in = malloc(QCC_ZIP_IN_SIZE);
    if (zip->in == NULL) {
        return QCC_ZIP_ERR_NOMEM;
    }

    rc = qcc_zip_find_cd(zip, &cd_off, &cd_size, &count);

    if (rc == QCC_ZIP_OK) {
        rc = qcc_zip_read_cd(zip, cd_off, cd_size, count);
    }

    if (rc == QCC_ZIP_OK) {
        rc = qcc_zip_check_layout(zip, cd_off);
    }

    if (rc != QCC_ZIP_OK) {
        qcc_zip_close(zip);
    }

    return rc;
}


qcc_zip_rc_t
qcc_zip_open_fd(qcc_zip_t *zip, int fd, const qcc_zip_limits_t *limits)
{
    struct stat  st;

    memset(zip, 0, sizeof(qcc_zip_t));
    zip->err_entry = -1;

    if (fstat(fd, &st) != 0) {
        return QCC_ZIP_ERR_IO;
    }

    zip->fd = fd;
    zip->size = (uint64_t) st.st_size;

    return qcc_zip_open(zip, limits);
}


qcc_zip_rc_t
qcc_zip_open_mem(qcc_zip_t *zip, const unsigned char *buf, size_t len,
    const qcc_zip_limits_t *limits)
{
    static const unsigned char  empty[1];

    memset(zip, 0, sizeof(qcc_zip_t));

    zip->fd = -1;
    zip->buf = buf ? buf : empty;
    zip->size = buf ? len : 0;

    return qcc_zip_open(zip, limits);
}


void
qcc_zip_close(qcc_zip_t *zip)
{
    if (zip->zs_init) {
        inflateEnd(&zip->zs);
    }

    if (zip->ks) {
        OPENSSL_cleanse(zip->ks, QCC_ZIP_KS_SIZE);
    }

    EVP_CIPHER_CTX_free(zip->aes);
    EVP_MAC_CTX_free(zip->hmac);
    EVP_MAC_free(zip->mac);

    free(zip->isal);
    free(zip->in);
    free(zip->out);
    free(zip->ks);
    free(zip->entries);
    free(zip->names);

    zip->isal = NULL;
    zip->in = zip->out = zip->ks = NULL;
    zip->entries = NULL;
    zip->names = NULL;
    zip->nentries = 0;
    zip->aes = NULL;
    zip->hmac = NULL;
    zip->mac = NULL;
    zip->zs_init = 0;
}


/*
 * XORs WinZip's keystream into p: AES of a 16-byte little-endian counter
 * that starts at 1.  The counter blocks of a batch go through AES-ECB in
 * one call, which is what makes this fast.
 */
static qcc_zip_rc_t
qcc_zip_ctr(qcc_zip_t *zip, unsigned char *p, size_t n, uint64_t *ctr)
{
    int             outl;
    size_t          m, i, blocks;
    uint64_t        c, a, b;
    unsigned char  *k;

    k = zip->ks;

    while (n) {
        m = n < QCC_ZIP_KS_SIZE ? n : QCC_ZIP_KS_SIZE;
        blocks = (m + 15) / 16;

        for (i = 0; i < blocks; i++) {
            c = ++*ctr;

            k[16 * i] = (unsigned char) c;
            k[16 * i + 1] = (unsigned char) (c >> 8);
            k[16 * i + 2] = (unsigned char) (c >> 16);
            k[16 * i + 3] = (unsigned char) (c >> 24);
            k[16 * i + 4] = (unsigned char) (c >> 32);
            k[16 * i + 5] = (unsigned char) (c >> 40);
            k[16 * i + 6] = (unsigned char) (c >> 48);
            k[16 * i + 7] = (unsigned char) (c >> 56);
            memset(k + 16 * i + 8, 0, 8);
        }

        if (!EVP_EncryptUpdate(zip->aes, k, &outl, k, (int) (blocks * 16))
            || (size_t) outl != blocks * 16)
        {
            return QCC_ZIP_ERR_CRYPTO;
        }

        for (i = 0; i + 8 <= m; i += 8) {
            memcpy(&a, p + i, 8);
            memcpy(&b, k + i, 8);
            a ^= b;
            memcpy(p + i, &a, 8);
        }

        for ( /* void */ ; i < m; i++) {
            p[i] ^= k[i];
        }

        p += m;
        n -= m;
    }

    return QCC_ZIP_OK;
}


/* Plaintext out: never past the declared size. */
static qcc_zip_rc_t
qcc_zip_emit(qcc_zip_sink_t *s, const unsigned char *p, size_t n)
{
    if (n > s->entry->usize - s->done) {
        return QCC_ZIP_ERR_TOO_LARGE;
    }

    s->done += n;

    if (s->check_crc) {
        s->crc = (uint32_t) crc32_z(s->crc, p, n);
    }

    if (s->write(s->data, p, n) != 0) {
        return QCC_ZIP_ERR_WRITE;
    }

    return QCC_ZIP_OK;
}


/*
 * Where the next inflated bytes go: the caller's buffer if it lends one,
 * so that they need no copy there, else ours.
 */
static qcc_zip_rc_t
qcc_zip_out_buf(qcc_zip_sink_t *s, unsigned char **buf, size_t *size)
{
    if (s->lend == NULL) {
        *buf = s->zip->out;
        *size = QCC_ZIP_OUT_SIZE;
        return QCC_ZIP_OK;
    }

    *size = 0;
    *buf = s->lend(s->data, size);

    if (*buf == NULL || *size == 0) {
        return QCC_ZIP_ERR_WRITE;
    }

    if (*size > QCC_ZIP_OUT_SIZE) {
        *size = QCC_ZIP_OUT_SIZE;
    }

    return QCC_ZIP_OK;
}


#if (QCC_ZIP_ISAL)

/* Inflates one chunk; *end is set at the end of the deflate stream. */
static qcc_zip_rc_t
qcc_zip_inflate(qcc_zip_sink_t *s, unsigned char *p, size_t n, int *end)
{
    int                    irc;
    size_t                 out, size;
    qcc_zip_rc_t           rc;
    unsigned char         *buf;
    struct inflate_state  *st;

    st = s->zip->isal;
    st->next_in = p;
    st->avail_in = (uint32_t) n;

    do {
        rc = qcc_zip_out_buf(s, &buf, &size);
        if (rc != QCC_ZIP_OK) {
            return rc;
        }

        st->next_out = buf;
        st->avail_out = (uint32_t) size;

        irc = isal_inflate(st);

        out = size - st->avail_out;

        if (out) {
            rc = qcc_zip_emit(s, buf, out);
            if (rc != QCC_ZIP_OK) {
                return rc;
            }
        }

        if (irc != ISAL_DECOMP_OK) {
            return QCC_ZIP_ERR_CORRUPT;
        }

        if (st->block_state == ISAL_BLOCK_FINISH) {
            *end = 1;

            /* nothing may follow, in the input or in the bit buffer */
            return (st->avail_in || st->read_in_length >= 8)
                   ? QCC_ZIP_ERR_CORRUPT : QCC_ZIP_OK;
        }

    } while (st->avail_in || st->avail_out == 0);

    return QCC_ZIP_OK;
}


static qcc_zip_rc_t
qcc_zip_inflate_start(qcc_zip_t *zip)
{
    if (zip->isal == NULL) {
        zip->isal = malloc(sizeof(struct inflate_state));
        if (zip->isal == NULL) {
            return QCC_ZIP_ERR_NOMEM;
        }
    }

    isal_inflate_init(zip->isal);
    ((struct inflate_state *) zip->isal)->crc_flag = ISAL_DEFLATE;

    return QCC_ZIP_OK;
}

#else

/* Inflates one chunk; *end is set at the end of the deflate stream. */
static qcc_zip_rc_t
qcc_zip_inflate(qcc_zip_sink_t *s, unsigned char *p, size_t n, int *end)
{
    int             zrc;
    size_t          out, size;
    qcc_zip_t      *zip;
    qcc_zip_rc_t    rc;
    unsigned char  *buf;

    zip = s->zip;
    zip->zs.next_in = p;
    zip->zs.avail_in = (uInt) n;

    do {
        rc = qcc_zip_out_buf(s, &buf, &size);
        if (rc != QCC_ZIP_OK) {
            return rc;
        }

        zip->zs.next_out = buf;
        zip->zs.avail_out = (uInt) size;

        zrc = inflate(&zip->zs, Z_NO_FLUSH);

        out = size - zip->zs.avail_out;

        if (out) {
            rc = qcc_zip_emit(s, buf, out);
            if (rc != QCC_ZIP_OK) {
                return rc;
            }
        }

        if (zrc == Z_STREAM_END) {
            *end = 1;

            /* nothing may follow the deflate stream */
            return zip->zs.avail_in ? QCC_ZIP_ERR_CORRUPT : QCC_ZIP_OK;
        }

        if (zrc == Z_BUF_ERROR && out == 0) {
            /* wants more input */
            break;
        }

        if (zrc != Z_OK) {
            return zrc == Z_MEM_ERROR ? QCC_ZIP_ERR_NOMEM
                                      : QCC_ZIP_ERR_CORRUPT;
        }

    } while (zip->zs.avail_in || zip->zs.avail_out == 0);

    return QCC_ZIP_OK;
}


static qcc_zip_rc_t
qcc_zip_inflate_start(qcc_zip_t *zip)
{
    if (zip->zs_init) {
        return inflateReset(&zip->zs) == Z_OK ? QCC_ZIP_OK
                                               : QCC_ZIP_ERR_NOMEM;
    }

    memset(&zip->zs, 0, sizeof(z_stream));

    if (inflateInit2(&zip->zs, -MAX_WBITS) != Z_OK) {
        return QCC_ZIP_ERR_NOMEM;
    }

    zip->zs_init = 1;

    return QCC_ZIP_OK;
}

#endif


/* Derives the keys and checks the verifier. */
static qcc_zip_rc_t
qcc_zip_keys(qcc_zip_t *zip, const qcc_zip_entry_t *e,
    const unsigned char *password, size_t password_len)
{
    size_t              salt_len, key_len;
    qcc_zip_rc_t        rc;
    OSSL_PARAM          params[2];
    const EVP_CIPHER   *cipher;
    unsigned char       sv[16 + 2], dk[2 * 32 + 2];

    char                sha1[] = "SHA1";

    salt_len = 4 + 4 * e->aes;
    key_len = 8 + 8 * e->aes;

    rc = qcc_zip_read(zip, e->data, sv, salt_len + 2);
    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    rc = QCC_ZIP_ERR_CRYPTO;

    if (!PKCS5_PBKDF2_HMAC((const char *) password, (int) password_len,
                           sv, (int) salt_len, QCC_ZIP_PBKDF2_ITER,
                           EVP_sha1(), (int) (2 * key_len + 2), dk))
    {
        goto done;
    }

    if (CRYPTO_memcmp(dk + 2 * key_len, sv + salt_len, 2) != 0) {
        rc = QCC_ZIP_ERR_PASSWORD;
        goto done;
    }

    cipher = e->aes == 1 ? EVP_aes_128_ecb()
             : e->aes == 2 ? EVP_aes_192_ecb() : EVP_aes_256_ecb();

    if (zip->aes == NULL) {
        zip->aes = EVP_CIPHER_CTX_new();
        if (zip->aes == NULL) {
            goto done;
        }
    }

    if (!EVP_EncryptInit_ex(zip->aes, cipher, NULL, dk, NULL)
        || !EVP_CIPHER_CTX_set_padding(zip->aes, 0))
    {
        goto done;
    }

    if (zip->mac == NULL) {
        zip->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (zip->mac == NULL) {
            goto done;
        }
    }

    EVP_MAC_CTX_free(zip->hmac);

    zip->hmac = EVP_MAC_CTX_new(zip->mac);
    if (zip->hmac == NULL) {
        goto done;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 sha1, 0);
    params[1] = OSSL_PARAM_construct_end();

    if (!EVP_MAC_init(zip->hmac, dk + key_len, key_len, params)) {
        goto done;
    }

    rc = QCC_ZIP_OK;

done:

    OPENSSL_cleanse(dk, sizeof(dk));

    return rc;
}


/* Drops the key material of the last entry. */
static void
qcc_zip_wipe(qcc_zip_t *zip)
{
    if (zip->aes) {
        EVP_CIPHER_CTX_reset(zip->aes);
    }

    if (zip->hmac) {
        EVP_MAC_CTX_free(zip->hmac);
        zip->hmac = NULL;
    }

    if (zip->ks) {
        OPENSSL_cleanse(zip->ks, QCC_ZIP_KS_SIZE);
    }
}


qcc_zip_rc_t
qcc_zip_extract(qcc_zip_t *zip, const qcc_zip_entry_t *e,
    const unsigned char *password, size_t password_len,
    qcc_zip_write_pt write, void *data)
{
    return qcc_zip_extract_lent(zip, e, password, password_len, NULL, write,
                                data);
}


qcc_zip_rc_t
qcc_zip_extract_lent(qcc_zip_t *zip, const qcc_zip_entry_t *e,
    const unsigned char *password, size_t password_len,
    qcc_zip_lend_pt lend, qcc_zip_write_pt write, void *data)
{
    int             end;
    size_t          n, maclen;
    uint64_t        off, left, ctr;
    qcc_zip_rc_t    rc, rc2;
    qcc_zip_sink_t  s;
    unsigned char   mac[EVP_MAX_MD_SIZE], stored[QCC_ZIP_MAC_LEN];

    if (e < zip->entries || e >= zip->entries + zip->nentries) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    zip->err_entry = e - zip->entries;

    if (zip->out == NULL) {
        zip->out = malloc(QCC_ZIP_OUT_SIZE);
        zip->ks = malloc(QCC_ZIP_KS_SIZE);

        if (zip->out == NULL || zip->ks == NULL) {
            return QCC_ZIP_ERR_NOMEM;
        }
    }

    s.zip = zip;
    s.entry = e;
    s.lend = lend;
    s.write = write;
    s.data = data;
    s.done = 0;
    s.crc = 0;

    /* AE-2 stores 0 for the CRC; a relabelled AE-1 keeps its CRC */
    s.check_crc = e->ae != 2 || e->crc != 0;

    off = e->data;
    left = e->csize;
    ctr = 0;

    if (e->aes) {
        if (password == NULL) {
            return QCC_ZIP_ERR_NO_PASSWORD;
        }

        rc = qcc_zip_keys(zip, e, password, password_len);
        if (rc != QCC_ZIP_OK) {
            qcc_zip_wipe(zip);
            return rc;
        }

        /* the sizes were checked at open */
        off += 4 + 4 * e->aes + 2;
        left -= 4 + 4 * e->aes + 2 + QCC_ZIP_MAC_LEN;
    }

    if (e->method == 8) {
        rc = qcc_zip_inflate_start(zip);
        if (rc != QCC_ZIP_OK) {
            qcc_zip_wipe(zip);
            return rc;
        }
    }

    end = 0;
    rc = QCC_ZIP_OK;

    while (left) {
        n = left < QCC_ZIP_IN_SIZE ? (size_t) left : QCC_ZIP_IN_SIZE;

        rc2 = qcc_zip_read(zip, off, zip->in, n);
        if (rc2 != QCC_ZIP_OK) {
            rc = rc2;
            break;
        }

        off += n;
        left -= n;

        if (e->aes) {
            if (!EVP_MAC_update(zip->hmac, zip->in, n)) {
                rc = QCC_ZIP_ERR_CRYPTO;
                break;
            }

            if (rc != QCC_ZIP_OK) {
                /* only to tell tampering from other faults */
                continue;
            }

            rc = qcc_zip_ctr(zip, zip->in, n, &ctr);
            if (rc != QCC_ZIP_OK) {
                break;
            }
        }

        if (e->method == 0) {
            rc = qcc_zip_emit(&s, zip->in, n);

        } else if (end) {
            rc = QCC_ZIP_ERR_CORRUPT;

        } else {
            rc = qcc_zip_inflate(&s, zip->in, n, &end);
        }

        /*
         * Past a data fault or a refusal of the callback, an AES entry is
         * only read on for its MAC: tampering, if that is what it was, is
         * the reason to report.
         */
        if (rc != QCC_ZIP_OK
            && !(e->aes && (rc == QCC_ZIP_ERR_CORRUPT
                            || rc == QCC_ZIP_ERR_TOO_LARGE
                            || rc == QCC_ZIP_ERR_WRITE)))
        {
            break;
        }
    }

    if (rc == QCC_ZIP_OK && e->method == 8 && !end) {
        /* the deflate stream stops short */
        rc = QCC_ZIP_ERR_CORRUPT;
    }

    if (e->aes && (rc == QCC_ZIP_OK || rc == QCC_ZIP_ERR_CORRUPT
                   || rc == QCC_ZIP_ERR_TOO_LARGE || rc == QCC_ZIP_ERR_WRITE))
    {
        rc2 = qcc_zip_read(zip, e->data + e->csize - QCC_ZIP_MAC_LEN,
                           stored, QCC_ZIP_MAC_LEN);

        if (rc2 != QCC_ZIP_OK) {
            rc = rc2;

        } else if (!EVP_MAC_final(zip->hmac, mac, &maclen, sizeof(mac))
                   || maclen < QCC_ZIP_MAC_LEN)
        {
            rc = QCC_ZIP_ERR_CRYPTO;

        } else if (CRYPTO_memcmp(mac, stored, QCC_ZIP_MAC_LEN) != 0) {
            rc = QCC_ZIP_ERR_AUTH;
        }
    }

    qcc_zip_wipe(zip);

    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    if (s.done != e->usize) {
        return QCC_ZIP_ERR_CORRUPT;
    }

    if (s.check_crc && s.crc != e->crc) {
        return QCC_ZIP_ERR_CRC;
    }

    return QCC_ZIP_OK;
}
