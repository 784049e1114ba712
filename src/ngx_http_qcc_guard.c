/*
 * ngx_http_qcc_guard_module: edge guardrails of QCC calls and the files
 * route, a module of its own in the shared object.
 *
 *   qcc_guard on;                  refuse, with QCC's 202 in JSON and HTTP
 *                                  400, batch-assignment calls with too
 *                                  many list items and getShiXinList with
 *                                  a pageSize over the limit
 *   qcc_batch_zone zone=N:SIZE;    shared state of the concurrency limit
 *   qcc_batch_limit zone=N ...;    at most `concurrency` batch-assignment
 *                                  calls per account at once; the next
 *                                  `queue` ones wait in order up to `wait`,
 *                                  the others get 429 in JSON
 *   qcc_files;                     the files route: /<prefix>/<scheme>/
 *                                  <host>/<path>?<query> is downloaded
 *                                  from the allowed hosts only, without
 *                                  QCC credentials, via
 *                                  proxy_pass $qcc_files_url
 *   qcc_files_rewrite PREFIX;      links to download hosts in JSON answers
 *                                  rewritten to PREFIX<scheme>/<host>/...
 *
 * Everything runs in the precontent phase, after the access checks and
 * before the signing handler, so that refused calls are never signed.
 */

#include "ngx_http_qcc_module.h"
#include "qcc_guard.h"


#define NGX_HTTP_QCC_GUARD_SLOTS_MAX   64
#define NGX_HTTP_QCC_GUARD_POLL        20       /* ms between queue polls */
#define NGX_HTTP_QCC_GUARD_GRACE       1000     /* ms before a late waiter
                                                   is purged by others */
#define NGX_HTTP_QCC_GUARD_KEY_MAX     256
#define NGX_HTTP_QCC_GUARD_REWRITE_MAX (1024 * 1024)  /* larger answers
                                                         pass unchanged */

/* the states of a request's claim in the zone */
#define NGX_HTTP_QCC_GUARD_NONE        0
#define NGX_HTTP_QCC_GUARD_WAITING     1
#define NGX_HTTP_QCC_GUARD_ADMITTED    2

/* results of an attempt to take a slot */
#define NGX_HTTP_QCC_GUARD_TAKEN       0
#define NGX_HTTP_QCC_GUARD_WAIT        1
#define NGX_HTTP_QCC_GUARD_BUSY        2


typedef struct {
    ngx_pid_t                      pid;
    uint64_t                       id;          /* 0: free */
} ngx_http_qcc_guard_slot_t;


typedef struct {
    ngx_queue_t                    queue;       /* sh->waiters of the
                                                   account */
    uint64_t                       id;
    ngx_msec_t                     deadline;
    ngx_pid_t                      pid;
} ngx_http_qcc_guard_waiter_t;


typedef struct {
    ngx_queue_t                    queue;       /* sh->accounts */
    ngx_queue_t                    waiters;
    ngx_uint_t                     nwaiters;
    ngx_uint_t                     active;
    ngx_msec_t                     checked;     /* last dead-holder check */
    ngx_http_qcc_guard_slot_t      slots[NGX_HTTP_QCC_GUARD_SLOTS_MAX];
    size_t                         len;
    u_char                         key[1];
} ngx_http_qcc_guard_account_t;


typedef struct {
    ngx_queue_t                    accounts;
    uint64_t                       next_id;
    ngx_uint_t                     refused;     /* 429 answers */
    ngx_uint_t                     waited;      /* admitted after waiting */
} ngx_http_qcc_guard_shctx_t;


