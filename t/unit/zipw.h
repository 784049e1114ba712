/*
 * A ZIP writer for tests only (the unit test, the fuzz seeds and
 * build/t/zip-write): it makes the layouts the reader must accept, such
 * as zip4j's stream layout with a data descriptor, and it is the raw
 * material of the hostile ones.  Its WinZip AES is written apart from the
 * reader's (one AES call per counter block, the counter carried byte by
 * byte) so that a mistake shared by both cannot pass unseen.
 */

#ifndef QCC_ZIPW_H
#define QCC_ZIPW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <openssl/evp.h>


typedef struct {
    /* what to write */
    const char           *name;
    const unsigned char  *data;
    size_t                len;
    int                   method;    /* 0 or 8 */
    int                   aes;       /* 0, or strength 1, 2, 3 */
    int                   ae;        /* 1 or 2 */
    int                   dd;        /* 1: descriptor with signature, 2: no */
    int                   zip64;     /* local sizes in a zip64 extra field */
    int                   level;     /* deflate level, 0 means 6 */
    uint16_t              flags;     /* more flag bits, e.g. 0x0800 */
    const char           *password;
    const unsigned char  *salt;      /* NULL: made from the name */

    /* what was written, for the tests that tamper with it */
    size_t                lho;       /* local header */
    size_t                data_off;
    size_t                csize;
    size_t                cd;        /* central entry */
    uint32_t              crc;
} zipw_entry_t;


typedef struct {
    unsigned char        *p;
    size_t                len;
    size_t                cap;
} zipw_buf_t;


static inline void
zipw_put(zipw_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            abort();
        }
    }

    if (n) {
        memcpy(b->p + b->len, p, n);
    }

    b->len += n;
}


static inline void
zipw_16(zipw_buf_t *b, uint32_t v)
{
    unsigned char  x[2] = { (unsigned char) v, (unsigned char) (v >> 8) };

    zipw_put(b, x, 2);
}


static inline void
zipw_32(zipw_buf_t *b, uint32_t v)
{
    zipw_16(b, v & 0xffff);
    zipw_16(b, v >> 16);
}


static inline void
zipw_64(zipw_buf_t *b, uint64_t v)
{
    zipw_32(b, (uint32_t) v);
    zipw_32(b, (uint32_t) (v >> 32));
}


static inline void
zipw_set16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}


static inline void
zipw_set32(unsigned char *p, uint32_t v)
{
    zipw_set16(p, v & 0xffff);
    zipw_set16(p + 2, v >> 16);
}


/* Compresses and encrypts the entry data as it is stored. */
static inline unsigned char *
zipw_payload(zipw_entry_t *e, size_t *plen)
{
    int             outl;
    size_t          i, j, clen, salt_len, key_len, maclen;
    z_stream        zs;
    unsigned char  *c, *out, ctr[16], ks[16], dk[66], mac[64];
    EVP_CIPHER_CTX *ctx;

    e->crc = (uint32_t) crc32(0, e->data, (uInt) e->len);

    if (e->method == 8) {
        memset(&zs, 0, sizeof(zs));
        deflateInit2(&zs, e->level ? e->level : 6, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY);
        clen = deflateBound(&zs, e->len);
        c = malloc(clen + 1);
        zs.next_in = (unsigned char *) e->data;
        zs.avail_in = (uInt) e->len;
        zs.next_out = c;
        zs.avail_out = (uInt) clen;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            abort();
        }
        clen = zs.total_out;
        deflateEnd(&zs);

    } else {
        clen = e->len;
        c = malloc(clen + 1);
        memcpy(c, e->data, clen);
    }

    if (!e->aes) {
        *plen = clen;
        return c;
    }

    salt_len = 4 + 4 * e->aes;
    key_len = 8 + 8 * e->aes;

    out = malloc(salt_len + 2 + clen + 10);

    for (i = 0; i < salt_len; i++) {
        out[i] = e->salt ? e->salt[i]
                         : (unsigned char) (e->name[0] * 31 + i * 7 + 1);
    }

    PKCS5_PBKDF2_HMAC(e->password, (int) strlen(e->password), out,
                      (int) salt_len, 1000, EVP_sha1(),
                      (int) (2 * key_len + 2), dk);

    memcpy(out + salt_len, dk + 2 * key_len, 2);

    ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, e->aes == 1 ? EVP_aes_128_ecb()
                            : e->aes == 2 ? EVP_aes_192_ecb()
                            : EVP_aes_256_ecb(), NULL, dk, NULL);
    EVP_CIPHER_CTX_set_padding(ctx, 0);

    memset(ctr, 0, 16);

    for (i = 0; i < clen; i += 16) {
        /* a 128-bit little-endian counter, incremented before use */
        for (j = 0; j < 16 && ++ctr[j] == 0; j++) {
            /* carry */
        }

        EVP_EncryptUpdate(ctx, ks, &outl, ctr, 16);

        for (j = 0; j < 16 && i + j < clen; j++) {
            out[salt_len + 2 + i + j] = c[i + j] ^ ks[j];
        }
    }

    EVP_CIPHER_CTX_free(ctx);

    EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, dk + key_len, key_len,
              out + salt_len + 2, clen, mac, sizeof(mac), &maclen);
    memcpy(out + salt_len + 2 + clen, mac, 10);

    free(c);

    *plen = salt_len + 2 + clen + 10;
    return out;
}


