/*
 * ngx_http_qcc_metrics_module: what an operator watches.
 *
 *   qcc_metrics on | off;                                  http, srv, loc
 *
 * Where it is on, each request is counted when it ends (the log phase),
 * with atomic additions and no lock, in a shared zone of fixed size named
 * "qcc_metrics": by API family (radar_ext, yj, rpt, dd_risk_mnr,
 * dd_corp_monitor, other) and HTTP status; by the QCC business status of
 * the answer; the upstream response time as a histogram.  The callback,
 * driver and status locations have counters of their own and are not
 * counted here.  On every signed answer that came from QCC (not from a
 * cache), in requests and subrequests alike (the fetcher's and the
 * reconciler's calls), the offset of QCC's Date header from the local
 * clock is kept.
 *
 * The business status is read by a body filter with the policy module's
 * streaming scanner (qcc_policy_scan(), src/qcc_policy.c) from the first
 * bytes of each answer of a signed location as they pass; nothing is
 * buffered.  It is also $qcc_status, with or without qcc_metrics; where
 * neither asks for it, answers are not scanned.
 *
 * $qcc_feed and $qcc_order_no name the order of a callback or driver
 * request, from its arguments.
 *
 * The status endpoint's Prometheus output (ngx_http_qcc_status.c) calls
 * ngx_http_qcc_metrics_status(), which adds these metrics and, from the
 * queue zone, the push-to-delivered histogram and delivery counters.
 */

#include "ngx_http_qcc_metrics.h"
#include "qcc_policy.h"


#define NGX_HTTP_QCC_METRICS_FAMILIES  6      /* "other" last */
#define NGX_HTTP_QCC_METRICS_OTHER     (NGX_HTTP_QCC_METRICS_FAMILIES - 1)

/* HTTP status 100 .. 599 by value, then one slot for anything else */
#define NGX_HTTP_QCC_METRICS_CODE_MIN  100
#define NGX_HTTP_QCC_METRICS_CODE_MAX  599
#define NGX_HTTP_QCC_METRICS_CODES                                           \
    (NGX_HTTP_QCC_METRICS_CODE_MAX - NGX_HTTP_QCC_METRICS_CODE_MIN + 2)

#define NGX_HTTP_QCC_METRICS_BUCKETS   10     /* +Inf not included */

/* a Prometheus line at most, labels included */
#define NGX_HTTP_QCC_METRICS_LINE      160


typedef struct {
    ngx_atomic_t                    calls[NGX_HTTP_QCC_METRICS_FAMILIES]
                                         [NGX_HTTP_QCC_METRICS_CODES];
    ngx_atomic_t                    business[NGX_HTTP_QCC_METRICS_FAMILIES]
                                            [QCC_POLICY_CODES];
    ngx_atomic_t                    latency[NGX_HTTP_QCC_METRICS_FAMILIES]
                                           [NGX_HTTP_QCC_METRICS_BUCKETS + 1];
    ngx_atomic_t                    latency_ms[NGX_HTTP_QCC_METRICS_FAMILIES];
    ngx_atomic_t                    clock_offset;  /* signed seconds */
    ngx_atomic_t                    clock_time;    /* when measured */
} ngx_http_qcc_metrics_sh_t;


typedef struct {
    ngx_shm_zone_t                 *zone;          /* NULL: never on */
    ngx_flag_t                      status_used;   /* $qcc_status named */
} ngx_http_qcc_metrics_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
} ngx_http_qcc_metrics_loc_conf_t;


typedef struct {
    qcc_policy_scan_t               scan;
    unsigned                        scanning:1;
} ngx_http_qcc_metrics_ctx_t;


static ngx_int_t ngx_http_qcc_metrics_log_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_qcc_metrics_family(ngx_http_request_t *r);
static ngx_uint_t ngx_http_qcc_metrics_bucket(const ngx_uint_t *bounds,
    ngx_uint_t value);
