/* Unit tests of the signer core (src/qcc_sign.c). */

#include "unit.h"
#include "qcc_sign.h"


static void
check_args(const char *args, const char *expect)
{
    size_t         n;
    unsigned char  out[512];

    n = qcc_sign_args((const unsigned char *) args, strlen(args),
                      (const unsigned char *) "key=AppKey", 10, out);
    CHECK_MEM(out, n, expect, strlen(expect));
}


int
main(void)
{
    size_t         n;
    unsigned char  token[QCC_TOKEN_LEN], ts[QCC_TIMESPAN_MAX], esc[64];

    /* the vector of the documents, before and after the one fetch */
    CHECK_INT(qcc_sign_token((const unsigned char *) "AppKey", 6,
                             (const unsigned char *) "1700000000", 10,
                             (const unsigned char *) "SecretKey", 9, token),
              0);
    CHECK_MEM(token, QCC_TOKEN_LEN, "02F36A764260A1E063F4CF3F9B13B3E4", 32);
    CHECK_INT(qcc_sign_init(), 0);

    CHECK_INT(qcc_sign_token((const unsigned char *) "AppKey", 6,
                             (const unsigned char *) "1700000000", 10,
                             (const unsigned char *) "SecretKey", 9, token),
              0);
    CHECK_MEM(token, QCC_TOKEN_LEN, "02F36A764260A1E063F4CF3F9B13B3E4", 32);

    /* an empty secret still signs (the config refuses it earlier) */
    CHECK_INT(qcc_sign_token((const unsigned char *) "k", 1,
                             (const unsigned char *) "1", 1,
                             (const unsigned char *) "", 0, token), 0);
    /* MD5("k1") */
    CHECK_MEM(token, 32, "B637B17AF08ACED8850C18CCCDE915DA", 32);

    n = qcc_sign_timespan(1700000000, ts);
    CHECK_MEM(ts, n, "1700000000", 10);
    n = qcc_sign_timespan(0, ts);
    CHECK_MEM(ts, n, "0", 1);
    n = qcc_sign_timespan(9, ts);
    CHECK_MEM(ts, n, "9", 1);
    n = qcc_sign_timespan((time_t) 253402300799LL, ts);
    CHECK_MEM(ts, n, "253402300799", 12);
    CHECK_INT(qcc_sign_timespan(-1, ts), 0);

    CHECK(qcc_sign_is_key_name((const unsigned char *) "key", 3));
    CHECK(qcc_sign_is_key_name((const unsigned char *) "KeY", 3));
    CHECK(qcc_sign_is_key_name((const unsigned char *) "%6bey", 5));
    CHECK(qcc_sign_is_key_name((const unsigned char *) "k%65%59", 7));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "keys", 4));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "ke", 2));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "", 0));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "keyWord", 7));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "ke%", 3));
    CHECK(!qcc_sign_is_key_name((const unsigned char *) "key%", 4));

    check_args("", "key=AppKey");
    check_args("key=evil", "key=AppKey");
    check_args("a=1&key=evil&b=2", "key=AppKey&a=1&b=2");
    check_args("KEY=x&Key=y&kEy&b=%E5%B0%8F", "key=AppKey&b=%E5%B0%8F");
    check_args("keyNo=%E5%B0%8F%E7%B1%B3&reportFormat=2",
               "key=AppKey&keyNo=%E5%B0%8F%E7%B1%B3&reportFormat=2");
    check_args("a=1&&b=2", "key=AppKey&a=1&&b=2");
    check_args("keyWordList=a,b&x=key=1", "key=AppKey&keyWordList=a,b&x=key=1");
    check_args("%6Bey=1&k%65y=2&key%3D=3", "key=AppKey&key%3D=3");

    n = qcc_sign_escape_key((const unsigned char *) "Ab9-_.~", 7, esc);
    CHECK_MEM(esc, n, "Ab9-_.~", 7);
    n = qcc_sign_escape_key((const unsigned char *) "a b&=", 5, esc);
    CHECK_MEM(esc, n, "a%20b%26%3D", 11);

    return UNIT_DONE("test_sign");
}