static inline uint32_t
zipw_flags(zipw_entry_t *e)
{
    return (e->aes ? 0x0001 : 0) | (e->dd ? 0x0008 : 0) | e->flags;
}


/* The header fields shared by local and central headers, from "version
   needed" to the extra field length. */
static inline void
zipw_common(zipw_buf_t *b, zipw_entry_t *e, int local, size_t elen)
{
    uint32_t  crc;

    crc = e->aes && e->ae == 2 ? 0 : e->crc;

    zipw_16(b, e->aes ? 51 : 20);
    zipw_16(b, zipw_flags(e));
    zipw_16(b, e->aes ? 99 : e->method);
    zipw_32(b, 0x5b7b6850);                    /* time and date */

    if (local && e->dd) {
        zipw_32(b, 0);
        zipw_32(b, local && e->zip64 ? 0xffffffff : 0);
        zipw_32(b, local && e->zip64 ? 0xffffffff : 0);

    } else {
        zipw_32(b, crc);
        zipw_32(b, local && e->zip64 ? 0xffffffff : (uint32_t) e->csize);
        zipw_32(b, local && e->zip64 ? 0xffffffff : (uint32_t) e->len);
    }

    zipw_16(b, (uint32_t) strlen(e->name));
    zipw_16(b, (uint32_t) elen);
}


static inline void
zipw_aes_extra(zipw_buf_t *b, zipw_entry_t *e)
{
    zipw_16(b, 0x9901);
    zipw_16(b, 7);
    zipw_16(b, e->ae);
    zipw_put(b, "AE", 2);
    zipw_put(b, (unsigned char []) { (unsigned char) e->aes }, 1);
    zipw_16(b, e->method);
}


/* Writes the local record of an entry: header, data, descriptor. */
static inline void
zipw_local(zipw_buf_t *b, zipw_entry_t *e)
{
    size_t          plen, elen;
    unsigned char  *pl;

    pl = zipw_payload(e, &plen);
    e->csize = plen;
    e->lho = b->len;

    elen = (e->aes ? 11 : 0) + (e->zip64 ? 20 : 0);

    zipw_32(b, 0x04034b50);
    zipw_common(b, e, 1, elen);
    zipw_put(b, e->name, strlen(e->name));

    if (e->zip64) {
        zipw_16(b, 0x0001);
        zipw_16(b, 16);
        zipw_64(b, e->dd ? 0 : e->len);
        zipw_64(b, e->dd ? 0 : e->csize);
    }

    if (e->aes) {
        zipw_aes_extra(b, e);
    }

    e->data_off = b->len;
    zipw_put(b, pl, plen);
    free(pl);

    if (e->dd) {
        if (e->dd == 1) {
            zipw_32(b, 0x08074b50);
        }

        zipw_32(b, e->aes && e->ae == 2 ? 0 : e->crc);
        zipw_32(b, (uint32_t) e->csize);
        zipw_32(b, (uint32_t) e->len);
    }
}


static inline void
zipw_central(zipw_buf_t *b, zipw_entry_t *e)
{
    e->cd = b->len;

    zipw_32(b, 0x02014b50);
    zipw_16(b, 0x033f);                        /* made by: Unix */
    zipw_common(b, e, 0, e->aes ? 11 : 0);
    zipw_16(b, 0);                             /* comment */
    zipw_16(b, 0);                             /* disk */
    zipw_16(b, 0);                             /* internal attributes */
    zipw_32(b, 0100644u << 16);
    zipw_32(b, (uint32_t) e->lho);
    zipw_put(b, e->name, strlen(e->name));

    if (e->aes) {
        zipw_aes_extra(b, e);
    }
}


static inline void
zipw_end(zipw_buf_t *b, size_t count, size_t cd_off, int zip64)
{
    size_t  cd_size, e64;

    cd_size = b->len - cd_off;

    if (zip64) {
        e64 = b->len;
        zipw_32(b, 0x06064b50);
        zipw_64(b, 44);
        zipw_16(b, 45);
        zipw_16(b, 45);
        zipw_32(b, 0);
        zipw_32(b, 0);
        zipw_64(b, count);
        zipw_64(b, count);
        zipw_64(b, cd_size);
        zipw_64(b, cd_off);

        zipw_32(b, 0x07064b50);
        zipw_32(b, 0);
        zipw_64(b, e64);
        zipw_32(b, 1);
    }

    zipw_32(b, 0x06054b50);
    zipw_16(b, 0);
    zipw_16(b, 0);
    zipw_16(b, zip64 ? 0xffff : (uint32_t) count);
    zipw_16(b, zip64 ? 0xffff : (uint32_t) count);
    zipw_32(b, zip64 ? 0xffffffff : (uint32_t) cd_size);
    zipw_32(b, zip64 ? 0xffffffff : (uint32_t) cd_off);
    zipw_16(b, 0);
}


/* A whole archive; the caller frees b->p. */
static inline void
zipw_build(zipw_buf_t *b, zipw_entry_t *es, size_t n, int zip64_end)
{
    size_t  i, cd_off;

    memset(b, 0, sizeof(zipw_buf_t));

    for (i = 0; i < n; i++) {
        zipw_local(b, &es[i]);
    }

    cd_off = b->len;

    for (i = 0; i < n; i++) {
        zipw_central(b, &es[i]);
    }

    zipw_end(b, n, cd_off, zip64_end);
}

#endif /* QCC_ZIPW_H */
