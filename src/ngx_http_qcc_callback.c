/*
 * QCC's push callback: validates the five arguments, puts the order in
 * the shared queue, and answers QCC's JSON only once the order's journal
 * record is durable.
 */

#include "ngx_http_qcc_module.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_uint_t                  feed;
    u_char                      order_no[QCC_CALLBACK_ORDER_NO_MAX];
    size_t                      order_no_len;
    unsigned                    created:1;
} ngx_http_qcc_callback_ctx_t;


static void ngx_http_qcc_callback_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_callback_process(ngx_http_request_t *r,
    u_char *in, size_t len, unsigned flags);
static void ngx_http_qcc_callback_mask(ngx_http_request_t *r,
    qcc_callback_args_t *a);
static ngx_int_t ngx_http_qcc_callback_queue(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf, qcc_callback_args_t *a);
static void ngx_http_qcc_callback_journaled(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_qcc_callback_refuse(ngx_http_request_t *r,
    ngx_uint_t feed, ngx_uint_t status, const char *json_status,
    const char *reason);
static void ngx_http_qcc_callback_count(ngx_http_request_t *r,
    ngx_uint_t feed, ngx_uint_t outcome);
static u_char *ngx_http_qcc_callback_log_handler(ngx_http_request_t *r,
    ngx_http_request_t *sr, u_char *buf, size_t len);


static u_char  ngx_http_qcc_callback_ok[] = QCC_CALLBACK_OK_BODY;


ngx_int_t
ngx_http_qcc_callback_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    if (r->method == NGX_HTTP_GET) {

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        /* '+' is a space to Java's URLEncoder, which QCC may well use */
        return ngx_http_qcc_callback_process(r, r->args.data, r->args.len,
                                             QCC_CALLBACK_PLUS_SPACE);
    }

    /*
     * The form is in the body: the request line may be masked at once,
     * before any refusal logs it.
     */
    ngx_http_qcc_log_mask_request(r);

    if (r->method != NGX_HTTP_POST) {
        if (ngx_http_qcc_add_header(r, "Allow", "GET, POST") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_qcc_callback_refuse(r, qlcf->callback,
                                            NGX_HTTP_NOT_ALLOWED, "405",
                                            "method not allowed");
    }

    if (r->headers_in.content_type == NULL
        || ngx_strncasecmp(r->headers_in.content_type->value.data,
                           (u_char *) "application/x-www-form-urlencoded",
                           sizeof("application/x-www-form-urlencoded") - 1)
           != 0)
    {
        return ngx_http_qcc_callback_refuse(r, qlcf->callback,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "415",
                                  "POST body must be form-encoded");
    }

    if (r->headers_in.content_length_n > (off_t) qlcf->callback_max_body) {
        return ngx_http_qcc_callback_refuse(r, qlcf->callback,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "413", "request too large");
    }

    /* the body is kept in memory: at most callback_max_body bytes */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_qcc_callback_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_qcc_callback_body(ngx_http_request_t *r)
{
    u_char                   *p;
    size_t                    len;
    ngx_buf_t                *b;
    ngx_int_t                 rc;
    ngx_chain_t              *cl;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    len = 0;

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r,
            ngx_http_qcc_callback_refuse(r, qlcf->callback,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "413", "request too large"));
        return;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > qlcf->callback_max_body) {
        ngx_http_finalize_request(r,
            ngx_http_qcc_callback_refuse(r, qlcf->callback,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "413", "request too large"));
        return;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len = ngx_cpymem(p + len, b->pos, b->last - b->pos) - p;
    }

    rc = ngx_http_qcc_callback_process(r, p, len, QCC_CALLBACK_PLUS_SPACE);

    ngx_explicit_memzero(p, len);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_qcc_callback_process(ngx_http_request_t *r, u_char *in, size_t len,
    unsigned flags)
{
    u_char                   *scratch;
    ngx_int_t                 rc, status;
    const char               *json_status;
    qcc_callback_conf_t       conf;
    qcc_callback_args_t       a;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    conf.key = qlcf->key.data;
    conf.key_len = qlcf->key.len;
    conf.hosts = qlcf->download_hosts->elts;
    conf.nhosts = qlcf->download_hosts->nelts;
    conf.flags = flags;

    scratch = ngx_pnalloc(r->pool, len ? len : 1);
    if (scratch == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&a, sizeof(qcc_callback_args_t));

    rc = qcc_callback_parse(in, len, &conf, scratch, len ? len : 1, &a);

    /* read: from here on, no log line may show it (a POST's is masked) */
    if (r->method == NGX_HTTP_GET) {
        ngx_http_qcc_callback_mask(r, &a);
    }

    if (rc != QCC_CALLBACK_OK) {
        ngx_explicit_memzero(scratch, len);

        status = qcc_callback_http_status(rc);
        json_status = qcc_callback_status(rc);

        if (rc == QCC_CALLBACK_TOO_LARGE && r->method == NGX_HTTP_POST) {
            status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
            json_status = "413";
        }

        return ngx_http_qcc_callback_refuse(r, qlcf->callback, status,
                                            json_status,
                                            a.reason ? a.reason
                                                     : "bad request");
    }

    rc = ngx_http_qcc_callback_queue(r, qlcf, &a);

    ngx_explicit_memzero(scratch, len);

    return rc;
}


/*
 * Masks the password of a GET in the request line.  Once the parser has
 * seen every argument it knows where the password is (any letter case,
 * any encoding of its name): only that is masked, if the arguments are
 * the request line's, and no '=' before them could hold another.  Else
 * the whole request line is searched.
 */

static void
ngx_http_qcc_callback_mask(ngx_http_request_t *r, qcc_callback_args_t *a)
{
    u_char  *start, *end;

    start = r->request_line.data;
    end = start + r->request_line.len;

    if (!a->split
        || start == NULL
        || r->args.data < start || r->args.data + r->args.len > end
        || r->unparsed_uri.data < start
        || r->unparsed_uri.data + r->unparsed_uri.len > end
        || ngx_strlchr(start, r->args.data, '=') != NULL)
    {
        ngx_http_qcc_log_mask_request(r);
        return;
    }

    if (a->password_raw) {
        ngx_memset((u_char *) a->password_raw, '*', a->password_raw_len);
    }

    ngx_http_qcc_log_masked_request(r);
}


static ngx_int_t
ngx_http_qcc_callback_queue(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf, qcc_callback_args_t *a)
{
    time_t                        now;
    ngx_uint_t                    feed;
    ngx_http_qcc_queue_t         *q;
    ngx_http_qcc_order_t         *o;
    ngx_http_qcc_callback_ctx_t  *ctx;

    feed = qlcf->callback;
    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_qcc_callback_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->feed = feed;
    ctx->order_no_len = a->order_no_len;
    ngx_memcpy(ctx->order_no, a->order_no, a->order_no_len);

    now = ngx_time();

    ngx_shmtx_lock(&q->shpool->mutex);

    q->sh->last_push[feed] = now;

    o = ngx_http_qcc_order_lookup_locked(q, feed, ctx->order_no,
                                         ctx->order_no_len);

    if (o && o->durable) {
        ngx_shmtx_unlock(&q->shpool->mutex);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "qcc: %V order \"%*s\" pushed again, already queued",
                      &ngx_http_qcc_feed_names[feed], ctx->order_no_len,
                      ctx->order_no);

        ngx_http_qcc_callback_count(r, feed, NGX_HTTP_QCC_CB_DUPLICATE);

        return ngx_http_qcc_send_json(r, NGX_HTTP_OK,
                                      ngx_http_qcc_callback_ok,
                                      sizeof(ngx_http_qcc_callback_ok) - 1);
    }

    if (o == NULL) {
        o = ngx_http_qcc_order_add_locked(q, feed, ctx->order_no,
                                          ctx->order_no_len);

        if (o == NULL
            || ngx_http_qcc_order_set_url_locked(q, o, (u_char *) a->url,
                                                 a->url_len)
               != NGX_OK)
        {
            if (o) {
                ngx_http_qcc_order_remove_locked(q, o);
            }

            ngx_shmtx_unlock(&q->shpool->mutex);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "qcc: queue zone \"%V\" is full, %V order "
                          "\"%*s\" refused",
                          &q->qmcf->queue_zone->shm.name,
                          &ngx_http_qcc_feed_names[feed],
                          ctx->order_no_len, ctx->order_no);

            ngx_http_qcc_callback_count(r, feed, NGX_HTTP_QCC_CB_ERROR);

            return ngx_http_qcc_callback_refuse(r, feed,
                                         NGX_HTTP_SERVICE_UNAVAILABLE, "503",
                                         "queue full, try again later");
        }

        o->received = now;
        o->updated = now;
        o->next_try = now;
        o->expires = a->expires;
        o->source = NGX_HTTP_QCC_SOURCE_PUSH;
        o->password_len = (uint8_t) a->password_len;
        ngx_memcpy(o->password, a->password, a->password_len);

        ctx->created = 1;
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    /* the answer waits until the record is on disk */

    r->main->count++;

    if (ngx_http_qcc_journal_order(q, feed, ctx->order_no, ctx->order_no_len,
                                   r->connection->log,
                                   ngx_http_qcc_callback_journaled, ctx)
        != NGX_OK)
    {
        /*
         * journaled() finalizes the request, taking back the count above;
         * the NGX_DONE below then takes back the request's own.
         */
        ngx_http_qcc_callback_journaled(ctx, NGX_ERROR);
        return NGX_DONE;
    }

    return NGX_DONE;
}


