/*
 * libFuzzer target of the streaming push-file validator.
 *
 * Input: two bytes of split seed, then the document; if the seed's top
 * bit is set, the rest is the body of the result array instead, wrapped
 * as {"pushDate":..,"result":[BODY],"totalSize":N} with N the number of
 * elements cJSON finds in [BODY], so that mutations stay valid pushes
 * often enough for the accepting side of the differential.  Checks:
 *   (a) the verdict (code, offset, reason, counts, ids) is the same fed
 *       whole, fed in random splits (empty chunks included) and fed one
 *       byte at a time (which leaves the scanner's fast loops nothing to
 *       skip: the byte-wise states alone), with cJSON and with the native
 *       id check (QCC_PUSHJSON_NO_CJSON), and a smaller record cap changes
 *       nothing but possibly a record_size failure;
 *   (b) a differential against a reference: a recursive RFC 8259 + UTF-8
 *       checker written here (for what cJSON does not check) and cJSON
 *       parsing the whole document (require_null_terminated), with the
 *       push rules applied to the cJSON tree.  Each must agree with ours.
 *
 * Deliberate differences, handled here:
 *   - cJSON accepts invalid UTF-8, control bytes in strings, bytes up to
 *     0x20 as whitespace, "01", "+1", ".5", "1.", invalid \u hex (as
 *     U+0000), and nests to 1000: the reference checker decides validity
 *     and depth, cJSON only gives the tree;
 *   - cJSON keeps duplicate keys (the first wins): the rules refuse
 *     duplicate top-level keys on the tree;
 *   - cJSON cuts strings at an escaped \u0000 (keys, pushDate, id): such
 *     inputs are not compared with cJSON (split checks still apply);
 *   - totalSize must be written as plain digits: cJSON only keeps a
 *     double, so the raw token comes from the reference checker.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "qcc_pushjson.h"


typedef struct {
    int            rc;
    uint64_t       offset;
    uint64_t       records;
    uint64_t       total;
    uint64_t       ids_hash;
    uint64_t       callbacks;
    size_t         record_peak;
    char           err[QCC_PUSHJSON_ERRLEN];
    char           date[QCC_PUSHJSON_DATE_MAX + 1];
} verdict_t;


static int
on_record(void *data, uint64_t n, const unsigned char *rec, size_t len,
    const char *id)
{
    size_t      i;
    verdict_t  *v = data;

    if (n != v->callbacks + 1 || len < 2 || rec[0] != '{'
        || rec[len - 1] != '}' || id[0] == '\0')
    {
        abort();
    }

    v->callbacks++;

    for (i = 0; id[i]; i++) {
        v->ids_hash = (v->ids_hash ^ (unsigned char) id[i])
                      * 1099511628211ULL;
    }

    v->ids_hash = (v->ids_hash ^ 0xff) * 1099511628211ULL;

    return 0;
}


static uint32_t
rnd_next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}


#define BYTEWISE  0xffffffffu

/*
 * seed 0: whole; BYTEWISE: one byte at a time; else random chunks of 0 to
 * 1 + seed % 64 bytes
 */
