/*
 * Signing of proxied QCC calls: the precontent phase handler that puts
 * key, Token and Timespan on the request sent upstream, and the
 * $qcc_timespan and $qcc_token variables.
 */

#include "ngx_http_qcc_module.h"


static ngx_int_t ngx_http_qcc_sign_args(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf);
static ngx_uint_t ngx_http_qcc_is_credential(ngx_table_elt_t *h);
static ngx_int_t ngx_http_qcc_sign_headers(ngx_http_request_t *r,
    ngx_http_qcc_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_push_header(ngx_http_request_t *r,
    ngx_list_t *headers, ngx_str_t *key, u_char *lowcase, ngx_uint_t hash,
    u_char *value, size_t len);
static ngx_int_t ngx_http_qcc_sign_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_str_t   ngx_http_qcc_token_name = ngx_string("Token");
static ngx_str_t   ngx_http_qcc_timespan_name = ngx_string("Timespan");

/* ngx_hash_key() of "token" and "timespan", computed once */
static ngx_uint_t  ngx_http_qcc_token_hash;
static ngx_uint_t  ngx_http_qcc_timespan_hash;


static ngx_http_variable_t  ngx_http_qcc_sign_vars[] = {

    { ngx_string("qcc_timespan"), NULL, ngx_http_qcc_sign_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("qcc_token"), NULL, ngx_http_qcc_sign_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_qcc_sign_add_variables(ngx_conf_t *cf)
{
    ngx_http_qcc_token_hash = ngx_hash_key((u_char *) "token",
                                           sizeof("token") - 1);
    ngx_http_qcc_timespan_hash = ngx_hash_key((u_char *) "timespan",
                                              sizeof("timespan") - 1);

    return ngx_http_qcc_add_variables(cf, ngx_http_qcc_sign_vars);
}


ngx_http_qcc_ctx_t *
ngx_http_qcc_get_ctx(ngx_http_request_t *r)
{
    ngx_http_qcc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_qcc_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_qcc_module);
    }

    return ctx;
}


/*
 * The Timespan and Token of this request, computed once so that the
 * headers and the variables agree; NULL when no account is in effect.
 */

ngx_http_qcc_ctx_t *
ngx_http_qcc_sign_values(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf)
{
    time_t               now;
    ngx_http_qcc_ctx_t  *ctx;

    if (qlcf->key.data == NULL || qlcf->secret.data == NULL) {
        return NULL;
    }

    ctx = ngx_http_qcc_get_ctx(r);
    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->signed_) {
        return ctx;
    }

    now = ngx_time();

    /*
     * The Token changes once a second per account: the last one computed
     * in this worker is kept in the location's configuration (each worker
     * has its own copy of it) and reused within the same second.
     */

    if (qlcf->signed_sec != now || qlcf->signed_ts_len == 0) {
        qlcf->signed_ts_len = qcc_sign_timespan(now, qlcf->signed_ts);

        if (qlcf->signed_ts_len == 0
            || qcc_sign_token(qlcf->key.data, qlcf->key.len,
                              qlcf->signed_ts, qlcf->signed_ts_len,
                              qlcf->secret.data, qlcf->secret.len,
                              qlcf->signed_token)
               != 0)
        {
            qlcf->signed_ts_len = 0;
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "qcc: computing the request token failed");
            return NULL;
        }

        qlcf->signed_sec = now;
    }

    ctx->timespan_len = qlcf->signed_ts_len;
    ngx_memcpy(ctx->timespan, qlcf->signed_ts, qlcf->signed_ts_len);
    ngx_memcpy(ctx->token, qlcf->signed_token, QCC_TOKEN_LEN);

    ctx->signed_ = 1;

    return ctx;
}


ngx_int_t
ngx_http_qcc_sign_handler(ngx_http_request_t *r)
{
    ngx_http_qcc_ctx_t       *ctx;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    if (!qlcf->sign) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_qcc_sign_values(r, qlcf);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_qcc_sign_args(r, qlcf) != NGX_OK
        || ngx_http_qcc_sign_headers(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "qcc sign: timespan %*s", ctx->timespan_len,
                   ctx->timespan);

    return NGX_DECLINED;
}


/*
 * Both r->args (proxy_pass with a URI part) and r->unparsed_uri
 * (proxy_pass without one) carry the new query string, so the path and
 * every other argument go upstream byte for byte.
 */