static void
ngx_http_qcc_callback_journaled(void *data, ngx_int_t rc)
{
    ngx_http_qcc_callback_ctx_t *ctx = data;

    ngx_http_request_t    *r;
    ngx_http_qcc_queue_t  *q;
    ngx_http_qcc_order_t  *o;

    r = ctx->request;
    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);

    if (o && rc == NGX_OK) {
        o->durable = 1;

    } else if (o && ctx->created && !o->durable) {
        /* nothing half-recorded: the order was never acknowledged */
        ngx_http_qcc_order_remove_locked(q, o);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "qcc: %V order \"%*s\" refused: journal write failed",
                      &ngx_http_qcc_feed_names[ctx->feed],
                      ctx->order_no_len, ctx->order_no);

        ngx_http_qcc_callback_count(r, ctx->feed, NGX_HTTP_QCC_CB_ERROR);

        ngx_http_finalize_request(r,
            ngx_http_qcc_callback_refuse(r, ctx->feed,
                                         NGX_HTTP_SERVICE_UNAVAILABLE, "503",
                                         "journal unavailable, try again "
                                         "later"));
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "qcc: %V order \"%*s\" queued",
                  &ngx_http_qcc_feed_names[ctx->feed],
                  ctx->order_no_len, ctx->order_no);

    ngx_http_qcc_callback_count(r, ctx->feed, NGX_HTTP_QCC_CB_OK);

    /* picked up at once, not at the next tick */
    ngx_http_qcc_fetch_wake(ctx->feed, ctx->order_no, ctx->order_no_len);

    ngx_http_finalize_request(r,
        ngx_http_qcc_send_json(r, NGX_HTTP_OK, ngx_http_qcc_callback_ok,
                               sizeof(ngx_http_qcc_callback_ok) - 1));
}