static void
validate(const uint8_t *doc, size_t len, size_t record_max, uint32_t seed,
    unsigned flags, verdict_t *v)
{
    int                    rc;
    size_t                 off, n, most;
    uint32_t               s;
    qcc_pushjson_t         ctx;
    qcc_pushjson_limits_t  lim;

    memset(v, 0, sizeof(verdict_t));
    v->ids_hash = 1469598103934665603ULL;

    memset(&lim, 0, sizeof(lim));
    lim.record_max = record_max;
    lim.flags = flags;
    lim.on_record = on_record;
    lim.data = v;

    qcc_pushjson_init(&ctx, &lim);

    if (seed == 0) {
        qcc_pushjson_feed(&ctx, doc, len);

    } else if (seed == BYTEWISE) {
        for (off = 0; off < len; off++) {
            if (qcc_pushjson_feed(&ctx, doc + off, 1) != QCC_PUSHJSON_OK) {
                break;
            }
        }

    } else {
        s = seed;
        most = 1 + seed % 64;

        for (off = 0; off < len; off += n) {
            n = rnd_next(&s) % (most + 1);
            if (n > len - off) {
                n = len - off;
            }

            rc = qcc_pushjson_feed(&ctx, doc + off, n);
            if (rc != QCC_PUSHJSON_OK) {
                break;
            }
        }
    }

    v->rc = qcc_pushjson_finish(&ctx);
    v->offset = qcc_pushjson_error_offset(&ctx);
    v->records = ctx.records;
    v->total = ctx.total_size;
    v->record_peak = ctx.record_peak;
    memcpy(v->err, qcc_pushjson_error(&ctx), sizeof(v->err));
    memcpy(v->date, ctx.push_date, sizeof(v->date));

    if (v->rc == QCC_PUSHJSON_OK
        && (v->callbacks != v->records || v->records != v->total
            || v->err[0] != '\0'))
    {
        abort();
    }

    if (v->rc != QCC_PUSHJSON_OK && strstr(v->err, "byte ") == NULL) {
        abort();
    }

    qcc_pushjson_free(&ctx);
}


static int
same(const verdict_t *a, const verdict_t *b)
{
    return a->rc == b->rc && a->offset == b->offset
           && strcmp(a->err, b->err) == 0 && a->records == b->records
           && a->callbacks == b->callbacks && a->ids_hash == b->ids_hash
           && (a->rc != QCC_PUSHJSON_OK
               || (a->total == b->total && strcmp(a->date, b->date) == 0));
}


/* --- the reference checker: recursive, whole buffer ---------------------- */

typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
    int             max_depth;
    int             nul_escape;
    /* the raw totalSize value of the top-level object (the first one) */
    const uint8_t  *total_start;
    const uint8_t  *total_end;
} ref_t;


static void
ref_ws(ref_t *r)
{
    while (r->p < r->end
           && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n'
               || *r->p == '\r'))
    {
        r->p++;
    }
}


static int
ref_hex4(ref_t *r, unsigned *cp)
{
    int  i, c;

    *cp = 0;

    for (i = 0; i < 4; i++) {
        if (r->p == r->end) {
            return 0;
        }

        c = *r->p++;

        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if (c >= 'a' && c <= 'f') {
            c -= 'a' - 10;
        } else if (c >= 'A' && c <= 'F') {
            c -= 'A' - 10;
        } else {
            return 0;
        }

        *cp = *cp << 4 | (unsigned) c;
    }

    return 1;
}


/* a string at r->p ('"'); the decoded text into out (up to 16 bytes) */
static int
ref_string(ref_t *r, char *out, size_t *out_len)
{
    unsigned  c, cp, lo, n, i, min;

    *out_len = 0;
    r->p++;

    for ( ;; ) {
        if (r->p == r->end) {
            return 0;
        }

        c = *r->p++;

        if (c == '"') {
            return 1;
        }

        if (c < 0x20) {
            return 0;
        }

        if (c == '\\') {
            if (r->p == r->end) {
                return 0;
            }

            c = *r->p++;

            switch (c) {
            case '"': case '\\': case '/':
                cp = c;
                break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (!ref_hex4(r, &cp)) {
                    return 0;
                }

                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return 0;
                }

                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (r->end - r->p < 2 || r->p[0] != '\\'
                        || r->p[1] != 'u')
                    {
                        return 0;
                    }

                    r->p += 2;

                    if (!ref_hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                        return 0;
                    }

                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }

                if (cp == 0) {
                    r->nul_escape = 1;
                }

                break;
            default:
                return 0;
            }

            /* only ASCII matters in the names compared */
            if (*out_len < 16) {
                out[(*out_len)++] = (cp < 0x80) ? (char) cp : '\x80';
            }

            continue;
        }

        if (c >= 0x80) {
            if (c >= 0xc2 && c <= 0xdf) {
                n = 1; cp = c & 0x1f; min = 0x80;
            } else if (c >= 0xe0 && c <= 0xef) {
                n = 2; cp = c & 0x0f; min = 0x800;
            } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3; cp = c & 0x07; min = 0x10000;
            } else {
                return 0;
            }

            for (i = 0; i < n; i++) {
                if (r->p == r->end || (*r->p & 0xc0) != 0x80) {
                    return 0;
                }

                cp = cp << 6 | (*r->p++ & 0x3f);
            }

            if (cp < min || cp > 0x10ffff
                || (cp >= 0xd800 && cp <= 0xdfff))
            {
                return 0;
            }

            c = 0x80;
        }

        if (*out_len < 16) {
            out[(*out_len)++] = (char) c;
        }
    }
}