static int ngx_http_qcc_metrics_business(ngx_http_request_t *r);
static void ngx_http_qcc_metrics_clock(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_metrics_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_metrics_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static u_char *ngx_http_qcc_metrics_histogram(u_char *p, const char *name,
    const char *label, ngx_str_t *value, const char **le,
    const ngx_uint_t *counts, ngx_uint_t sum_ms);
static u_char *ngx_http_qcc_metrics_prom(u_char *p,
    ngx_http_qcc_metrics_sh_t *m);
static u_char *ngx_http_qcc_metrics_prom_queue(u_char *p,
    ngx_http_qcc_queue_t *q);
static ngx_int_t ngx_http_qcc_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_qcc_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_qcc_metrics_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_qcc_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_qcc_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_qcc_metrics_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_metrics_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_qcc_feed_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_qcc_order_no_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_command_t  ngx_http_qcc_metrics_commands[] = {

    { ngx_string("qcc_metrics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_qcc_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_metrics_loc_conf_t, enable),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_qcc_metrics_module_ctx = {
    ngx_http_qcc_metrics_preconfiguration,   /* preconfiguration */
    ngx_http_qcc_metrics_postconfiguration,  /* postconfiguration */

    ngx_http_qcc_metrics_create_main_conf,   /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_qcc_metrics_create_loc_conf,    /* create location conf */
    ngx_http_qcc_metrics_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_qcc_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_qcc_metrics_module_ctx,      /* module context */
    ngx_http_qcc_metrics_commands,         /* module directives */
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


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_str_t  ngx_http_qcc_metrics_zone_name = ngx_string("qcc_metrics");


/* the API families: the path segments after "/api/", as the documents */
static qcc_policy_str_t  ngx_http_qcc_metrics_families[] = {
    { (const unsigned char *) "radar_ext", 9 },
    { (const unsigned char *) "yj", 2 },
    { (const unsigned char *) "rpt", 3 },
    { (const unsigned char *) "dd_risk_mnr", 11 },
    { (const unsigned char *) "dd_corp_monitor", 15 },
};

static ngx_str_t  ngx_http_qcc_metrics_family_names[] = {
    ngx_string("radar_ext"),
    ngx_string("yj"),
    ngx_string("rpt"),
    ngx_string("dd_risk_mnr"),
    ngx_string("dd_corp_monitor"),
    ngx_string("other")
};


/* upper bounds of the upstream response time buckets, milliseconds */
static const ngx_uint_t  ngx_http_qcc_latency_bounds[] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};

static const char  *ngx_http_qcc_latency_le[] = {
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"
};

/* upper bounds of the push-to-delivered buckets, seconds */
static const ngx_uint_t  ngx_http_qcc_delivery_bounds[] = {
    1, 5, 15, 60, 300, 900, 1800, 3600, 14400, 86400
};

static const char  *ngx_http_qcc_delivery_le[] = {
    "1", "5", "15", "60", "300", "900", "1800", "3600", "14400", "86400",
    "+Inf"
};


static ngx_http_variable_t  ngx_http_qcc_metrics_vars[] = {

    { ngx_string("qcc_status"), NULL, ngx_http_qcc_status_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("qcc_feed"), NULL, ngx_http_qcc_feed_variable,
      0, 0, 0 },

    { ngx_string("qcc_order_no"), NULL, ngx_http_qcc_order_no_variable,
      0, 0, 0 },

      ngx_http_null_variable
};


/* --- counting ------------------------------------------------------------ */

static ngx_int_t
ngx_http_qcc_metrics_log_handler(ngx_http_request_t *r)
{
    int                                status;
    ngx_uint_t                         f, code, ms, i;
    ngx_http_upstream_t               *u;
    ngx_http_qcc_loc_conf_t           *qlcf;
    ngx_http_upstream_state_t         *state;
    ngx_http_qcc_metrics_sh_t         *m;
    ngx_http_qcc_metrics_loc_conf_t   *mlcf;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_metrics_module);

    if (!mlcf->enable) {
        return NGX_OK;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_metrics_module);

    if (mmcf->zone == NULL || mmcf->zone->data == NULL) {
        return NGX_OK;
    }

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    /* these have counters of their own */
    if (qlcf->status || qlcf->fetch
        || qlcf->callback != NGX_HTTP_QCC_FEED_NONE)
    {
        return NGX_OK;
    }

    m = mmcf->zone->data;
    f = ngx_http_qcc_metrics_family(r);

    code = r->err_status ? r->err_status : r->headers_out.status;

    if (code >= NGX_HTTP_QCC_METRICS_CODE_MIN
        && code <= NGX_HTTP_QCC_METRICS_CODE_MAX)
    {
        code -= NGX_HTTP_QCC_METRICS_CODE_MIN;

    } else {
        code = NGX_HTTP_QCC_METRICS_CODES - 1;
    }

    (void) ngx_atomic_fetch_add(&m->calls[f][code], 1);

    status = ngx_http_qcc_metrics_business(r);

    if (status != -2) {
        (void) ngx_atomic_fetch_add(
                          &m->business[f][qcc_policy_code_index(status)], 1);
    }

    u = r->upstream;

    if (u == NULL || r->upstream_states == NULL
        || r->upstream_states->nelts == 0)
    {
        return NGX_OK;
    }

    ms = 0;
    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (state[i].status) {
            ms += state[i].response_time;
        }
    }

    (void) ngx_atomic_fetch_add(
             &m->latency[f][ngx_http_qcc_metrics_bucket(
                                ngx_http_qcc_latency_bounds, ms)], 1);
    (void) ngx_atomic_fetch_add(&m->latency_ms[f], ms);

    return NGX_OK;
}


/*
 * QCC's clock, from the Date header of a signed answer it has just sent
 * (not one from a cache): in any request or subrequest of a signed
 * location, so that the fetcher's and reconciler's calls count too.
 */

static void
ngx_http_qcc_metrics_clock(ngx_http_request_t *r)
{
    time_t                             date, now;
    ngx_table_elt_t                   *h;
    ngx_http_qcc_metrics_sh_t         *m;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    h = r->upstream->headers_in.date;

    if (h == NULL || r->cached) {
        return;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_metrics_module);

    if (mmcf->zone == NULL || mmcf->zone->data == NULL) {
        return;
    }

    date = ngx_parse_http_time(h->value.data, h->value.len);

    if (date == NGX_ERROR) {
        return;
    }

    m = mmcf->zone->data;
    now = ngx_time();

    m->clock_offset = (ngx_atomic_uint_t) (date - now);
    m->clock_time = (ngx_atomic_uint_t) now;
}


static ngx_uint_t
ngx_http_qcc_metrics_family(ngx_http_request_t *r)
{
    int  f;

    f = qcc_policy_family(r->uri.data, r->uri.len,
                          ngx_http_qcc_metrics_families,
                          NGX_HTTP_QCC_METRICS_OTHER);

    return (f == QCC_POLICY_NOMATCH) ? NGX_HTTP_QCC_METRICS_OTHER
                                     : (ngx_uint_t) f;
}


/* the first bucket whose bound the value does not exceed, or +Inf */

static ngx_uint_t
ngx_http_qcc_metrics_bucket(const ngx_uint_t *bounds, ngx_uint_t value)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_QCC_METRICS_BUCKETS; i++) {
        if (value <= bounds[i]) {
            return i;
        }
    }

    return NGX_HTTP_QCC_METRICS_BUCKETS;
}