typedef struct {
    ngx_http_qcc_guard_shctx_t    *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_qcc_guard_zone_t;


typedef struct {
    ngx_flag_t                     guard;
    ngx_uint_t                     max_keywords;
    ngx_uint_t                     max_login_names;
    ngx_uint_t                     max_page_size;

    ngx_shm_zone_t                *zone;        /* NULL: no limit */
    ngx_uint_t                     concurrency;
    ngx_uint_t                     queue;
    ngx_msec_t                     wait;
    ngx_flag_t                     limit_set;   /* qcc_batch_limit seen */

    ngx_flag_t                     files;

    ngx_str_t                      rewrite;     /* prefix; empty: off */
    ngx_flag_t                     rewrite_set;
} ngx_http_qcc_guard_loc_conf_t;


/* A request's claim; it is the data of its pool cleanup. */
typedef struct {
    ngx_http_request_t            *request;
    ngx_shm_zone_t                *zone;
    ngx_http_qcc_guard_account_t  *account;
    uint64_t                       waiter;
    uint64_t                       slot_id;
    ngx_uint_t                     slot;
    ngx_msec_t                     deadline;
    ngx_uint_t                     state;
    ngx_str_t                      files_url;
    ngx_str_t                      files_host;  /* of files_url, no port */
    u_char                        *acc;         /* the JSON answer so far */
    size_t                         acc_len;
    size_t                         acc_size;
    ngx_msec_t                     wait_start;
    ngx_msec_t                     waited;      /* for $qcc_batch_wait */
    unsigned                       limited:1;
    unsigned                       body_read:1;
    unsigned                       rewrite:1;
} ngx_http_qcc_guard_ctx_t;


static ngx_int_t ngx_http_qcc_guard_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_guard_has_form(ngx_http_request_t *r);
static void ngx_http_qcc_guard_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_guard_join_body(ngx_http_request_t *r,
    ngx_str_t *args);
static ngx_int_t ngx_http_qcc_guard_files(ngx_http_request_t *r,
    ngx_http_qcc_guard_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_guard_strip_headers(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_guard_limit(ngx_http_request_t *r,
    ngx_http_qcc_guard_loc_conf_t *glcf, ngx_http_qcc_guard_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_guard_take_locked(
    ngx_http_qcc_guard_zone_t *z, ngx_http_qcc_guard_loc_conf_t *glcf,
    ngx_http_qcc_guard_ctx_t *ctx);
static void ngx_http_qcc_guard_reclaim_locked(
    ngx_http_qcc_guard_account_t *a, ngx_log_t *log);
static ngx_http_qcc_guard_account_t *ngx_http_qcc_guard_account_locked(
    ngx_http_qcc_guard_zone_t *z, ngx_str_t *key);
static void ngx_http_qcc_guard_wait_handler(ngx_http_request_t *r);
static void ngx_http_qcc_guard_release_locked(ngx_http_qcc_guard_ctx_t *ctx);
static void ngx_http_qcc_guard_cleanup(void *data);
static ngx_int_t ngx_http_qcc_guard_refuse(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_qcc_guard_busy(ngx_http_request_t *r);
static ngx_http_qcc_guard_ctx_t *ngx_http_qcc_guard_get_ctx(
    ngx_http_request_t *r, ngx_uint_t create);
static ngx_int_t ngx_http_qcc_guard_files_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_qcc_guard_wait_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_qcc_guard_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_qcc_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_guard_limit_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_qcc_guard_files_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void *ngx_http_qcc_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_qcc_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_qcc_guard_rewrite_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_qcc_guard_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_guard_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_qcc_guard_rewrite_send(ngx_http_request_t *r,
    ngx_http_qcc_guard_ctx_t *ctx, ngx_uint_t last);
static ngx_int_t ngx_http_qcc_guard_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_guard_postconfiguration(ngx_conf_t *cf);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_conf_num_bounds_t  ngx_http_qcc_guard_positive = {
    ngx_conf_check_num_bounds, 1, 1000000
};


static ngx_command_t  ngx_http_qcc_guard_commands[] = {

    { ngx_string("qcc_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_guard_loc_conf_t, guard),
      NULL },

    { ngx_string("qcc_batch_max_keywords"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_guard_loc_conf_t, max_keywords),
      &ngx_http_qcc_guard_positive },

    { ngx_string("qcc_batch_max_login_names"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_guard_loc_conf_t, max_login_names),
      &ngx_http_qcc_guard_positive },

    { ngx_string("qcc_max_page_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_guard_loc_conf_t, max_page_size),
      &ngx_http_qcc_guard_positive },

    { ngx_string("qcc_batch_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_guard_zone,
      0,
      0,
      NULL },

    { ngx_string("qcc_batch_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_guard_limit_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_files"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_qcc_guard_files_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_files_rewrite"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_guard_rewrite_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_qcc_guard_module_ctx = {
    ngx_http_qcc_guard_preconfiguration,   /* preconfiguration */
    ngx_http_qcc_guard_postconfiguration,  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_qcc_guard_create_loc_conf,    /* create location configuration */
    ngx_http_qcc_guard_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_qcc_guard_module = {
    NGX_MODULE_V1,
    &ngx_http_qcc_guard_module_ctx,        /* module context */
    ngx_http_qcc_guard_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_qcc_guard_vars[] = {

    { ngx_string("qcc_files_url"), NULL, ngx_http_qcc_guard_files_variable,
      offsetof(ngx_http_qcc_guard_ctx_t, files_url),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("qcc_files_host"), NULL, ngx_http_qcc_guard_files_variable,
      offsetof(ngx_http_qcc_guard_ctx_t, files_host),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("qcc_batch_wait"), NULL, ngx_http_qcc_guard_wait_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* --- the phase handler ---------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_guard_handler(ngx_http_request_t *r)
{
    size_t                          len;
    ngx_int_t                       rc;
    ngx_str_t                       args;
    u_char                          body[QCC_GUARD_RESPONSE_MAX];
    qcc_guard_limits_t              limits;
    qcc_guard_result_t              res;
    ngx_http_qcc_guard_ctx_t       *ctx;
    ngx_http_qcc_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_guard_module);

    if (r != r->main
        || (!glcf->guard && glcf->zone == NULL && !glcf->files))
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_qcc_guard_get_ctx(r, 0);

    if (ctx && ctx->state == NGX_HTTP_QCC_GUARD_ADMITTED) {
        /* resumed after the wait, or after an internal redirect */
        return NGX_DECLINED;
    }

    if (glcf->files) {
        ctx = ngx_http_qcc_guard_get_ctx(r, 1);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_qcc_guard_files(r, ctx);
    }

    if (qcc_guard_classify(r->uri.data, r->uri.len) == QCC_GUARD_API_OTHER)
    {
        return NGX_DECLINED;
    }

    args = r->args;

    if (glcf->guard && ngx_http_qcc_guard_has_form(r)) {

        /* QCC reads form bodies too: their arguments count as well */

        ctx = ngx_http_qcc_guard_get_ctx(r, 1);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (!ctx->body_read) {
            rc = ngx_http_read_client_request_body(r,
                                             ngx_http_qcc_guard_body_handler);
            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            ngx_http_finalize_request(r, NGX_DONE);
            return NGX_DONE;
        }

        if (ngx_http_qcc_guard_join_body(r, &args) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    limits.max_keywords = glcf->max_keywords;
    limits.max_login_names = glcf->max_login_names;
    limits.max_page_size = glcf->max_page_size;

    qcc_guard_check(r->uri.data, r->uri.len, args.data, args.len,
                    &limits, &res);

    if (glcf->guard && res.rc != QCC_GUARD_OK) {
        len = qcc_guard_response(&res, body, sizeof(body));

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "qcc: refused \"%V\": %*s", &r->uri, len, body);

        return ngx_http_qcc_guard_refuse(r, NGX_HTTP_BAD_REQUEST, body, len);
    }

    if (glcf->zone == NULL || !qcc_guard_is_batch(res.api)) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_qcc_guard_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->state == NGX_HTTP_QCC_GUARD_WAITING) {
        /* the wait handler drives this request */
        return NGX_AGAIN;
    }

    return ngx_http_qcc_guard_limit(r, glcf, ctx);
}


/* --- form bodies ---------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_guard_has_form(ngx_http_request_t *r)
{
    ngx_table_elt_t  *ct;

    static u_char  form[] = "application/x-www-form-urlencoded";

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return 0;
    }

    ct = r->headers_in.content_type;

    return ct && ct->value.len >= sizeof(form) - 1
           && ngx_strncasecmp(ct->value.data, form, sizeof(form) - 1) == 0;
}


static void
ngx_http_qcc_guard_body_handler(ngx_http_request_t *r)
{
    ngx_http_qcc_guard_ctx_t  *ctx;

    ctx = ngx_http_qcc_guard_get_ctx(r, 0);

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->body_read = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* "<query>&<body>", as QCC sees the arguments of a form POST */

static ngx_int_t
ngx_http_qcc_guard_join_body(ngx_http_request_t *r, ngx_str_t *args)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    p = ngx_pnalloc(r->pool, r->args.len + 1 + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    args->data = p;

    /* no query: r->args.data is NULL, and memcpy() wants a pointer */
    if (r->args.len) {
        p = ngx_cpymem(p, r->args.data, r->args.len);
    }

    *p++ = '&';

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "qcc: reading the request body back failed");
            return NGX_ERROR;
        }

        p += n;
    }

    args->len = p - args->data;

    return NGX_OK;
}


/* --- the files route ------------------------------------------------------ */

static ngx_int_t
ngx_http_qcc_guard_files(ngx_http_request_t *r, ngx_http_qcc_guard_ctx_t *ctx)
{
    int                        rc;
    u_char                    *url, body[QCC_GUARD_RESPONSE_MAX], *p;
    size_t                     len;
    ngx_str_t                  raw;
    qcc_url_t                  u;
    ngx_http_qcc_loc_conf_t   *qlcf;
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx->files_url.len) {
        return NGX_DECLINED;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        p = (u_char *) "{\"status\":\"405\",\"msg\":\"the files route takes "
                       "GET and HEAD only\"}";
        return ngx_http_qcc_guard_refuse(r, NGX_HTTP_NOT_ALLOWED, p,
                                         ngx_strlen(p));
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    raw = r->unparsed_uri;

    /* the prefix of the location, byte for byte as the client sent it */

    if (!r->valid_unparsed_uri || raw.len < clcf->name.len
        || ngx_strncmp(raw.data, clcf->name.data, clcf->name.len) != 0)
    {
        p = (u_char *) "{\"status\":\"400\",\"msg\":\"the files route needs "
                       "its prefix unencoded\"}";
        return ngx_http_qcc_guard_refuse(r, NGX_HTTP_BAD_REQUEST, p,
                                         ngx_strlen(p));
    }

    url = ngx_pnalloc(r->pool, QCC_CALLBACK_URL_MAX);
    if (url == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = qcc_guard_files_url(raw.data + clcf->name.len,
                             raw.len - clcf->name.len, url,
                             QCC_CALLBACK_URL_MAX, &len);

    if (rc != QCC_GUARD_FILES_OK) {
        p = ngx_snprintf(body, sizeof(body),
                         "{\"status\":\"400\",\"msg\":\"%s\"}",
                         qcc_guard_files_strerror(rc));
        return ngx_http_qcc_guard_refuse(r, NGX_HTTP_BAD_REQUEST, body,
                                         p - body);
    }

    rc = qcc_url_parse(url, len, &u);

    if (rc == QCC_URL_OK) {
        rc = qcc_url_host_match(&u, qlcf->download_hosts->elts,
                                qlcf->download_hosts->nelts);
    }

    if (rc != QCC_URL_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "qcc: files route refused: %s", qcc_url_strerror(rc));

        p = ngx_snprintf(body, sizeof(body),
                         "{\"status\":\"%s\",\"msg\":\"%s\"}",
                         rc == QCC_URL_HOST_DENIED ? "403" : "400",
                         rc == QCC_URL_HOST_DENIED
                         ? "host not in qcc_download_hosts"
                         : qcc_url_strerror(rc));

        return ngx_http_qcc_guard_refuse(r, rc == QCC_URL_HOST_DENIED
                                            ? NGX_HTTP_FORBIDDEN
                                            : NGX_HTTP_BAD_REQUEST,
                                         body, p - body);
    }

    if (ngx_http_qcc_guard_strip_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->files_url.data = url;
    ctx->files_url.len = len;

    /* the name TLS verifies: no port, an IPv6 address without brackets */
    ctx->files_host.data = (u_char *) u.host;
    ctx->files_host.len = u.host_len;

    if (u.host_len > 2 && u.host[0] == '[') {
        ctx->files_host.data++;
        ctx->files_host.len -= 2;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "qcc files: \"%*s\"", len, url);

    return NGX_DECLINED;
}


/*
 * No Token or Timespan of the client's goes to a download host: a new
 * header list without them (a subrequest may share the old one).
 */

static ngx_int_t
ngx_http_qcc_guard_strip_headers(ngx_http_request_t *r)
{
    ngx_list_t  headers;

    /* none to drop: the list stays as it is */
    if (!ngx_http_qcc_has_credentials(r)) {
        return NGX_OK;
    }

    if (ngx_http_qcc_headers_without_credentials(r, &headers, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    r->headers_in.headers = headers;

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_guard_files_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *value;
    ngx_http_qcc_guard_ctx_t  *ctx;

    ctx = ngx_http_qcc_guard_get_ctx(r, 0);

    if (ctx == NULL || ctx->files_url.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (ngx_str_t *) ((u_char *) ctx + data);

    v->data = value->data;
    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* milliseconds a batch-assignment call waited for its slot */

static ngx_int_t
ngx_http_qcc_guard_wait_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    ngx_http_qcc_guard_ctx_t  *ctx;

    ctx = ngx_http_qcc_guard_get_ctx(r, 0);

    if (ctx == NULL || !ctx->limited) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%M", ctx->waited) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* --- the concurrency limit ------------------------------------------------ */

static ngx_int_t
ngx_http_qcc_guard_limit(ngx_http_request_t *r,
    ngx_http_qcc_guard_loc_conf_t *glcf, ngx_http_qcc_guard_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   key;
    ngx_event_t                *wev;
    ngx_http_qcc_guard_zone_t  *z;
    ngx_http_qcc_loc_conf_t    *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    key = qlcf->key;

    if (key.len > NGX_HTTP_QCC_GUARD_KEY_MAX) {
        key.len = NGX_HTTP_QCC_GUARD_KEY_MAX;
    }

    z = glcf->zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    ctx->account = ngx_http_qcc_guard_account_locked(z, &key);

    if (ctx->account == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "qcc: batch zone \"%V\" is full", &glcf->zone->shm.name);
        return ngx_http_qcc_guard_busy(r);
    }

    ctx->zone = glcf->zone;
    ctx->deadline = ngx_current_msec + glcf->wait;
    ctx->wait_start = ngx_current_msec;
    ctx->limited = 1;

    rc = ngx_http_qcc_guard_take_locked(z, glcf, ctx);

    if (rc == NGX_HTTP_QCC_GUARD_BUSY) {
        z->sh->refused++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    switch (rc) {

    case NGX_HTTP_QCC_GUARD_TAKEN:
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "qcc guard: batch slot taken");
        return NGX_DECLINED;

    case NGX_HTTP_QCC_GUARD_WAIT:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "qcc guard: waiting up to %M ms", glcf->wait);

        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_qcc_guard_wait_handler;

        wev = r->connection->write;
        wev->delayed = 1;
        ngx_add_timer(wev, ngx_min(glcf->wait, NGX_HTTP_QCC_GUARD_POLL));

        return NGX_AGAIN;

    default: /* BUSY */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "qcc: %ui batch-assignment calls running and %ui "
                      "waiting, refused", glcf->concurrency, glcf->queue);
        return ngx_http_qcc_guard_busy(r);
    }
}


/*
 * A slot for the request now, a place in the queue, or BUSY.  A waiter
 * at position i of the queue takes a slot when active + i < concurrency,
 * so no later arrival overtakes an earlier one.
 */

static ngx_int_t
ngx_http_qcc_guard_take_locked(ngx_http_qcc_guard_zone_t *z,
    ngx_http_qcc_guard_loc_conf_t *glcf, ngx_http_qcc_guard_ctx_t *ctx)
{
    ngx_uint_t                      i, pos, found;
    ngx_queue_t                    *q, *next;
    ngx_http_qcc_guard_waiter_t    *w, *mine;
    ngx_http_qcc_guard_account_t   *a;

    a = ctx->account;

    if (a->active >= glcf->concurrency) {
        ngx_http_qcc_guard_reclaim_locked(a, ctx->request->connection->log);
    }

    /* purge waiters their worker gave up on (it died or stalled) */

    pos = 0;
    found = 0;
    mine = NULL;

    for (q = ngx_queue_head(&a->waiters);
         q != ngx_queue_sentinel(&a->waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_qcc_guard_waiter_t, queue);

        if (w->id == ctx->waiter && ctx->waiter) {
            mine = w;
            found = 1;
            continue;
        }

        if ((ngx_msec_int_t) (ngx_current_msec - w->deadline)
            > NGX_HTTP_QCC_GUARD_GRACE)
        {
            ngx_queue_remove(q);
            ngx_slab_free_locked(z->shpool, w);
            a->nwaiters--;
            continue;
        }

        if (!found) {
            pos++;
        }
    }

    if (ctx->waiter) {

        if (mine == NULL) {
            /* purged: it waited far too long */
            ctx->waiter = 0;
            ctx->state = NGX_HTTP_QCC_GUARD_NONE;
            return NGX_HTTP_QCC_GUARD_BUSY;
        }

        if (a->active + pos >= glcf->concurrency) {
            return NGX_HTTP_QCC_GUARD_WAIT;
        }

        ngx_queue_remove(&mine->queue);
        ngx_slab_free_locked(z->shpool, mine);
        a->nwaiters--;
        ctx->waiter = 0;
        z->sh->waited++;

    } else if (a->nwaiters || a->active >= glcf->concurrency) {

        if (a->nwaiters >= glcf->queue) {
            return NGX_HTTP_QCC_GUARD_BUSY;
        }

        w = ngx_slab_alloc_locked(z->shpool,
                                  sizeof(ngx_http_qcc_guard_waiter_t));
        if (w == NULL) {
            return NGX_HTTP_QCC_GUARD_BUSY;
        }

        w->id = ++z->sh->next_id;
        w->pid = ngx_pid;
        w->deadline = ctx->deadline;
        ngx_queue_insert_tail(&a->waiters, &w->queue);
        a->nwaiters++;

        ctx->waiter = w->id;
        ctx->state = NGX_HTTP_QCC_GUARD_WAITING;

        return NGX_HTTP_QCC_GUARD_WAIT;
    }

    for (i = 0; i < NGX_HTTP_QCC_GUARD_SLOTS_MAX; i++) {
        if (a->slots[i].id == 0) {
            break;
        }
    }

    if (i == NGX_HTTP_QCC_GUARD_SLOTS_MAX) {
        /* cannot happen: active < concurrency <= SLOTS_MAX */
        ctx->state = NGX_HTTP_QCC_GUARD_NONE;
        return NGX_HTTP_QCC_GUARD_BUSY;
    }

    a->slots[i].id = ++z->sh->next_id;
    a->slots[i].pid = ngx_pid;
    a->active++;

    ctx->slot = i;
    ctx->slot_id = a->slots[i].id;
    ctx->state = NGX_HTTP_QCC_GUARD_ADMITTED;

    return NGX_HTTP_QCC_GUARD_TAKEN;
}


/*
 * Slots of workers that are gone (a crash: a normal exit releases them in
 * the requests' pool cleanups) are freed, at most once a second.
 */

static void
ngx_http_qcc_guard_reclaim_locked(ngx_http_qcc_guard_account_t *a,
    ngx_log_t *log)
{
    ngx_uint_t  i;

    if ((ngx_msec_int_t) (ngx_current_msec - a->checked) < 1000) {
        return;
    }

    a->checked = ngx_current_msec;

    for (i = 0; i < NGX_HTTP_QCC_GUARD_SLOTS_MAX; i++) {

        if (a->slots[i].id == 0 || a->slots[i].pid == ngx_pid) {
            continue;
        }

        if (kill(a->slots[i].pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "qcc: batch slot of exited process %P freed",
                          a->slots[i].pid);
            a->slots[i].id = 0;
            a->active--;
        }
    }
}


static ngx_http_qcc_guard_account_t *
ngx_http_qcc_guard_account_locked(ngx_http_qcc_guard_zone_t *z,
    ngx_str_t *key)
{
    ngx_queue_t                   *q;
    ngx_http_qcc_guard_account_t  *a;

    for (q = ngx_queue_head(&z->sh->accounts);
         q != ngx_queue_sentinel(&z->sh->accounts);
         q = ngx_queue_next(q))
    {
        a = ngx_queue_data(q, ngx_http_qcc_guard_account_t, queue);

        if (a->len == key->len
            && ngx_memcmp(a->key, key->data, key->len) == 0)
        {
            return a;
        }
    }

    a = ngx_slab_calloc_locked(z->shpool,
                               sizeof(ngx_http_qcc_guard_account_t)
                               + key->len);
    if (a == NULL) {
        return NULL;
    }

    ngx_queue_init(&a->waiters);
    a->len = key->len;
    ngx_memcpy(a->key, key->data, key->len);
    a->checked = ngx_current_msec;

    ngx_queue_insert_tail(&z->sh->accounts, &a->queue);

    return a;
}


static void
ngx_http_qcc_guard_wait_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_event_t                    *wev;
    ngx_http_qcc_guard_ctx_t       *ctx;
    ngx_http_qcc_guard_zone_t      *z;
    ngx_http_qcc_guard_loc_conf_t  *glcf;

    wev = r->connection->write;

    if (wev->delayed) {
        /* not the timer: a write event while waiting */
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    ctx = ngx_http_qcc_guard_get_ctx(r, 0);
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_guard_module);

    if (ctx == NULL || ctx->state != NGX_HTTP_QCC_GUARD_WAITING) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    z = ctx->zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    rc = ngx_http_qcc_guard_take_locked(z, glcf, ctx);

    if (rc == NGX_HTTP_QCC_GUARD_WAIT
        && (ngx_msec_int_t) (ctx->deadline - ngx_current_msec) <= 0)
    {
        /* the wait is over: leave the queue */
        ngx_http_qcc_guard_release_locked(ctx);
        rc = NGX_HTTP_QCC_GUARD_BUSY;
    }

    if (rc == NGX_HTTP_QCC_GUARD_BUSY) {
        z->sh->refused++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    ctx->waited = ngx_current_msec - ctx->wait_start;

    switch (rc) {

    case NGX_HTTP_QCC_GUARD_TAKEN:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "qcc guard: batch slot taken after %M ms",
                       ctx->waited);

        if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;

    case NGX_HTTP_QCC_GUARD_WAIT:
        wev->delayed = 1;
        ngx_add_timer(wev, ngx_min((ngx_msec_t) (ctx->deadline
                                                 - ngx_current_msec),
                                   NGX_HTTP_QCC_GUARD_POLL));
        return;

    default: /* BUSY */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "qcc: batch-assignment call waited %M ms for a slot, "
                      "refused", glcf->wait);

        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        (void) ngx_http_qcc_guard_busy(r);    /* finalizes the request */
        return;
    }
}


/*
 * The pool cleanup: the request's slot or place in the queue is given
 * back.  Also called, with the mutex held, when a wait ends unserved.
 */

static void
ngx_http_qcc_guard_release_locked(ngx_http_qcc_guard_ctx_t *ctx)
{
    ngx_queue_t                   *q;
    ngx_http_qcc_guard_zone_t     *z;
    ngx_http_qcc_guard_waiter_t   *w;
    ngx_http_qcc_guard_account_t  *a;

    z = ctx->zone->data;
    a = ctx->account;

    if (ctx->state == NGX_HTTP_QCC_GUARD_ADMITTED) {
        if (a->slots[ctx->slot].id == ctx->slot_id) {
            a->slots[ctx->slot].id = 0;
            a->active--;
        }

    } else if (ctx->state == NGX_HTTP_QCC_GUARD_WAITING) {

        for (q = ngx_queue_head(&a->waiters);
             q != ngx_queue_sentinel(&a->waiters);
             q = ngx_queue_next(q))
        {
            w = ngx_queue_data(q, ngx_http_qcc_guard_waiter_t, queue);

            if (w->id == ctx->waiter) {
                ngx_queue_remove(q);
                ngx_slab_free_locked(z->shpool, w);
                a->nwaiters--;
                break;
            }
        }
    }

    ctx->state = NGX_HTTP_QCC_GUARD_NONE;
    ctx->waiter = 0;
}


static void
ngx_http_qcc_guard_cleanup(void *data)
{
    ngx_http_qcc_guard_ctx_t *ctx = data;

    ngx_http_qcc_guard_zone_t  *z;

    if (ctx->zone == NULL || ctx->state == NGX_HTTP_QCC_GUARD_NONE) {
        return;
    }

    z = ctx->zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);
    ngx_http_qcc_guard_release_locked(ctx);
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* --- answers -------------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_guard_refuse(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    u_char     *copy;
    ngx_int_t   rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    copy = ngx_pnalloc(r->pool, len);
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(copy, body, len);

    rc = ngx_http_qcc_send_json(r, status, copy, len);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_qcc_guard_busy(ngx_http_request_t *r)
{
    static u_char  busy[] =
        "{\"status\":\"429\",\"msg\":\"gateway: too many concurrent "
        "batch-assignment calls for this account, try again\"}";

    return ngx_http_qcc_guard_refuse(r, NGX_HTTP_TOO_MANY_REQUESTS, busy,
                                     sizeof(busy) - 1);
}


/*
 * The claim of a request; after an internal redirect (which clears
 * module contexts) it is found again through the pool cleanup, so that
 * one request never holds two slots.
 */

static ngx_http_qcc_guard_ctx_t *
ngx_http_qcc_guard_get_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_qcc_guard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_guard_module);

    if (ctx) {
        return ctx;
    }

    if (r->internal) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_qcc_guard_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_qcc_guard_module);
                return ctx;
            }
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_qcc_guard_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_qcc_guard_ctx_t));
    ctx->request = r;

    cln->handler = ngx_http_qcc_guard_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_qcc_guard_module);

    return ctx;
}


/* --- link rewriting in JSON answers --------------------------------------- */

static ngx_int_t
ngx_http_qcc_guard_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                      *ct;
    ngx_http_qcc_guard_ctx_t       *ctx;
    ngx_http_qcc_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_guard_module);

    if (glcf->rewrite.len == 0
        || r != r->main
        || r->header_only
        || r->headers_out.status != NGX_HTTP_OK
        || (r->headers_out.content_encoding
            && r->headers_out.content_encoding->value.len))
    {
        return ngx_http_next_header_filter(r);
    }

    ct = &r->headers_out.content_type;

    if (!((ct->len >= sizeof("application/json") - 1
           && ngx_strncasecmp(ct->data, (u_char *) "application/json",
                              sizeof("application/json") - 1) == 0)
          || (ct->len >= sizeof("text/json") - 1
              && ngx_strncasecmp(ct->data, (u_char *) "text/json",
                                 sizeof("text/json") - 1) == 0)))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_qcc_guard_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->rewrite = 1;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_weak_etag(r);

    return ngx_http_next_header_filter(r);
}


/*
 * The answer is gathered whole (QCC's JSON answers are small), then the
 * links are rewritten and it is sent as one buffer.  One larger than
 * NGX_HTTP_QCC_GUARD_REWRITE_MAX goes on unchanged.
 */

static ngx_int_t
ngx_http_qcc_guard_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    u_char                    *p;
    off_t                      size;
    size_t                     need;
    ssize_t                    n;
    ngx_buf_t                 *b;
    ngx_uint_t                 last;
    ngx_chain_t               *cl;
    ngx_http_qcc_guard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_guard_module);

    if (ctx == NULL || !ctx->rewrite || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (ctx->acc_len + size > NGX_HTTP_QCC_GUARD_REWRITE_MAX) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "qcc: JSON answer larger than %uz bytes, links "
                          "not rewritten", (size_t)
                          NGX_HTTP_QCC_GUARD_REWRITE_MAX);

            /* what was gathered, then this chain as it is */
            ctx->rewrite = 0;

            if (ctx->acc_len
                && ngx_http_qcc_guard_rewrite_send(r, ctx, 0) == NGX_ERROR)
            {
                return NGX_ERROR;
            }

            return ngx_http_next_body_filter(r, cl);
        }

        need = ctx->acc_len + (size_t) size;

        if (need > ctx->acc_size) {
            ctx->acc_size = ngx_max(need, 2 * ctx->acc_size);
            ctx->acc_size = ngx_max(ctx->acc_size, 4096);

            p = ngx_pnalloc(r->pool, ctx->acc_size);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (ctx->acc_len) {
                ngx_memcpy(p, ctx->acc, ctx->acc_len);
            }

            ctx->acc = p;
        }

        if (ngx_buf_in_memory(b)) {
            ngx_memcpy(ctx->acc + ctx->acc_len, b->pos, size);
            b->pos = b->last;

        } else if (b->in_file) {
            n = ngx_read_file(b->file, ctx->acc + ctx->acc_len, size,
                              b->file_pos);
            if (n != size) {
                return NGX_ERROR;
            }

            b->file_pos = b->file_last;
        }

        if (b->in_file) {
            b->file_pos = b->file_last;
        }

        ctx->acc_len += size;

        if (b->last_buf) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    return ngx_http_qcc_guard_rewrite_send(r, ctx, 1);
}


