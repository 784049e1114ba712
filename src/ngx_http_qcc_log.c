/*
 * Keeping unzipPassword out of the logs.  nginx writes the request line
 * into its debug lines while parsing, before any handler runs, and adds
 * it to every error line of a request; the access log's $request holds
 * it too.  So: the callback masks the password in the request's own
 * buffer once it has read it, file error logs get a writer that masks
 * any line before it is written, and where callbacks are served the log
 * phase masks, before the access log runs, a request answered with an
 * error before the callback read it (a duplicate Host, a "deny").
 *
 * Refusal lines are cheap, as a flood of forged callbacks drives them:
 * ngx_http_qcc_log_warn() copies the line rather than formatting it, and
 * writes it in batches.  A batch is written before any other line goes
 * to its file, when its buffer is full, at the end of the event loop's
 * turn and at exit, so a file's lines keep their order and none waits
 * past the turn that logged it.
 */

#include "ngx_http_qcc_module.h"
#include "qcc_redact.h"


static ngx_int_t ngx_http_qcc_log_mask_handler(ngx_http_request_t *r);
static void ngx_http_qcc_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_http_qcc_log_write(ngx_open_file_t *file, time_t *disk_full,
    u_char *buf, size_t len);
static void ngx_http_qcc_log_flush_handler(ngx_event_t *ev);


/* the request masked last, told apart from a later one at its address */
static ngx_http_request_t  *ngx_http_qcc_log_masked;
static ngx_atomic_uint_t    ngx_http_qcc_log_masked_number;


#define NGX_HTTP_QCC_LOG_BATCH  8192

/*
 * The batch: lines for one file, waiting for one write().  It keeps the
 * file, the cycle's, not the log that wrote to it: that may be a
 * connection's, gone with the connection before the batch is written.
 */
static ngx_uint_t           ngx_http_qcc_log_batching;
static ngx_open_file_t     *ngx_http_qcc_log_batch_file;
static time_t               ngx_http_qcc_log_batch_disk_full;
static size_t               ngx_http_qcc_log_batch_len;
static u_char               ngx_http_qcc_log_batch[NGX_HTTP_QCC_LOG_BATCH];
static ngx_event_t          ngx_http_qcc_log_flush_event;
#if (NGX_THREADS)
static pthread_t            ngx_http_qcc_log_loop;
#endif

/* " [warn] PID#TID: " of this process's event loop */
static u_char               ngx_http_qcc_log_prefix[NGX_INT64_LEN * 2
                                                    + sizeof(" [warn] #: ")];
static size_t               ngx_http_qcc_log_prefix_len;


/*
 * The mask goes first in the log phase: the access log's handler, pushed
 * by a module loaded earlier, is already in it.
 */