/*
 * The business status of the request's answer: the code, -1 when the
 * answer was looked at and has none, -2 when it was not looked at.  The
 * scan is not ended, so that this may be asked before the answer is.
 */

static int
ngx_http_qcc_metrics_business(ngx_http_request_t *r)
{
    qcc_policy_scan_t            scan;
    ngx_http_qcc_metrics_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_metrics_module);

    if (ctx == NULL || !ctx->scanning) {
        return -2;
    }

    if (ctx->scan.done) {
        return ctx->scan.status;
    }

    scan = ctx->scan;

    return qcc_policy_scan_end(&scan);
}


/* --- the business status of answers ------------------------------------- */

static ngx_int_t
ngx_http_qcc_metrics_header_filter(ngx_http_request_t *r)
{
    ngx_http_qcc_loc_conf_t           *qlcf;
    ngx_http_qcc_metrics_ctx_t        *ctx;
    ngx_http_qcc_metrics_loc_conf_t   *mlcf;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    if (r->upstream == NULL) {
        return ngx_http_next_header_filter(r);
    }

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    if (!qlcf->sign) {
        return ngx_http_next_header_filter(r);
    }

    ngx_http_qcc_metrics_clock(r);

    if (r != r->main || r->headers_out.content_encoding != NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* the body is scanned only for someone who asks for its status */

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_metrics_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_metrics_module);

    if (!mlcf->enable && !mmcf->status_used) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_metrics_module);

    if (ctx == NULL) {
        ctx = ngx_palloc(r->pool, sizeof(ngx_http_qcc_metrics_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_qcc_metrics_module);
    }

    qcc_policy_scan_init(&ctx->scan);
    ctx->scanning = 1;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_qcc_metrics_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                   *b;
    ngx_chain_t                 *cl;
    ngx_http_qcc_metrics_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_metrics_module);

    if (ctx && ctx->scanning && !ctx->scan.done) {

        for (cl = in; cl && !ctx->scan.done; cl = cl->next) {
            b = cl->buf;

            if (!ngx_buf_in_memory(b)) {
                if (ngx_buf_size(b)) {
                    /* a buffer on disk: the status is not looked for */
                    ctx->scan.done = 1;
                }

                continue;
            }

            (void) qcc_policy_scan(&ctx->scan, b->pos, b->last - b->pos);
        }
    }

    return ngx_http_next_body_filter(r, in);
}