static ngx_int_t
ngx_http_qcc_sign_args(ngx_http_request_t *r, ngx_http_qcc_loc_conf_t *qlcf)
{
    u_char  *p, *q, *path_end;
    size_t   len, path_len;

    path_len = 0;

    if (r->valid_unparsed_uri) {
        path_end = memchr(r->unparsed_uri.data, '?', r->unparsed_uri.len);
        path_len = (path_end ? path_end : r->unparsed_uri.data
                                          + r->unparsed_uri.len)
                   - r->unparsed_uri.data;
    }

    len = path_len + 1 + qlcf->key_arg.len + 1 + r->args.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    q = ngx_cpymem(p, r->unparsed_uri.data, path_len);
    *q++ = '?';

    len = qcc_sign_args(r->args.data, r->args.len,
                        qlcf->key_arg.data, qlcf->key_arg.len, q);

    r->args.data = q;
    r->args.len = len;

    if (r->valid_unparsed_uri) {
        r->unparsed_uri.data = p;
        r->unparsed_uri.len = path_len + 1 + len;
    }

    return NGX_OK;
}


/* Whether a request header is one of QCC's credentials. */

static ngx_uint_t
ngx_http_qcc_is_credential(ngx_table_elt_t *h)
{
    return (h->key.len == sizeof("token") - 1
            && ngx_strncmp(h->lowcase_key, "token", sizeof("token") - 1) == 0)
           || (h->key.len == sizeof("timespan") - 1
               && ngx_strncmp(h->lowcase_key, "timespan",
                              sizeof("timespan") - 1) == 0);
}


/* Whether the request's header list holds a Token or a Timespan. */

ngx_uint_t
ngx_http_qcc_has_credentials(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        header = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_qcc_is_credential(&header[i])) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * A copy of the request's header list without any Token or Timespan, with
 * room for extra more.  A copy rather than an edit in place, since a
 * subrequest shares the parts of its parent's list.
 */

ngx_int_t
ngx_http_qcc_headers_without_credentials(ngx_http_request_t *r,
    ngx_list_t *headers, ngx_uint_t extra)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header, *h;

    n = extra;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(headers, r->pool, n ? n : 1, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        header = part->elts;

        for (i = 0; i < part->nelts; i++) {

            if (ngx_http_qcc_is_credential(&header[i])) {
                continue;
            }

            h = ngx_list_push(headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            *h = header[i];
        }
    }

    return NGX_OK;
}


/*
 * Our Timespan and Token appended to the request's header list.  Usually
 * in place: a main request whose list holds no Token or Timespan (the
 * client's, or ours before an internal redirect).  Otherwise onto a copy
 * of the list without them, since a subrequest shares the parts of its
 * parent's list.
 */

static ngx_int_t
ngx_http_qcc_sign_headers(ngx_http_request_t *r, ngx_http_qcc_ctx_t *ctx)
{
    ngx_list_t  copy, *headers;

    if (r == r->main && !ngx_http_qcc_has_credentials(r)) {
        headers = &r->headers_in.headers;

    } else {
        if (ngx_http_qcc_headers_without_credentials(r, &copy, 2) != NGX_OK) {
            return NGX_ERROR;
        }

        headers = &copy;
    }

    if (ngx_http_qcc_push_header(r, headers, &ngx_http_qcc_timespan_name,
                                 (u_char *) "timespan",
                                 ngx_http_qcc_timespan_hash, ctx->timespan,
                                 ctx->timespan_len)
        != NGX_OK
        || ngx_http_qcc_push_header(r, headers, &ngx_http_qcc_token_name,
                                    (u_char *) "token",
                                    ngx_http_qcc_token_hash, ctx->token,
                                    QCC_TOKEN_LEN)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (headers == &copy) {
        r->headers_in.headers = copy;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_push_header(ngx_http_request_t *r, ngx_list_t *headers,
    ngx_str_t *key, u_char *lowcase, ngx_uint_t hash, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key = *key;
    h->lowcase_key = lowcase;
    h->hash = hash;
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* data: 0 for $qcc_timespan, 1 for $qcc_token */

static ngx_int_t
ngx_http_qcc_sign_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_qcc_ctx_t  *ctx;

    ctx = ngx_http_qcc_sign_values(r,
                   ngx_http_get_module_loc_conf(r, ngx_http_qcc_module));

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data) {
        v->data = ctx->token;
        v->len = QCC_TOKEN_LEN;

    } else {
        v->data = ctx->timespan;
        v->len = ctx->timespan_len;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
