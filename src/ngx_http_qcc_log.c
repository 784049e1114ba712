/*
 * Keeping unzipPassword out of the logs.  nginx writes the request line
 * into its debug lines while parsing, before any handler runs, and adds
 * it to every error line of a request; the access log's $request holds
 * it too.  So: the callback masks the password in the request's own
 * buffer once it has read it, and file error logs get a writer that
 * masks any line before it is written.
 */

#include "ngx_http_qcc_module.h"
#include "qcc_redact.h"


static void ngx_http_qcc_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);


/* Masks the password wherever the request keeps its request line. */

void
ngx_http_qcc_log_mask_request(ngx_http_request_t *r)
{
    u_char  *start, *end;

    start = r->request_line.data;
    end = start + r->request_line.len;

    if (start) {
        (void) qcc_redact(start, r->request_line.len);
    }

    if (r->args.len && (r->args.data < start || r->args.data >= end)) {
        (void) qcc_redact(r->args.data, r->args.len);
    }

    if (r->unparsed_uri.len
        && (r->unparsed_uri.data < start || r->unparsed_uri.data >= end))
    {
        (void) qcc_redact(r->unparsed_uri.data, r->unparsed_uri.len);
    }
}


/*
 * Gives every file log of the chain the masking writer; syslog and
 * memory logs have writers of their own and are left as they are.
 */

ngx_int_t
ngx_http_qcc_log_protect(ngx_array_t *protected, ngx_log_t *log)
{
    ngx_log_t  **p;

    for ( /* void */ ; log; log = log->next) {
        if (log->writer == NULL && log->file) {
            p = ngx_array_push(protected);
            if (p == NULL) {
                return NGX_ERROR;
            }

            *p = log;
            log->writer = ngx_http_qcc_log_writer;
        }
    }

    return NGX_OK;
}


/*
 * Undone before nginx destroys the cycle: that unloads this module, and
 * nginx still logs while it does.
 */

void
ngx_http_qcc_log_unprotect(ngx_array_t *protected)
{
    ngx_uint_t   i;
    ngx_log_t  **logs;

    if (protected == NULL) {
        return;
    }

    logs = protected->elts;

    for (i = 0; i < protected->nelts; i++) {
        if (logs[i]->writer == ngx_http_qcc_log_writer) {
            logs[i]->writer = NULL;
        }
    }
}


static void
ngx_http_qcc_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    ssize_t  n;

    (void) qcc_redact(buf, len);

    if (log->file == NULL || log->file->fd == NGX_INVALID_FILE
        || ngx_time() == log->disk_full_time)
    {
        return;
    }

    n = ngx_write_fd(log->file->fd, buf, len);

    if (n == -1 && ngx_errno == NGX_ENOSPC) {
        log->disk_full_time = ngx_time();
    }
}