/* --- the queue zone: push to delivered --------------------------------- */

void
ngx_http_qcc_metrics_delivered_locked(ngx_http_qcc_shctx_t *sh,
    ngx_uint_t feed, time_t seconds)
{
    if (feed >= NGX_HTTP_QCC_FEEDS) {
        return;
    }

    if (seconds < 0) {
        seconds = 0;
    }

    sh->delivery[feed][ngx_http_qcc_metrics_bucket(
                           ngx_http_qcc_delivery_bounds,
                           (ngx_uint_t) seconds)]++;
    sh->delivery_sum[feed] += seconds;
}


/* --- the status endpoint ------------------------------------------------ */

ngx_buf_t *
ngx_http_qcc_metrics_status(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t prometheus)
{
    size_t                             size;
    ngx_buf_t                         *nb;
    ngx_uint_t                         f, c, n;
    ngx_http_qcc_queue_t              *q;
    ngx_http_qcc_metrics_sh_t         *m;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    if (!prometheus) {
        return b;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_metrics_module);
    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    m = NULL;
    n = 0;

    if (mmcf->zone && mmcf->zone->data) {

        /* a copy, so that what is written is what was sized */

        m = ngx_palloc(r->pool, sizeof(ngx_http_qcc_metrics_sh_t));
        if (m == NULL) {
            return NULL;
        }

        ngx_memcpy(m, mmcf->zone->data, sizeof(ngx_http_qcc_metrics_sh_t));

        for (f = 0; f < NGX_HTTP_QCC_METRICS_FAMILIES; f++) {
            for (c = 0; c < NGX_HTTP_QCC_METRICS_CODES; c++) {
                n += (m->calls[f][c] != 0);
            }

            for (c = 0; c < QCC_POLICY_CODES; c++) {
                n += (m->business[f][c] != 0);
            }

            n += NGX_HTTP_QCC_METRICS_BUCKETS + 3;
        }
    }

    if (q) {
        n += NGX_HTTP_QCC_FEEDS * (NGX_HTTP_QCC_DELIVERY_BUCKETS + 3 + 4);
    }

    if (m == NULL && q == NULL) {
        return b;
    }

    size = (b->last - b->pos) + 4096 + n * NGX_HTTP_QCC_METRICS_LINE;

    nb = ngx_create_temp_buf(r->pool, size);
    if (nb == NULL) {
        return NULL;
    }

    nb->last = ngx_cpymem(nb->last, b->pos, b->last - b->pos);

    if (m) {
        nb->last = ngx_http_qcc_metrics_prom(nb->last, m);
    }

    if (q) {
        nb->last = ngx_http_qcc_metrics_prom_queue(nb->last, q);
    }

    return nb;
}