/* Sends what was gathered, rewritten when ctx->rewrite is still on. */

static ngx_int_t
ngx_http_qcc_guard_rewrite_send(ngx_http_request_t *r,
    ngx_http_qcc_guard_ctx_t *ctx, ngx_uint_t last)
{
    u_char                   *out;
    size_t                    len, links;
    ngx_buf_t                *b;
    ngx_chain_t               cl;
    ngx_http_qcc_loc_conf_t  *qlcf;
    ngx_http_qcc_guard_loc_conf_t  *glcf;

    out = ctx->acc;
    len = ctx->acc_len;
    links = 0;

    if (ctx->rewrite && len) {
        qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);
        glcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_guard_module);

        len = qcc_guard_rewrite_links(ctx->acc, ctx->acc_len,
                                      qlcf->download_hosts->elts,
                                      qlcf->download_hosts->nelts,
                                      glcf->rewrite.data, glcf->rewrite.len,
                                      NULL, &links);

        if (links) {
            out = ngx_pnalloc(r->pool, len);
            if (out == NULL) {
                return NGX_ERROR;
            }

            (void) qcc_guard_rewrite_links(ctx->acc, ctx->acc_len,
                                           qlcf->download_hosts->elts,
                                           qlcf->download_hosts->nelts,
                                           glcf->rewrite.data,
                                           glcf->rewrite.len, out, NULL);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "qcc guard: %uz links rewritten", links);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (len) {
        b->pos = out;
        b->last = out + len;
        b->memory = 1;
    }

    b->last_buf = last;
    b->flush = !last;

    ctx->acc_len = 0;

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_next_body_filter(r, &cl);
}