static int
ref_number(ref_t *r)
{
    if (r->p < r->end && *r->p == '-') {
        r->p++;
    }

    if (r->p == r->end) {
        return 0;
    }

    if (*r->p == '0') {
        r->p++;

    } else if (*r->p >= '1' && *r->p <= '9') {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }

    } else {
        return 0;
    }

    if (r->p < r->end && *r->p == '.') {
        r->p++;

        if (r->p == r->end || *r->p < '0' || *r->p > '9') {
            return 0;
        }

        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }
    }

    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;

        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) {
            r->p++;
        }

        if (r->p == r->end || *r->p < '0' || *r->p > '9') {
            return 0;
        }

        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }
    }

    return 1;
}


static int
ref_value(ref_t *r, int depth)
{
    int          top, first;
    size_t       klen, n;
    char         key[16];
    const char  *lit;

    ref_ws(r);

    if (r->p == r->end) {
        return 0;
    }

    switch (*r->p) {

    case '{':
    case '[':
        /* deeper than any limit we test: stop the recursion */
        if (++depth > 300) {
            return 0;
        }

        if (depth > r->max_depth) {
            r->max_depth = depth;
        }

        top = (*r->p == '{');
        r->p++;
        first = 1;

        for ( ;; ) {
            ref_ws(r);

            if (r->p == r->end) {
                return 0;
            }

            if (*r->p == (top ? '}' : ']') && first) {
                r->p++;
                return 1;
            }

            if (top) {
                if (*r->p != '"' || !ref_string(r, key, &klen)) {
                    return 0;
                }

                ref_ws(r);

                if (r->p == r->end || *r->p != ':') {
                    return 0;
                }

                r->p++;
                ref_ws(r);

                if (depth == 1 && klen == 9 && memcmp(key, "totalSize", 9) == 0
                    && r->total_start == NULL)
                {
                    r->total_start = r->p;
                    if (!ref_value(r, depth)) {
                        return 0;
                    }
                    r->total_end = r->p;

                } else if (!ref_value(r, depth)) {
                    return 0;
                }

            } else if (!ref_value(r, depth)) {
                return 0;
            }

            first = 0;
            ref_ws(r);

            if (r->p == r->end) {
                return 0;
            }

            if (*r->p == ',') {
                r->p++;
                continue;
            }

            if (*r->p == (top ? '}' : ']')) {
                r->p++;
                return 1;
            }

            return 0;
        }

    case '"':
        return ref_string(r, key, &klen);

    case 't':
        lit = "true";
        break;

    case 'f':
        lit = "false";
        break;

    case 'n':
        lit = "null";
        break;

    default:
        return ref_number(r);
    }

    n = strlen(lit);

    if ((size_t) (r->end - r->p) < n || memcmp(r->p, lit, n) != 0) {
        return 0;
    }

    r->p += n;

    return 1;
}


