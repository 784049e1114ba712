/*
 * Masking of secrets in text about to be logged, nginx-free: the value of
 * an unzipPassword argument (query string or form) or JSON member becomes
 * '*' characters, in place, of the same length.
 */

#ifndef QCC_REDACT_H
#define QCC_REDACT_H

#include <stddef.h>

/* Masks every unzipPassword value in buf; returns how many it masked. */
size_t qcc_redact(unsigned char *buf, size_t len);

#endif /* QCC_REDACT_H */