ngx_int_t
ngx_http_qcc_log_init(ngx_conf_t *cf)
{
    ngx_uint_t                  n;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

    ngx_memmove(&h[1], &h[0], (n - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_qcc_log_mask_handler;

    return NGX_OK;
}


/*
 * An answered callback masked its line as it read it; a request answered
 * with a success elsewhere is not a push.  The rest, the errors nginx or
 * another module gave (a callback refused before its handler ran, by
 * "deny" say, included), are masked here, but for the request masked
 * last, which is almost always the refused callback being logged.
 */

static ngx_int_t
ngx_http_qcc_log_mask_handler(ngx_http_request_t *r)
{
    if (r->headers_out.status && r->headers_out.status < NGX_HTTP_BAD_REQUEST)
    {
        return NGX_OK;
    }

    if (r == ngx_http_qcc_log_masked
        && r->connection->number == ngx_http_qcc_log_masked_number)
    {
        return NGX_OK;
    }

    ngx_http_qcc_log_mask_request(r);

    return NGX_OK;
}


void
ngx_http_qcc_log_masked_request(ngx_http_request_t *r)
{
    ngx_http_qcc_log_masked = r;
    ngx_http_qcc_log_masked_number = r->connection->number;
}


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

    ngx_http_qcc_log_masked_request(r);
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


/*
 * Lines of ngx_http_qcc_log_warn() join the batch; only the event loop
 * logs them and writes the batch, so no lock.
 */

void
ngx_http_qcc_log_init_process(void)
{
    u_char  *p;

#if (NGX_THREADS)
    ngx_http_qcc_log_loop = pthread_self();
#endif

    p = ngx_sprintf(ngx_http_qcc_log_prefix, " [warn] %P#" NGX_TID_T_FMT ": ",
                    ngx_log_pid, ngx_log_tid);

    ngx_http_qcc_log_prefix_len = p - ngx_http_qcc_log_prefix;

    ngx_http_qcc_log_flush_event.handler = ngx_http_qcc_log_flush_handler;
    ngx_http_qcc_log_flush_event.log = ngx_cycle->log;
}


/*
 * A warn line of the event loop, as ngx_log_error() writes it, down the
 * same chain of logs, but copied where nginx formats: the time, the
 * level and the process's ids (nginx makes a gettid() for each line)
 * come ready, and the message comes whole.  File logs batch it.
 */

void
ngx_http_qcc_log_warn(ngx_log_t *log, u_char *msg, size_t len)
{
    u_char      *p, *last;
    ngx_uint_t   debug_connection;
    u_char       errstr[NGX_MAX_ERROR_STR];

    if (log->log_level < NGX_LOG_WARN) {
        return;
    }

    if (ngx_http_qcc_log_prefix_len == 0) {
        /* not a worker's event loop (nginx -t, say) */
        ngx_log_error(NGX_LOG_WARN, log, 0, "%*s", len, msg);
        return;
    }

    last = errstr + NGX_MAX_ERROR_STR;

    p = ngx_cpymem(errstr, ngx_cached_err_log_time.data,
                   ngx_cached_err_log_time.len);
    p = ngx_cpymem(p, ngx_http_qcc_log_prefix, ngx_http_qcc_log_prefix_len);

    if (log->connection) {
        p = ngx_sprintf(p, "*%uA ", log->connection);
    }

    p = ngx_cpymem(p, msg, ngx_min(len, (size_t) (last - p)));

    if (log->handler && p < last) {
        p = log->handler(log, p, last - p);
    }

    if (p > last - NGX_LINEFEED_SIZE) {
        p = last - NGX_LINEFEED_SIZE;
    }

    ngx_linefeed(p);

    debug_connection = (log->log_level & NGX_LOG_DEBUG_CONNECTION) != 0;

    ngx_http_qcc_log_batching = 1;

    for ( /* void */ ; log; log = log->next) {

        if (log->log_level < NGX_LOG_WARN && !debug_connection) {
            break;
        }

        if (log->writer) {
            log->writer(log, NGX_LOG_WARN, errstr, p - errstr);
            continue;
        }

        ngx_http_qcc_log_write(log->file, &log->disk_full_time, errstr,
                               p - errstr);
    }

    ngx_http_qcc_log_batching = 0;
}


void
ngx_http_qcc_log_flush(void)
{
    size_t  len;

    len = ngx_http_qcc_log_batch_len;

    if (len == 0) {
        return;
    }

    ngx_http_qcc_log_batch_len = 0;

    ngx_http_qcc_log_write(ngx_http_qcc_log_batch_file,
                           &ngx_http_qcc_log_batch_disk_full,
                           ngx_http_qcc_log_batch, len);
}


static void
ngx_http_qcc_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    ngx_event_t  *ev;

    (void) qcc_redact(buf, len);

#if (NGX_THREADS)
    if (!pthread_equal(pthread_self(), ngx_http_qcc_log_loop)) {
        /* a pool thread's line: the batch is the event loop's */
        ngx_http_qcc_log_write(log->file, &log->disk_full_time, buf, len);
        return;
    }
#endif

    if (ngx_http_qcc_log_batch_len
        && (!ngx_http_qcc_log_batching
            || ngx_http_qcc_log_batch_file != log->file
            || ngx_http_qcc_log_batch_len + len > NGX_HTTP_QCC_LOG_BATCH))
    {
        ngx_http_qcc_log_flush();
    }

    if (!ngx_http_qcc_log_batching || len > NGX_HTTP_QCC_LOG_BATCH
        || log->file == NULL)
    {
        ngx_http_qcc_log_write(log->file, &log->disk_full_time, buf, len);
        return;
    }

    ngx_http_qcc_log_batch_file = log->file;
    ngx_memcpy(ngx_http_qcc_log_batch + ngx_http_qcc_log_batch_len, buf, len);
    ngx_http_qcc_log_batch_len += len;

    ev = &ngx_http_qcc_log_flush_event;

    if (!ev->posted) {
        ngx_post_event(ev, &ngx_posted_events);
    }
}


static void
ngx_http_qcc_log_flush_handler(ngx_event_t *ev)
{
    ngx_http_qcc_log_flush();
}


/* as nginx writes a file log: nothing for a second after ENOSPC */

static void
ngx_http_qcc_log_write(ngx_open_file_t *file, time_t *disk_full, u_char *buf,
    size_t len)
{
    ssize_t  n;

    if (file == NULL || file->fd == NGX_INVALID_FILE
        || ngx_time() == *disk_full)
    {
        return;
    }

    n = ngx_write_fd(file->fd, buf, len);

    if (n == -1 && ngx_errno == NGX_ENOSPC) {
        *disk_full = ngx_time();
    }
}