/* The push rules on the cJSON tree; 1 if it is a valid push. */
static int
tree_rules(const cJSON *root, const ref_t *r, uint64_t *count,
    uint64_t *total, const char **date)
{
    size_t        keys, n, i;
    uint64_t      v;
    const char   *s;
    const cJSON  *it, *o, *pd, *ts, *res, *id;

    if (!cJSON_IsObject(root)) {
        return 0;
    }

    keys = 0;

    for (it = root->child; it; it = it->next) {
        keys += 2 + strlen(it->string);

        for (o = root->child; o != it; o = o->next) {
            if (strcmp(o->string, it->string) == 0) {
                return 0;
            }
        }
    }

    if (keys > QCC_PUSHJSON_KEYS_MAX) {
        return 0;
    }

    pd = cJSON_GetObjectItemCaseSensitive(root, "pushDate");
    ts = cJSON_GetObjectItemCaseSensitive(root, "totalSize");
    res = cJSON_GetObjectItemCaseSensitive(root, "result");

    if (!cJSON_IsString(pd) || pd->valuestring[0] == '\0'
        || strlen(pd->valuestring) > QCC_PUSHJSON_DATE_MAX)
    {
        return 0;
    }

    *date = pd->valuestring;

    if (cJSON_IsNumber(ts)) {
        s = (const char *) r->total_start;
        n = r->total_end - r->total_start;

    } else if (cJSON_IsString(ts)) {
        s = ts->valuestring;
        n = strlen(s);

    } else {
        return 0;
    }

    if (n == 0 || n > QCC_PUSHJSON_TOTAL_DIGITS || (s[0] == '0' && n > 1)) {
        return 0;
    }

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        v = v * 10 + (uint64_t) (s[i] - '0');
    }

    *total = v;

    if (!cJSON_IsArray(res)) {
        return 0;
    }

    *count = 0;

    for (it = res->child; it; it = it->next) {
        if (!cJSON_IsObject(it)) {
            return 0;
        }

        id = cJSON_GetObjectItemCaseSensitive(it, "id");

        if (!cJSON_IsString(id) || id->valuestring[0] == '\0') {
            return 0;
        }

        (*count)++;
    }

    return *count == v;
}


static void
differential(const uint8_t *doc, size_t len, const verdict_t *ours)
{
    int          valid, ref_ok, tree_ok;
    char        *copy;
    cJSON       *root;
    ref_t        r;
    uint64_t     count, total;
    const char  *date;

    memset(&r, 0, sizeof(ref_t));
    r.p = doc;
    r.end = doc + len;

    /* a BOM at the very start is skipped, as by cJSON */
    if (len >= 3 && memcmp(doc, "\xef\xbb\xbf", 3) == 0) {
        r.p += 3;
    }

    valid = ref_value(&r, 0);

    if (valid) {
        ref_ws(&r);
        valid = (r.p == r.end);
    }

    /* not JSON, or too deep: ours must refuse whatever cJSON thinks */
    if (!valid || r.max_depth > QCC_PUSHJSON_DEPTH) {
        if (ours->rc == QCC_PUSHJSON_OK) {
            fprintf(stderr, "ours accepts what the reference refuses "
                    "(valid %d, depth %d)\n", valid, r.max_depth);
            abort();
        }

        return;
    }

    /* valid JSON within depth: ours refuses for push rules only */
    switch (ours->rc) {
    case QCC_PUSHJSON_ERR_SYNTAX:
    case QCC_PUSHJSON_ERR_UTF8:
    case QCC_PUSHJSON_ERR_TRUNCATED:
    case QCC_PUSHJSON_ERR_TRAILING:
    case QCC_PUSHJSON_ERR_DEPTH:
        fprintf(stderr, "ours refuses valid JSON: %s\n", ours->err);
        abort();
    }

    if (r.nul_escape) {
        return;
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        return;
    }

    memcpy(copy, doc, len);
    copy[len] = '\0';

    root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);

    if (root == NULL) {
        /* valid JSON (RFC 8259, depth <= 64) that cJSON refuses */
        fprintf(stderr, "cJSON refuses valid JSON\n");
        abort();
    }

    count = total = 0;
    date = "";
    tree_ok = tree_rules(root, &r, &count, &total, &date);
    ref_ok = tree_ok;

    if ((ours->rc == QCC_PUSHJSON_OK) != ref_ok) {
        fprintf(stderr, "disagreement: ours %d (%s), cJSON rules %d\n",
                ours->rc, ours->err, ref_ok);
        abort();
    }

    if (ref_ok
        && (ours->records != count || ours->total != total
            || strcmp(ours->date, date) != 0))
    {
        fprintf(stderr, "disagreement on the results\n");
        abort();
    }

    cJSON_Delete(root);
    free(copy);
}


