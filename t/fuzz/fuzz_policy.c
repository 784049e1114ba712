/*
 * libFuzzer target of the policy core (qcc_policy.c): any input is an
 * answer whose business status is scanned whole and in pieces (the
 * result must not depend on where it is cut), and a request path whose
 * family is looked up (the result must be a family whose name is a prefix
 * of the path's part after "/api/").
 */

#include <stdlib.h>
#include <string.h>

#include "qcc_policy.h"


#define need(cond)  do { if (!(cond)) abort(); } while (0)


static const qcc_policy_str_t  families[] = {
    { (const unsigned char *) "radar_ext", 9 },
    { (const unsigned char *) "yj/Report", 9 },
    { (const unsigned char *) "rpt", 3 },
    { (const unsigned char *) "dd_risk_mnr", 11 },
    { (const unsigned char *) "dd_corp_monitor", 15 },
    { (const unsigned char *) "dd_corp_monitor/getExceptions", 29 },
};


static int
scan_cut(const unsigned char *data, size_t size, size_t cut)
{
    qcc_policy_scan_t  s;

    qcc_policy_scan_init(&s);

    if (!qcc_policy_scan(&s, data, cut)) {
        (void) qcc_policy_scan(&s, data + cut, size - cut);
    }

    return qcc_policy_scan_end(&s);
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int                   whole, f, i;
    size_t                cut, j, n;
    const unsigned char  *api;

    whole = scan_cut(data, size, size);

    need(whole >= -1 && whole <= 999999);

    for (cut = 0; cut <= size && cut < 64; cut++) {
        need(scan_cut(data, size, cut) == whole);
    }

    need(scan_cut(data, size, size / 2) == whole);

    need(qcc_policy_code_index(whole) >= 0
         && qcc_policy_code_index(whole) < QCC_POLICY_CODES);

    f = qcc_policy_family(data, size, families,
                          sizeof(families) / sizeof(families[0]));

    if (f == QCC_POLICY_NOMATCH) {
        return 0;
    }

    need(f >= 0 && f < (int) (sizeof(families) / sizeof(families[0])));

    /* the family is the segments right after the first "/api/" */

    api = NULL;

    for (j = 0; j + 5 <= size; j++) {
        if (data[j] == '/' && (data[j + 1] | 0x20) == 'a'
            && (data[j + 2] | 0x20) == 'p' && (data[j + 3] | 0x20) == 'i'
            && data[j + 4] == '/')
        {
            api = data + j + 5;
            break;
        }
    }

    need(api != NULL);

    n = families[f].len;
    need((size_t) (data + size - api) >= n);

    for (i = 0; i < (int) n; i++) {
        need((api[i] | 0x20) == (families[f].data[i] | 0x20));
    }

    need(api + n == data + size || api[n] == '/');

    for (j = 0; api + j < data + size; j++) {
        need(api[j] != '\\' && api[j] != ';' && api[j] != '%'
             && api[j] != '?' && api[j] != '\0');
    }

    return 0;
}
