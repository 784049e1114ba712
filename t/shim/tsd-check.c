/*
 * LD_PRELOAD for t/065-unpack-exit.t: tells, for each thread that ends
 * through pthread_exit() (an nginx pool thread taking its exit task),
 * whether it still holds libcrypto's per-thread state.  Such a thread
 * runs libcrypto's thread destructor after nginx's worker has gone on to
 * exit(), where OPENSSL_cleanup() frees what that destructor walks.
 *
 * libcrypto's per-thread state hangs off the thread-specific keys it
 * creates with a destructor; they are noted as libcrypto creates them.
 * One line a thread goes to stderr (the error log in a worker):
 *
 *   qcc-tsd-check: thread exits holding libcrypto state
 *   qcc-tsd-check: thread exits clean
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>


#define TSD_CHECK_KEYS  8


typedef int (*key_create_pt)(pthread_key_t *key, void (*destr)(void *));
typedef void (*exit_pt)(void *retval) __attribute__((noreturn));


static pthread_key_t    tsd_check_keys[TSD_CHECK_KEYS];
static volatile int     tsd_check_nkeys;
static pthread_mutex_t  tsd_check_mutex = PTHREAD_MUTEX_INITIALIZER;


static int
tsd_check_libcrypto(void *addr)
{
    Dl_info  info;

    return dladdr(addr, &info) && info.dli_fname
           && strstr(info.dli_fname, "libcrypto") != NULL;
}


int
pthread_key_create(pthread_key_t *key, void (*destr)(void *))
{
    int                   rc;
    static key_create_pt  real;

    if (real == NULL) {
        real = (key_create_pt) dlsym(RTLD_NEXT, "pthread_key_create");
    }

    rc = real(key, destr);

    if (rc == 0 && destr && tsd_check_libcrypto((void *) destr)) {
        (void) pthread_mutex_lock(&tsd_check_mutex);

        if (tsd_check_nkeys < TSD_CHECK_KEYS) {
            tsd_check_keys[tsd_check_nkeys++] = *key;
        }

        (void) pthread_mutex_unlock(&tsd_check_mutex);
    }

    return rc;
}


void
pthread_exit(void *retval)
{
    int             i, held;
    const char     *msg;
    static exit_pt  real;

    if (real == NULL) {
        real = (exit_pt) dlsym(RTLD_NEXT, "pthread_exit");
    }

    held = 0;

    for (i = 0; i < tsd_check_nkeys; i++) {
        if (pthread_getspecific(tsd_check_keys[i]) != NULL) {
            held = 1;
        }
    }

    msg = held ? "qcc-tsd-check: thread exits holding libcrypto state\n"
               : "qcc-tsd-check: thread exits clean\n";

    (void) write(STDERR_FILENO, msg, strlen(msg));

    real(retval);
}