/* --- configuration -------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_guard_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_qcc_guard_zone_t *ozone = data;

    size_t                      len;
    ngx_http_qcc_guard_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool,
                               sizeof(ngx_http_qcc_guard_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    /* exhaustion is handled: a 429 and one error line, not a crit */
    zone->shpool->log_nomem = 0;

    ngx_queue_init(&zone->sh->accounts);

    len = sizeof(" in qcc_batch_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in qcc_batch_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


/* qcc_batch_zone zone=NAME:SIZE; */

static char *
ngx_http_qcc_guard_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                     size;
    ngx_str_t                  *value, name;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_qcc_guard_zone_t  *zone;

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* a zone without a name is refused here, before its size */
    if (value[1].len > 5 && value[1].data[5] == ':') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_qcc_parse_zone(cf, &value[1], &name, &size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_guard_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_qcc_guard_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_qcc_guard_init_zone;
    shm_zone->data = zone;

    return NGX_CONF_OK;
}


/*
 * qcc_batch_limit zone=NAME [concurrency=5] [queue=10] [wait=2s];
 * qcc_batch_limit off;
 */

static char *
ngx_http_qcc_guard_limit_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_qcc_guard_loc_conf_t *glcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (glcf->limit_set) {
        return "is duplicate";
    }

    glcf->limit_set = 1;

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        glcf->zone = NULL;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.len = value[i].len - 5;
            s.data = value[i].data + 5;

            glcf->zone = ngx_shared_memory_add(cf, &s, 0,
                                               &ngx_http_qcc_guard_module);
            if (glcf->zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "concurrency=", 12) == 0) {
            n = ngx_atoi(value[i].data + 12, value[i].len - 12);

            if (n <= 0 || n > NGX_HTTP_QCC_GUARD_SLOTS_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid concurrency \"%V\", it must be "
                                   "1 to %d", &value[i],
                                   NGX_HTTP_QCC_GUARD_SLOTS_MAX);
                return NGX_CONF_ERROR;
            }

            glcf->concurrency = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n == NGX_ERROR || n > 10000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid queue \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            glcf->queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "wait=", 5) == 0) {
            s.len = value[i].len - 5;
            s.data = value[i].data + 5;

            glcf->wait = ngx_parse_time(&s, 0);

            if (glcf->wait == (ngx_msec_t) NGX_ERROR
                || glcf->wait > 60000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid wait \"%V\", it must be at "
                                   "most 60s", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (glcf->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_qcc_guard_files_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_qcc_guard_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->files != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->named || clcf->exact_match
#if (NGX_PCRE)
        || clcf->regex
#endif
        || clcf->name.len == 0 || clcf->name.data[clcf->name.len - 1] != '/')
    {
        return "must be in a prefix location ending with \"/\", "
               "like \"location /qcc/files/\"";
    }

    glcf->files = 1;

    return NGX_CONF_OK;
}


/* qcc_files_rewrite PREFIX | off; */

static char *
ngx_http_qcc_guard_rewrite_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_qcc_guard_loc_conf_t *glcf = conf;

    ngx_str_t  *value;

    if (glcf->rewrite_set) {
        return "is duplicate";
    }

    glcf->rewrite_set = 1;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    if (!qcc_guard_prefix_valid(value[1].data, value[1].len)
        || value[1].data[value[1].len - 1] != '/')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid prefix \"%V\": it must end with \"/\" "
                           "and hold no quote, backslash or control "
                           "character", &value[1]);
        return NGX_CONF_ERROR;
    }

    glcf->rewrite = value[1];

    return NGX_CONF_OK;
}


