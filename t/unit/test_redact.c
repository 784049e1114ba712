/* Unit tests of log masking (src/qcc_redact.c). */

#include "unit.h"
#include "qcc_redact.h"


static void
check(const char *in, const char *expect, size_t count)
{
    char    buf[512];
    size_t  n, len;

    len = strlen(in);
    memcpy(buf, in, len + 1);
    n = qcc_redact((unsigned char *) buf, len);
    CHECK_INT(n, count);
    CHECK_MEM(buf, len, expect, strlen(expect));
}


int
main(void)
{
    check("GET /cb?key=K&unzipPassword=Pw%21x HTTP/1.1",
          "GET /cb?key=K&unzipPassword=****** HTTP/1.1", 1);
    check("a=1&UNZIPPASSWORD=abc&b=2", "a=1&UNZIPPASSWORD=***&b=2", 1);
    check("unzipPassword=", "unzipPassword=", 0);
    check("unzipPassword", "unzipPassword", 0);
    check("x unzipPassword=a\" y unzipPassword=bb",
          "x unzipPassword=*\" y unzipPassword=**", 2);
    check("{\"unzipPassword\":\"s3\\\"x\",\"a\":1}",
          "{\"unzipPassword\":\"*****\",\"a\":1}", 1);
    check("{\"unzipPassword\" : \"p\"}", "{\"unzipPassword\" : \"*\"}", 1);
    check("\"unzipPassword\":123", "\"unzipPassword\":123", 0);
    check("nothing here", "nothing here", 0);
    check("", "", 0);
    check("unzipPasswordX=1", "unzipPasswordX=1", 0);
    check("a:b=c unzipPassword=x:y&z=1", "a:b=c unzipPassword=***&z=1", 1);
    check("{\"x\":1,\"unzipPassword\":\"p:=q\"} unzipPassword=r",
          "{\"x\":1,\"unzipPassword\":\"****\"} unzipPassword=*", 2);
    check("=:=:unzipPassword", "=:=:unzipPassword", 0);
    check(":unzipPassword=", ":unzipPassword=", 0);

    /* a name with escaped letters, as the callback's parser reads it */
    check("k=1&unzip%50assword=s3c HTTP", "k=1&unzip%50assword=*** HTTP", 1);
    check("%75%4E%7a%69%70password=s&", "%75%4E%7a%69%70password=*&", 1);
    check("unzip%2550assword=s", "unzip%2550assword=s", 0);
    check("unzip%5assword=s", "unzip%5assword=s", 0);

    return UNIT_DONE("test_redact");
}
