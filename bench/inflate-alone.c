/*
 * inflate-alone: the bound of the unzip benchmark.  Inflates the deflate
 * stream of the first entry of a plain (unencrypted) ZIP and writes the
 * bytes to stdout, with zlib in the reader's chunk sizes (streaming, so
 * bounded memory), with ISA-L's igzip (streaming too), or with
 * libdeflate (whole buffers, so memory grows with the file).
 *
 *   inflate-alone zlib|isal|libdeflate FILE.zip
 */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif


#define IN_SIZE   (256 * 1024)
#define OUT_SIZE  (256 * 1024)


static void
out(const unsigned char *p, size_t n)
{
    ssize_t  w;

    while (n) {
        w = write(1, p, n);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= w;
    }
}


static uint32_t
get32(const unsigned char *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;
}


int
main(int argc, char **argv)
{
    int             fd, zrc;
    size_t          n;
    uint64_t        off, csize, usize, left;
    z_stream        zs;
    unsigned char   h[30], *in, *o;

    if (argc != 3) {
        fprintf(stderr, "usage: inflate-alone zlib|libdeflate FILE.zip\n");
        return 2;
    }

    fd = open(argv[2], O_RDONLY);
    if (fd < 0 || pread(fd, h, 30, 0) != 30 || get32(h) != 0x04034b50
        || (h[8] | h[9] << 8) != 8)
    {
        fprintf(stderr, "inflate-alone: %s: not a plain deflate zip\n",
                argv[2]);
        return 1;
    }

    csize = get32(h + 18);
    usize = get32(h + 22);
    off = 30 + (h[26] | h[27] << 8) + (h[28] | h[29] << 8);

    if (strcmp(argv[1], "libdeflate") == 0) {
#ifdef HAVE_LIBDEFLATE
        struct libdeflate_decompressor  *d;

        in = malloc(csize);
        o = malloc(usize);
        if (pread(fd, in, csize, off) != (ssize_t) csize) {
            return 1;
        }

        d = libdeflate_alloc_decompressor();
        if (libdeflate_deflate_decompress(d, in, csize, o, usize, &n)
            != LIBDEFLATE_SUCCESS || n != usize)
        {
            fprintf(stderr, "inflate-alone: libdeflate failed\n");
            return 1;
        }

        out(o, n);
        return 0;
#else
        fprintf(stderr, "inflate-alone: built without libdeflate\n");
        return 1;
#endif
    }

    in = malloc(IN_SIZE);
    o = malloc(OUT_SIZE);

    if (strcmp(argv[1], "isal") == 0) {
#ifdef HAVE_ISAL
        struct inflate_state  *st;

        st = malloc(sizeof(struct inflate_state));
        isal_inflate_init(st);
        st->crc_flag = ISAL_DEFLATE;
        left = csize;

        while (left && st->block_state != ISAL_BLOCK_FINISH) {
            n = left < IN_SIZE ? left : IN_SIZE;
            if (pread(fd, in, n, off) != (ssize_t) n) {
                return 1;
            }
            off += n;
            left -= n;

            st->next_in = in;
            st->avail_in = n;

            do {
                st->next_out = o;
                st->avail_out = OUT_SIZE;
                if (isal_inflate(st) != ISAL_DECOMP_OK) {
                    fprintf(stderr, "inflate-alone: isal error\n");
                    return 1;
                }
                out(o, OUT_SIZE - st->avail_out);
            } while (st->block_state != ISAL_BLOCK_FINISH
                     && (st->avail_in || st->avail_out == 0));
        }

        return st->total_out == usize ? 0 : 1;
#else
        fprintf(stderr, "inflate-alone: built without ISA-L\n");
        return 1;
#endif
    }

    memset(&zs, 0, sizeof(zs));
    inflateInit2(&zs, -MAX_WBITS);

    left = csize;
    zrc = Z_OK;

    while (left && zrc != Z_STREAM_END) {
        n = left < IN_SIZE ? left : IN_SIZE;
        if (pread(fd, in, n, off) != (ssize_t) n) {
            return 1;
        }
        off += n;
        left -= n;

        zs.next_in = in;
        zs.avail_in = n;

        do {
            zs.next_out = o;
            zs.avail_out = OUT_SIZE;
            zrc = inflate(&zs, Z_NO_FLUSH);
            if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
                fprintf(stderr, "inflate-alone: zlib error %d\n", zrc);
                return 1;
            }
            out(o, OUT_SIZE - zs.avail_out);
        } while (zrc != Z_STREAM_END && (zs.avail_in || zs.avail_out == 0));
    }

    return zs.total_out == usize ? 0 : 1;
}