static u_char *
ngx_http_qcc_metrics_prom(u_char *p, ngx_http_qcc_metrics_sh_t *m)
{
    int         code;
    ngx_uint_t  f, c, counts[NGX_HTTP_QCC_METRICS_BUCKETS + 1];

    p = ngx_sprintf(p,
              "# HELP qcc_calls_total Requests of the gateway's QCC "
              "locations, by API family and HTTP status.\n"
              "# TYPE qcc_calls_total counter\n");

    for (f = 0; f < NGX_HTTP_QCC_METRICS_FAMILIES; f++) {
        for (c = 0; c < NGX_HTTP_QCC_METRICS_CODES; c++) {
            if (m->calls[f][c] == 0) {
                continue;
            }

            if (c == NGX_HTTP_QCC_METRICS_CODES - 1) {
                p = ngx_sprintf(p,
                                "qcc_calls_total{family=\"%V\",code=\"000\"}"
                                " %uA\n",
                                &ngx_http_qcc_metrics_family_names[f],
                                m->calls[f][c]);
                continue;
            }

            p = ngx_sprintf(p, "qcc_calls_total{family=\"%V\",code=\"%ui\"}"
                               " %uA\n",
                            &ngx_http_qcc_metrics_family_names[f],
                            c + NGX_HTTP_QCC_METRICS_CODE_MIN,
                            m->calls[f][c]);
        }
    }

    p = ngx_sprintf(p,
              "# HELP qcc_business_status_total QCC's business status "
              "codes in answers, by API family (other: not a documented "
              "code, none: no status found).\n"
              "# TYPE qcc_business_status_total counter\n");

    for (f = 0; f < NGX_HTTP_QCC_METRICS_FAMILIES; f++) {
        for (c = 0; c < QCC_POLICY_CODES; c++) {
            if (m->business[f][c] == 0) {
                continue;
            }

            p = ngx_sprintf(p, "qcc_business_status_total{family=\"%V\","
                               "status=\"",
                            &ngx_http_qcc_metrics_family_names[f]);

            code = qcc_policy_code_value((int) c);

            if (code >= 0) {
                p = ngx_sprintf(p, "%d", code);

            } else if (c == QCC_POLICY_CODE_OTHER) {
                p = ngx_cpymem(p, "other", 5);

            } else {
                p = ngx_cpymem(p, "none", 4);
            }

            p = ngx_sprintf(p, "\"} %uA\n", m->business[f][c]);
        }
    }

    p = ngx_sprintf(p,
              "# HELP qcc_upstream_response_seconds Time QCC took to "
              "answer a request (all tries), by API family.\n"
              "# TYPE qcc_upstream_response_seconds histogram\n");

    for (f = 0; f < NGX_HTTP_QCC_METRICS_FAMILIES; f++) {
        for (c = 0; c <= NGX_HTTP_QCC_METRICS_BUCKETS; c++) {
            counts[c] = m->latency[f][c];
        }

        p = ngx_http_qcc_metrics_histogram(p,
                                       "qcc_upstream_response_seconds",
                                       "family",
                                       &ngx_http_qcc_metrics_family_names[f],
                                       ngx_http_qcc_latency_le, counts,
                                       m->latency_ms[f]);
    }

    p = ngx_sprintf(p,
              "# HELP qcc_clock_offset_seconds QCC's Date header minus "
              "the local clock, at the last signed answer (QCC refuses "
              "Timespans too far from its clock with 107).\n"
              "# TYPE qcc_clock_offset_seconds gauge\n"
              "qcc_clock_offset_seconds %A\n"
              "# HELP qcc_clock_offset_timestamp_seconds When the clock "
              "offset was last measured (0: never).\n"
              "# TYPE qcc_clock_offset_timestamp_seconds gauge\n"
              "qcc_clock_offset_timestamp_seconds %uA\n",
              (ngx_atomic_int_t) m->clock_offset, m->clock_time);

    return p;
}