static void *
ngx_http_qcc_guard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_qcc_guard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_guard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->zone = NULL;
     *     conf->limit_set = 0;
     */

    conf->guard = NGX_CONF_UNSET;
    conf->max_keywords = NGX_CONF_UNSET_UINT;
    conf->max_login_names = NGX_CONF_UNSET_UINT;
    conf->max_page_size = NGX_CONF_UNSET_UINT;
    conf->concurrency = NGX_CONF_UNSET_UINT;
    conf->queue = NGX_CONF_UNSET_UINT;
    conf->wait = NGX_CONF_UNSET_MSEC;
    conf->files = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_qcc_guard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_qcc_guard_loc_conf_t *prev = parent;
    ngx_http_qcc_guard_loc_conf_t *conf = child;

    ngx_http_qcc_loc_conf_t  *qlcf;

    ngx_conf_merge_value(conf->guard, prev->guard, 0);
    ngx_conf_merge_uint_value(conf->max_keywords, prev->max_keywords,
                              QCC_GUARD_MAX_KEYWORDS);
    ngx_conf_merge_uint_value(conf->max_login_names, prev->max_login_names,
                              QCC_GUARD_MAX_LOGIN_NAMES);
    ngx_conf_merge_uint_value(conf->max_page_size, prev->max_page_size,
                              QCC_GUARD_MAX_PAGE_SIZE);

    if (!conf->limit_set) {
        conf->limit_set = prev->limit_set;
        conf->zone = prev->zone;
    }

    ngx_conf_merge_uint_value(conf->concurrency, prev->concurrency, 5);
    ngx_conf_merge_uint_value(conf->queue, prev->queue, 10);
    ngx_conf_merge_msec_value(conf->wait, prev->wait, 2000);

    if (conf->wait == 0) {
        conf->queue = 0;
    }

    if (!conf->rewrite_set) {
        conf->rewrite = prev->rewrite;
    }

    /* the files route is of its location only */
    if (conf->files == NGX_CONF_UNSET) {
        conf->files = 0;
    }

    if (conf->files) {
        /* the qcc module's configuration of this location is merged */
        qlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_qcc_module);

        if (qlcf->sign) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"qcc_files\" cannot be used with "
                               "\"qcc_sign on\": downloads never carry QCC "
                               "credentials; add \"qcc_sign off;\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_guard_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_qcc_add_variables(cf, ngx_http_qcc_guard_vars);
}


static ngx_int_t
ngx_http_qcc_guard_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Precontent, like the signing: after every access check.  This
     * module comes after ngx_http_qcc_module, so its handler is added
     * later and runs first: refused calls are never signed.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_qcc_guard_handler;

    /*
     * The link rewriting filter: added after nginx's own filters, so it
     * sees the answer before gzip and chunked encoding do.
     */

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_qcc_guard_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_qcc_guard_body_filter;

    return NGX_OK;
}