/*
 * A refusal: QCC-style JSON and one line naming the argument.  The line
 * names the location, not the request line: the arguments are the
 * sender's (masked by then anyway: every path here starts after the
 * handler's or process()'s ngx_http_qcc_log_mask_request()), and leaving
 * them out keeps a flood of forgeries cheap to log.
 */

static ngx_int_t
ngx_http_qcc_callback_refuse(ngx_http_request_t *r, ngx_uint_t feed,
    ngx_uint_t status, const char *json_status, const char *reason)
{
    u_char                   *body, *p;
    size_t                    status_len, reason_len;
    ngx_str_t                *name;
    ngx_http_log_handler_pt   log_handler;
    u_char                    msg[NGX_MAX_ERROR_STR];

    status_len = ngx_strlen(json_status);
    reason_len = ngx_strlen(reason);

    if (status < NGX_HTTP_INTERNAL_SERVER_ERROR) {
        name = &ngx_http_qcc_feed_names[feed];

        /* "qcc: %V callback refused with %s: %s", the texts short */
        p = ngx_cpymem(msg, "qcc: ", sizeof("qcc: ") - 1);
        p = ngx_cpymem(p, name->data, name->len);
        p = ngx_cpymem(p, " callback refused with ",
                       sizeof(" callback refused with ") - 1);
        p = ngx_cpymem(p, json_status, status_len);
        *p++ = ':';
        *p++ = ' ';
        p = ngx_cpymem(p, reason, reason_len);

        log_handler = r->log_handler;
        r->log_handler = ngx_http_qcc_callback_log_handler;

        ngx_http_qcc_log_warn(r->connection->log, msg, p - msg);

        r->log_handler = log_handler;

        ngx_http_qcc_callback_count(r, feed, NGX_HTTP_QCC_CB_REFUSED);
    }

    body = ngx_pnalloc(r->pool,
                       sizeof("{\"status\":\"\",\"msg\":\"\"}") - 1
                       + status_len + reason_len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* both texts are static and JSON-safe */
    p = ngx_cpymem(body, "{\"status\":\"", sizeof("{\"status\":\"") - 1);
    p = ngx_cpymem(p, json_status, status_len);
    p = ngx_cpymem(p, "\",\"msg\":\"", sizeof("\",\"msg\":\"") - 1);
    p = ngx_cpymem(p, reason, reason_len);
    p = ngx_cpymem(p, "\"}", sizeof("\"}") - 1);

    return ngx_http_qcc_send_json(r, status, body, p - body);
}


/*
 * The refusal line's context, as nginx's own but with the request's
 * method and path in place of its request line; copied, not formatted,
 * as a flood of forgeries goes through here.
 */

static u_char *
ngx_http_qcc_callback_log_handler(ngx_http_request_t *r,
    ngx_http_request_t *sr, u_char *buf, size_t len)
{
    u_char                    *p;
    size_t                     need;
    ngx_table_elt_t           *host;
    ngx_http_core_srv_conf_t  *cscf;

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    host = r->headers_in.host;

    need = sizeof(", server: , request: \" \"") - 1 + cscf->server_name.len
           + r->method_name.len + r->uri.len
           + (host ? sizeof(", host: \"\"") - 1 + host->value.len : 0);

    if (need > len) {
        /* a long Host or path: formatted, cut where the line ends */
        return ngx_snprintf(buf, len, ", server: %V, request: \"%V %V\"",
                            &cscf->server_name, &r->method_name, &r->uri);
    }

    p = ngx_cpymem(buf, ", server: ", sizeof(", server: ") - 1);
    p = ngx_cpymem(p, cscf->server_name.data, cscf->server_name.len);
    p = ngx_cpymem(p, ", request: \"", sizeof(", request: \"") - 1);
    p = ngx_cpymem(p, r->method_name.data, r->method_name.len);
    *p++ = ' ';
    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    *p++ = '"';

    if (host) {
        p = ngx_cpymem(p, ", host: \"", sizeof(", host: \"") - 1);
        p = ngx_cpymem(p, host->value.data, host->value.len);
        *p++ = '"';
    }

    return p;
}


static void
ngx_http_qcc_callback_count(ngx_http_request_t *r, ngx_uint_t feed,
    ngx_uint_t outcome)
{
    ngx_http_qcc_queue_t  *q;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    if (q) {
        (void) ngx_atomic_fetch_add(&q->sh->callbacks[feed][outcome], 1);
    }

    if (outcome == NGX_HTTP_QCC_CB_REFUSED
        || outcome == NGX_HTTP_QCC_CB_ERROR)
    {
        if (q) {
            q->sh->callback_failed[feed] = 1;
        }
    }
}


ngx_int_t
ngx_http_qcc_add_header(ngx_http_request_t *r, char *key, char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


ngx_int_t
ngx_http_qcc_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type,
                "application/json;charset=utf-8");
    r->headers_out.content_type_len = sizeof("application/json") - 1;
    r->headers_out.content_type_lowcase = NULL;

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = (len == 0) || (r->method == NGX_HTTP_HEAD);
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