static u_char *
ngx_http_qcc_metrics_prom_queue(u_char *p, ngx_http_qcc_queue_t *q)
{
    uint64_t    sum[NGX_HTTP_QCC_FEEDS];
    ngx_uint_t  f, c, counts[NGX_HTTP_QCC_FEEDS]
                             [NGX_HTTP_QCC_DELIVERY_BUCKETS + 1];

    ngx_shmtx_lock(&q->shpool->mutex);

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        for (c = 0; c <= NGX_HTTP_QCC_DELIVERY_BUCKETS; c++) {
            counts[f][c] = q->sh->delivery[f][c];
        }

        sum[f] = q->sh->delivery_sum[f];
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    p = ngx_sprintf(p,
              "# HELP qcc_delivery_seconds Time from an order's push "
              "callback to its delivery, by feed.\n"
              "# TYPE qcc_delivery_seconds histogram\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        p = ngx_http_qcc_metrics_histogram(p, "qcc_delivery_seconds", "feed",
                                           &ngx_http_qcc_feed_names[f],
                                           ngx_http_qcc_delivery_le,
                                           counts[f],
                                           (ngx_uint_t) sum[f] * 1000);
    }

#define NGX_HTTP_QCC_METRICS_FEED_COUNTER(name, help, field)                 \
    p = ngx_sprintf(p, "# HELP " name " " help "\n"                          \
                       "# TYPE " name " counter\n");                          \
    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {                               \
        p = ngx_sprintf(p, name "{feed=\"%V\"} %uA\n",                        \
                        &ngx_http_qcc_feed_names[f], q->sh->field[f]);        \
    }

    NGX_HTTP_QCC_METRICS_FEED_COUNTER("qcc_orders_delivered_total",
        "Orders delivered, by feed.", delivered_total)
    NGX_HTTP_QCC_METRICS_FEED_COUNTER("qcc_orders_failed_total",
        "Orders given up (retries or deadline exhausted), by feed.",
        failed_total)
    NGX_HTTP_QCC_METRICS_FEED_COUNTER("qcc_order_retries_total",
        "Attempts of orders that will be retried, by feed.", retries_total)
    NGX_HTTP_QCC_METRICS_FEED_COUNTER("qcc_link_refreshes_total",
        "Download links renewed through the signed pull call, by feed.",
        refreshes_total)

#undef NGX_HTTP_QCC_METRICS_FEED_COUNTER

    return p;
}


/* one series of a histogram: cumulative buckets, sum and count */

static u_char *
ngx_http_qcc_metrics_histogram(u_char *p, const char *name,
    const char *label, ngx_str_t *value, const char **le,
    const ngx_uint_t *counts, ngx_uint_t sum_ms)
{
    ngx_uint_t  i, total;

    total = 0;

    for (i = 0; i <= NGX_HTTP_QCC_METRICS_BUCKETS; i++) {
        total += counts[i];
        p = ngx_sprintf(p, "%s_bucket{%s=\"%V\",le=\"%s\"} %ui\n",
                        name, label, value, le[i], total);
    }

    return ngx_sprintf(p, "%s_sum{%s=\"%V\"} %ui.%03ui\n"
                          "%s_count{%s=\"%V\"} %ui\n",
                       name, label, value, sum_ms / 1000, sum_ms % 1000,
                       name, label, value, total);
}