/* {"pushDate":"2021-03-16 18:52:26","result":[BODY],"totalSize":N} */
static uint8_t *
wrap(const uint8_t *body, size_t n, size_t *len)
{
    int       k;
    char     *arr;
    cJSON    *a;
    uint8_t  *doc;

    static const char  head[] = "{\"pushDate\":\"2021-03-16 18:52:26\","
                                "\"result\":[";

    arr = malloc(n + 3);
    doc = malloc(sizeof(head) + n + 64);
    if (arr == NULL || doc == NULL) {
        free(arr);
        free(doc);
        return NULL;
    }

    arr[0] = '[';
    memcpy(arr + 1, body, n);
    arr[n + 1] = ']';
    arr[n + 2] = '\0';

    a = cJSON_ParseWithLength(arr, n + 2);
    k = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    cJSON_Delete(a);
    free(arr);

    memcpy(doc, head, sizeof(head) - 1);
    memcpy(doc + sizeof(head) - 1, body, n);
    *len = sizeof(head) - 1 + n;
    *len += (size_t) snprintf((char *) doc + *len, 64,
                              "],\"totalSize\":%d}\n", k);

    return doc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          cap, len;
    uint8_t        *wrapped;
    uint32_t        seed;
    verdict_t       whole, split, small, native, bytes;
    const uint8_t  *doc;

    if (size < 2) {
        return 0;
    }

    seed = (uint32_t) (data[0] & 0x7f) << 8 | data[1];
    doc = data + 2;
    len = size - 2;
    wrapped = NULL;

    if (data[0] & 0x80) {
        wrapped = wrap(data + 2, size - 2, &len);
        if (wrapped == NULL) {
            return 0;
        }

        doc = wrapped;
    }

    validate(doc, len, 0, 0, 0, &whole);

    validate(doc, len, 0, 0, QCC_PUSHJSON_NO_CJSON, &native);
    if (!same(&whole, &native)) {
        fprintf(stderr, "native id check differs: \"%s\" vs \"%s\"\n",
                whole.err, native.err);
        abort();
    }

    validate(doc, len, 0, seed | 0x10000, (seed & 1) * QCC_PUSHJSON_NO_CJSON,
             &split);
    if (!same(&whole, &split)) {
        fprintf(stderr, "split-dependent verdict: \"%s\" vs \"%s\"\n",
                whole.err, split.err);
        abort();
    }

    validate(doc, len, 0, BYTEWISE, (seed & 4) ? QCC_PUSHJSON_NO_CJSON : 0,
             &bytes);
    if (!same(&whole, &bytes)) {
        fprintf(stderr, "fed byte by byte: \"%s\" vs \"%s\"\n",
                whole.err, bytes.err);
        abort();
    }

    /* a small cap: identical unless a record outgrew it */
    cap = 8 + seed % 128;
    validate(doc, len, cap, seed * 7 + 1,
             (seed & 2) ? QCC_PUSHJSON_NO_CJSON : 0, &small);

    if (small.rc == QCC_PUSHJSON_ERR_RECORD_SIZE) {
        if (whole.rc == QCC_PUSHJSON_OK && whole.record_peak <= cap) {
            abort();
        }

    } else if (!same(&whole, &small)) {
        fprintf(stderr, "cap-dependent verdict: \"%s\" vs \"%s\"\n",
                whole.err, small.err);
        abort();
    }

    if (whole.rc == QCC_PUSHJSON_OK && whole.record_peak > cap
        && small.rc != QCC_PUSHJSON_ERR_RECORD_SIZE)
    {
        abort();
    }

    differential(doc, len, &whole);

    free(wrapped);

    return 0;
}