/* --- variables ----------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    int      status;
    u_char  *p;

    status = ngx_http_qcc_metrics_business(r);

    if (status < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%d", status) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_feed_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_int_t                 feed;
    ngx_str_t                 arg;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    feed = NGX_HTTP_QCC_FEED_NONE;

    if (qlcf->callback != NGX_HTTP_QCC_FEED_NONE) {
        feed = qlcf->callback;

    } else if (qlcf->fetch
               && ngx_http_arg(r, (u_char *) "feed", 4, &arg) == NGX_OK)
    {
        feed = ngx_http_qcc_feed_index(arg.data, arg.len);
    }

    if (feed < 0 || feed >= NGX_HTTP_QCC_FEEDS) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_qcc_feed_names[feed].len;
    v->data = ngx_http_qcc_feed_names[feed].data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* the orderNo argument when it is one: letters, digits, '-', '_', '.' */

static ngx_int_t
ngx_http_qcc_order_no_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p, *dst, *src, c;
    size_t                    i, len;
    ngx_str_t                 arg;
    ngx_http_qcc_loc_conf_t  *qlcf;

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    if ((qlcf->callback == NGX_HTTP_QCC_FEED_NONE && qlcf->fetch == NULL)
        || ngx_http_arg(r, (u_char *) "orderNo", 7, &arg) != NGX_OK
        || arg.len == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, arg.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst = p;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    len = dst - p;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
              || (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.'))
        {
            break;
        }
    }

    if (len == 0 || i < len || len > QCC_CALLBACK_ORDER_NO_MAX) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = len;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* --- configuration ------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t            *shpool;
    ngx_http_qcc_metrics_sh_t  *m;

    if (data) {
        /* a reload: the counters go on */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    m = ngx_slab_alloc(shpool, sizeof(ngx_http_qcc_metrics_sh_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_qcc_metrics_sh_t));

    shpool->data = m;
    shm_zone->data = m;

    return NGX_OK;
}


/* qcc_metrics on | off: the zone is made by the first "on" */

static char *
ngx_http_qcc_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                              *rv;
    size_t                             size;
    ngx_http_qcc_metrics_loc_conf_t   *mlcf = conf;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_metrics_module);

    if (!mlcf->enable || mmcf->zone) {
        return NGX_CONF_OK;
    }

    size = ngx_align(sizeof(ngx_http_qcc_metrics_sh_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    mmcf->zone = ngx_shared_memory_add(cf, &ngx_http_qcc_metrics_zone_name,
                                       size, &ngx_http_qcc_metrics_module);
    if (mmcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mmcf->zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory zone \"%V\" is already used",
                           &ngx_http_qcc_metrics_zone_name);
        return NGX_CONF_ERROR;
    }

    mmcf->zone->init = ngx_http_qcc_metrics_init_zone;

    return NGX_CONF_OK;
}


static void *
ngx_http_qcc_metrics_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_metrics_main_conf_t));
}


static void *
ngx_http_qcc_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_qcc_metrics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_metrics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_qcc_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_qcc_metrics_loc_conf_t *prev = parent;
    ngx_http_qcc_metrics_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_metrics_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_qcc_add_variables(cf, ngx_http_qcc_metrics_vars);
}


static ngx_int_t
ngx_http_qcc_metrics_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                         i;
    ngx_http_variable_t               *v;
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_qcc_metrics_main_conf_t  *mmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_qcc_metrics_module);

    /*
     * Answers are scanned for $qcc_status only if the configuration names
     * it (log_format, set, map, ...: an indexed variable): the scan is a
     * third of what signing a request costs.
     */

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len == sizeof("qcc_status") - 1
            && ngx_strncmp(v[i].name.data, "qcc_status",
                           sizeof("qcc_status") - 1)
               == 0)
        {
            mmcf->status_used = 1;
            break;
        }
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_qcc_metrics_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_qcc_metrics_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_qcc_metrics_body_filter;

    return NGX_OK;
}
