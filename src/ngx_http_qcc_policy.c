/*
 * ngx_http_qcc_policy_module: per-app policy and cost control.
 *
 *   qcc_policy_zone zone=NAME:SIZE [budget=N] [period=TIME];     http
 *   qcc_client NAME zone=NAME families=F[,F...]|* [budget=N];    http
 *   qcc_policy NAME | off;                                       http, srv, loc
 *   qcc_client_id VALUE;                                         http, srv, loc
 *
 * The decision runs in the precontent phase, after every access check
 * (so "satisfy any" decides as without this module) and before signing.
 * An admitted call is charged at once, under the zone mutex, so that the
 * budget holds exactly across workers; when the request ends without its
 * request having been sent upstream (a proxy_cache hit, QCC unreachable,
 * a refusal by a later check) the charge is given back.  The QCC
 * business status of each answer is read by a body filter and counted
 * per client and family.
 */

#include "ngx_http_qcc_module.h"
#include "ngx_http_qcc_policy.h"
#include "qcc_policy.h"


#define NGX_HTTP_QCC_POLICY_FAMILIES   16     /* "other" included */
#define NGX_HTTP_QCC_POLICY_OTHER      0
#define NGX_HTTP_QCC_POLICY_NAME_MAX   128
#define NGX_HTTP_QCC_POLICY_NO_BUDGET  NGX_CONF_UNSET_UINT


typedef struct {
    uint64_t                        calls;     /* answered by upstream */
    uint64_t                        cached;    /* answered by the cache */
    uint64_t                        denied;    /* 403: family not allowed */
    uint32_t                        codes[QCC_POLICY_CODES];
} ngx_http_qcc_policy_usage_t;


typedef struct {
    ngx_queue_t                     queue;     /* sh->clients */
    int64_t                         day;       /* the period of used */
    ngx_uint_t                      used;      /* charged in that period */
    uint64_t                        limited;   /* 429 */
    int64_t                         warned;    /* the period of a warn */
    size_t                          name_len;
    u_char                          name[NGX_HTTP_QCC_POLICY_NAME_MAX];
    ngx_http_qcc_policy_usage_t     usage[NGX_HTTP_QCC_POLICY_FAMILIES];
} ngx_http_qcc_policy_node_t;


typedef struct {
    size_t                          len;
    u_char                          name[QCC_POLICY_FAMILY_MAX];
} ngx_http_qcc_policy_family_t;


typedef struct {
    ngx_queue_t                     clients;
    time_t                          period;
    int64_t                         day;       /* the period of used */
    ngx_uint_t                      used;      /* the account's charges */
    uint64_t                        limited;   /* 429 for the account */
    uint64_t                        anonymous; /* 401: no identity */
    uint64_t                        unknown;   /* 403: no such client */
    int64_t                         warned;    /* the period of a warn */
    ngx_uint_t                      nfamilies;
    ngx_http_qcc_policy_family_t    family[NGX_HTTP_QCC_POLICY_FAMILIES];
} ngx_http_qcc_policy_sh_t;


typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      budget;    /* or NO_BUDGET */
    uint32_t                        families;  /* a bit per family index */
    ngx_http_qcc_policy_node_t     *node;
} ngx_http_qcc_policy_client_t;


typedef struct ngx_http_qcc_policy_main_conf_s
    ngx_http_qcc_policy_main_conf_t;


typedef struct {
    ngx_str_t                       name;
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_qcc_policy_sh_t       *sh;
    ngx_slab_pool_t                *shpool;
    ngx_uint_t                      budget;    /* or NO_BUDGET */
    time_t                          period;
    ngx_array_t                     clients;   /* of ..._client_t */
    ngx_http_qcc_policy_main_conf_t  *pmcf;
    /* the zone's slot of each family of the configuration */
    ngx_uint_t                      slot[NGX_HTTP_QCC_POLICY_FAMILIES];
} ngx_http_qcc_policy_zone_t;


struct ngx_http_qcc_policy_main_conf_s {
    ngx_array_t                     zones;     /* of ..._zone_t * */
    /* family names; [0] is "other", matched by no path */
    qcc_policy_str_t                families[NGX_HTTP_QCC_POLICY_FAMILIES];
    ngx_uint_t                      nfamilies;
};


typedef struct {
    ngx_http_qcc_policy_zone_t     *zone;      /* NULL: off */
    ngx_http_complex_value_t       *client_id;
} ngx_http_qcc_policy_loc_conf_t;


/* the request's charge: also the data of its pool cleanup */
typedef struct {
    ngx_http_request_t             *request;
    ngx_http_qcc_policy_zone_t     *zone;
    ngx_http_qcc_policy_node_t     *node;       /* NULL: refused */
    ngx_str_t                       id;         /* $qcc_client */
    qcc_policy_str_t               *family;     /* $qcc_family */
    ngx_uint_t                      slot;
    int64_t                         day;
    qcc_policy_scan_t               scan;
    unsigned                        charged:1;
    unsigned                        scanning:1;
} ngx_http_qcc_policy_ctx_t;


static ngx_int_t ngx_http_qcc_policy_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_policy_refuse(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *msg, time_t retry_after);
static void ngx_http_qcc_policy_settle(void *data);
static ngx_http_qcc_policy_ctx_t *ngx_http_qcc_policy_find(
    ngx_http_request_t *r);
static void ngx_http_qcc_policy_roll_locked(ngx_http_qcc_policy_zone_t *zone,
    ngx_http_qcc_policy_node_t *node, int64_t day);
static ngx_int_t ngx_http_qcc_policy_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_policy_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_qcc_policy_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_qcc_policy_sync_locked(
    ngx_http_qcc_policy_zone_t *zone, ngx_log_t *log);
static ngx_http_qcc_policy_zone_t *ngx_http_qcc_policy_zone_by_name(
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_str_t *name);
static ngx_int_t ngx_http_qcc_policy_family_add(ngx_conf_t *cf,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_str_t *name);
static u_char *ngx_http_qcc_policy_time(u_char *p, time_t t);
static size_t ngx_http_qcc_policy_status_size_locked(
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_http_qcc_policy_zone_t *zone,
    ngx_uint_t prometheus);
static u_char *ngx_http_qcc_policy_status_json_locked(u_char *p,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_http_qcc_policy_zone_t *zone);
static u_char *ngx_http_qcc_policy_status_prom_locked(u_char *p,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_http_qcc_policy_zone_t *zone,
    ngx_uint_t m);

static char *ngx_http_qcc_policy_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_policy_client(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_qcc_policy_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_qcc_policy_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_qcc_policy_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_qcc_policy_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_policy_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_policy_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_command_t  ngx_http_qcc_policy_commands[] = {

    { ngx_string("qcc_policy_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_policy_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_client"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_qcc_policy_client,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_policy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_policy_loc_conf_t, client_id),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_qcc_policy_module_ctx = {
    ngx_http_qcc_policy_preconfiguration,  /* preconfiguration */
    ngx_http_qcc_policy_postconfiguration, /* postconfiguration */

    ngx_http_qcc_policy_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_qcc_policy_create_loc_conf,   /* create location configuration */
    ngx_http_qcc_policy_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_qcc_policy_module = {
    NGX_MODULE_V1,
    &ngx_http_qcc_policy_module_ctx,       /* module context */
    ngx_http_qcc_policy_commands,          /* module directives */
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


static ngx_http_variable_t  ngx_http_qcc_policy_vars[] = {

    { ngx_string("qcc_client"), NULL, ngx_http_qcc_policy_variable,
      0, 0, 0 },

    { ngx_string("qcc_family"), NULL, ngx_http_qcc_policy_variable,
      1, 0, 0 },

      ngx_http_null_variable
};


/* the metrics of the Prometheus section: name, type, help */

static char  *ngx_http_qcc_policy_metrics[][3] = {
    { "qcc_policy_calls_total", "counter",
      "Calls answered by QCC, by policy zone, client and API family." },
    { "qcc_policy_cached_total", "counter",
      "Calls answered from the cache, not charged." },
    { "qcc_policy_denied_total", "counter",
      "Calls refused with 403: the family is not allowed to the client." },
    { "qcc_policy_status_total", "counter",
      "QCC business status of the answers, by policy zone, client and API "
      "family (none: no status found)." },
    { "qcc_policy_limited_total", "counter",
      "Calls refused with 429: a budget was used up." },
    { "qcc_policy_used", "gauge",
      "Calls charged in the current QCC day, in flight included." },
    { "qcc_policy_budget", "gauge",
      "Daily call budget, by policy zone and client." },
    { "qcc_policy_budget_left", "gauge",
      "Calls left in the current QCC day, for clients with a budget." },
    { "qcc_policy_account_used", "gauge",
      "Calls charged to the zone (the account) in the current QCC day." },
    { "qcc_policy_account_budget_left", "gauge",
      "Calls left to the account in the current QCC day." },
    { "qcc_policy_refused_total", "counter",
      "Calls refused before any client was found: with no identity (401) "
      "or with one no qcc_client names (403)." },
    { "qcc_policy_reset_timestamp_seconds", "gauge",
      "When the current QCC day ends and the budgets start again." },
    { NULL, NULL, NULL }
};


/* the families of the five documents, known without configuration */
static char  *ngx_http_qcc_policy_builtin[] = {
    "other", "radar_ext", "yj/Report", "rpt", "dd_risk_mnr",
    "dd_corp_monitor", NULL
};


/* --- the decision ------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_policy_handler(ngx_http_request_t *r)
{
    int                               f;
    time_t                            now;
    int64_t                           day;
    ngx_str_t                         msg;
    ngx_uint_t                        i, family, level;
    ngx_pool_cleanup_t               *cln;
    ngx_http_qcc_policy_sh_t         *sh;
    ngx_http_qcc_policy_ctx_t        *ctx;
    ngx_http_qcc_policy_node_t       *node;
    ngx_http_qcc_policy_zone_t       *zone;
    ngx_http_qcc_policy_client_t     *client, *c;
    ngx_http_qcc_policy_loc_conf_t   *plcf;
    ngx_http_qcc_policy_main_conf_t  *pmcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_policy_module);
    zone = plcf->zone;

    if (zone == NULL) {
        return NGX_DECLINED;
    }

    /* one decision per request, even across internal redirects */

    if (ngx_http_get_module_ctx(r, ngx_http_qcc_policy_module)) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_qcc_policy_find(r);
    if (ctx) {
        ngx_http_set_ctx(r, ctx, ngx_http_qcc_policy_module);
        return NGX_DECLINED;
    }

    /* the cleanup first: nothing can fail between charge and cleanup */

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_qcc_policy_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_qcc_policy_ctx_t));
    ctx->request = r;
    ctx->zone = zone;
    cln->handler = ngx_http_qcc_policy_settle;

    ngx_http_set_ctx(r, ctx, ngx_http_qcc_policy_module);

    if (ngx_http_complex_value(r, plcf->client_id, &ctx->id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pmcf = zone->pmcf;

    f = qcc_policy_family(r->uri.data, r->uri.len, pmcf->families + 1,
                          (int) pmcf->nfamilies - 1);
    family = (f == QCC_POLICY_NOMATCH) ? NGX_HTTP_QCC_POLICY_OTHER
                                       : (ngx_uint_t) f + 1;
    ctx->family = &pmcf->families[family];
    ctx->slot = zone->slot[family];

    if (ctx->id.len == 0) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->anonymous++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "qcc: policy: no client identity");
        ngx_str_set(&msg, "no client identity");
        return ngx_http_qcc_policy_refuse(r, NGX_HTTP_UNAUTHORIZED, &msg, 0);
    }

    client = NULL;
    c = zone->clients.elts;

    for (i = 0; i < zone->clients.nelts; i++) {
        if (c[i].name.len == ctx->id.len
            && ngx_strncmp(c[i].name.data, ctx->id.data, ctx->id.len) == 0)
        {
            client = &c[i];
            break;
        }
    }

    if (client == NULL) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->unknown++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "qcc: policy: unknown client \"%V\" refused",
                      &ctx->id);
        ngx_str_set(&msg, "unknown client");
        return ngx_http_qcc_policy_refuse(r, NGX_HTTP_FORBIDDEN, &msg, 0);
    }

    node = client->node;
    sh = zone->sh;
    ctx->node = node;

    if (!(client->families & (1u << family))) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        node->usage[ctx->slot].denied++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "qcc: policy: client \"%V\" may not call family "
                      "\"%s\"", &client->name, ctx->family->data);

        msg.len = sizeof("client may not call API family \"\"") - 1
                  + ctx->family->len;
        msg.data = ngx_pnalloc(r->pool, msg.len);
        if (msg.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg.data, "client may not call API family \"%s\"",
                    ctx->family->data);

        return ngx_http_qcc_policy_refuse(r, NGX_HTTP_FORBIDDEN, &msg, 0);
    }

    now = ngx_time();
    day = qcc_policy_period_index(now, zone->period);

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_qcc_policy_roll_locked(zone, node, day);

    if (client->budget != NGX_HTTP_QCC_POLICY_NO_BUDGET
        && node->used >= client->budget)
    {
        node->limited++;

        /* a warning once a period, then info: a runaway job floods */
        level = (node->warned == day) ? NGX_LOG_INFO : NGX_LOG_WARN;
        node->warned = day;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(level, r->connection->log, 0,
                      "qcc: policy: client \"%V\" has used its budget of "
                      "%ui calls", &client->name, client->budget);

        ngx_str_set(&msg, "the client's daily call budget is used up");
        return ngx_http_qcc_policy_refuse(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                 &msg, qcc_policy_retry_after(now,
                                                              zone->period));
    }

    if (zone->budget != NGX_HTTP_QCC_POLICY_NO_BUDGET
        && sh->used >= zone->budget)
    {
        node->limited++;
        sh->limited++;

        level = (sh->warned == day) ? NGX_LOG_INFO : NGX_LOG_WARN;
        sh->warned = day;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(level, r->connection->log, 0,
                      "qcc: policy: zone \"%V\" has used its budget of "
                      "%ui calls, client \"%V\" refused", &zone->name,
                      zone->budget, &client->name);

        ngx_str_set(&msg, "the account's daily call budget is used up");
        return ngx_http_qcc_policy_refuse(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                 &msg, qcc_policy_retry_after(now,
                                                              zone->period));
    }

    node->used++;
    sh->used++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->day = day;
    ctx->charged = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "qcc policy: client \"%V\" family \"%s\" charged, "
                   "%ui used", &client->name, ctx->family->data, node->used);

    return NGX_DECLINED;
}


/* rolls the counters of the client and the account into the period */

static void
ngx_http_qcc_policy_roll_locked(ngx_http_qcc_policy_zone_t *zone,
    ngx_http_qcc_policy_node_t *node, int64_t day)
{
    if (zone->sh->day != day) {
        zone->sh->day = day;
        zone->sh->used = 0;
    }

    if (node->day != day) {
        node->day = day;
        node->used = 0;
    }
}


/* A refusal: QCC-style JSON, with Retry-After and the reset for 429. */

static ngx_int_t
ngx_http_qcc_policy_refuse(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *msg, time_t retry_after)
{
    u_char     *body, *p, *ra;
    size_t      len;
    ngx_int_t   rc;

    len = sizeof("{\"status\":\"000\",\"msg\":\"\",\"retry_after\":,"
                 "\"reset\":\"\"}\n") - 1
          + ngx_escape_json(NULL, msg->data, msg->len) + msg->len
          + NGX_TIME_T_LEN + sizeof("1970-01-01T00:00:00+08:00");

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"status\":\"%ui\",\"msg\":\"", status);
    p = (u_char *) ngx_escape_json(p, msg->data, msg->len);
    *p++ = '"';

    if (retry_after) {
        p = ngx_sprintf(p, ",\"retry_after\":%T,\"reset\":", retry_after);
        p = ngx_http_qcc_policy_time(p, ngx_time() + retry_after);

        ra = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 1);
        if (ra == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_sprintf(ra, "%T", retry_after) = '\0';

        if (ngx_http_qcc_add_header(r, "Retry-After", (char *) ra)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    p = ngx_cpymem(p, "}\n", 2);

    rc = ngx_http_qcc_send_json(r, status, body, p - body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* the charge of a request, found by its pool cleanup */

static ngx_http_qcc_policy_ctx_t *
ngx_http_qcc_policy_find(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_qcc_policy_settle) {
            return cln->data;
        }
    }

    return NULL;
}


/*
 * At the end of the request (its pool cleanup): a call that reached no
 * upstream gives its charge back; one that did is counted with the
 * business status of its answer.
 */

static void
ngx_http_qcc_policy_settle(void *data)
{
    ngx_http_qcc_policy_ctx_t *ctx = data;

    int                          status;
    ngx_uint_t                   contacted, cached;
    ngx_http_request_t          *r;
    ngx_http_upstream_t         *u;
    ngx_http_qcc_policy_sh_t    *sh;
    ngx_http_qcc_policy_zone_t  *zone;
    ngx_http_qcc_policy_usage_t *usage;

    if (!ctx->charged) {
        return;
    }

    r = ctx->request;
    u = r->upstream;
    zone = ctx->zone;
    sh = zone->sh;

    /* a request never sent (QCC unreachable, a cache hit) costs nothing */
    contacted = (u != NULL && u->peer.name != NULL && u->request_sent);
    cached = (u != NULL && r->cached);

    status = ctx->scanning ? qcc_policy_scan_end(&ctx->scan) : -1;

    usage = &ctx->node->usage[ctx->slot];

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (contacted) {
        usage->calls++;
        usage->codes[qcc_policy_code_index(status)]++;

    } else {
        if (ctx->node->day == ctx->day && ctx->node->used) {
            ctx->node->used--;
        }

        if (sh->day == ctx->day && sh->used) {
            sh->used--;
        }

        if (cached) {
            usage->cached++;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->charged = 0;
}


/* --- the business status of the answer ---------------------------------- */

static ngx_int_t
ngx_http_qcc_policy_header_filter(ngx_http_request_t *r)
{
    ngx_http_qcc_policy_ctx_t  *ctx;

    if (r == r->main) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_policy_module);

        if (ctx && ctx->charged && r->upstream && !r->cached
            && r->headers_out.content_encoding == NULL)
        {
            qcc_policy_scan_init(&ctx->scan);
            ctx->scanning = 1;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_qcc_policy_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_http_qcc_policy_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_policy_module);

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


/* --- the zone ----------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_policy_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_qcc_policy_zone_t *ozone = data;

    ngx_int_t                    rc;
    ngx_http_qcc_policy_sh_t    *sh;
    ngx_http_qcc_policy_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the counters in the zone go on */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

    } else {
        zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

        if (shm_zone->shm.exists) {
            zone->sh = zone->shpool->data;

        } else {
            sh = ngx_slab_calloc(zone->shpool,
                                 sizeof(ngx_http_qcc_policy_sh_t));
            if (sh == NULL) {
                return NGX_ERROR;
            }

            ngx_queue_init(&sh->clients);
            sh->period = zone->period;
            sh->day = -1;

            zone->sh = sh;
            zone->shpool->data = sh;
            zone->shpool->log_nomem = 0;

            zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool,
                                   sizeof(" in qcc_policy_zone \"\"")
                                   + shm_zone->shm.name.len);
            if (zone->shpool->log_ctx == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(zone->shpool->log_ctx, " in qcc_policy_zone \"%V\"%Z",
                        &shm_zone->shm.name);
        }
    }

    /* old workers may be counting in the zone during a reload */

    ngx_shmtx_lock(&zone->shpool->mutex);
    rc = ngx_http_qcc_policy_sync_locked(zone, shm_zone->shm.log);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * The zone's family slots and client nodes for this configuration: found
 * by name, so that counters follow a client and a family across reloads
 * that add, remove or reorder them.
 */

static ngx_int_t
ngx_http_qcc_policy_sync_locked(ngx_http_qcc_policy_zone_t *zone,
    ngx_log_t *log)
{
    ngx_uint_t                        i, j;
    ngx_queue_t                      *q;
    qcc_policy_str_t                 *fam;
    ngx_http_qcc_policy_sh_t         *sh;
    ngx_http_qcc_policy_node_t       *node;
    ngx_http_qcc_policy_client_t     *c;
    ngx_http_qcc_policy_main_conf_t  *pmcf;

    sh = zone->sh;
    pmcf = zone->pmcf;

    if (sh->period != zone->period) {
        /* a new length of the day: today's charges start anew */
        sh->period = zone->period;
        sh->day = -1;
        sh->used = 0;

        for (q = ngx_queue_head(&sh->clients);
             q != ngx_queue_sentinel(&sh->clients);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_qcc_policy_node_t, queue);
            node->day = -1;
            node->used = 0;
        }
    }

    fam = pmcf->families;

    for (i = 0; i < pmcf->nfamilies; i++) {

        for (j = 0; j < sh->nfamilies; j++) {
            if (sh->family[j].len == fam[i].len
                && ngx_strncmp(sh->family[j].name, fam[i].data, fam[i].len)
                   == 0)
            {
                break;
            }
        }

        if (j == sh->nfamilies) {
            if (j == NGX_HTTP_QCC_POLICY_FAMILIES) {
                ngx_log_error(NGX_LOG_EMERG, log, 0,
                              "qcc: policy zone \"%V\" has no room for "
                              "family \"%s\": %d families at most over its "
                              "life, rename the zone to start anew",
                              &zone->name, fam[i].data,
                              NGX_HTTP_QCC_POLICY_FAMILIES);
                return NGX_ERROR;
            }

            sh->family[j].len = fam[i].len;
            ngx_memcpy(sh->family[j].name, fam[i].data, fam[i].len);
            sh->nfamilies++;
        }

        zone->slot[i] = j;
    }

    c = zone->clients.elts;

    for (i = 0; i < zone->clients.nelts; i++) {

        node = NULL;

        for (q = ngx_queue_head(&sh->clients);
             q != ngx_queue_sentinel(&sh->clients);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_qcc_policy_node_t, queue);

            if (node->name_len == c[i].name.len
                && ngx_strncmp(node->name, c[i].name.data, c[i].name.len)
                   == 0)
            {
                break;
            }

            node = NULL;
        }

        if (node == NULL) {
            node = ngx_slab_calloc_locked(zone->shpool,
                                        sizeof(ngx_http_qcc_policy_node_t));
            if (node == NULL) {
                ngx_log_error(NGX_LOG_EMERG, log, 0,
                              "qcc: policy zone \"%V\" is too small for "
                              "its clients: about %uz bytes each",
                              &zone->name,
                              sizeof(ngx_http_qcc_policy_node_t));
                return NGX_ERROR;
            }

            node->day = -1;
            node->name_len = c[i].name.len;
            ngx_memcpy(node->name, c[i].name.data, c[i].name.len);
            ngx_queue_insert_tail(&sh->clients, &node->queue);
        }

        c[i].node = node;
    }

    return NGX_OK;
}


/* --- the status section ------------------------------------------------- */

ngx_buf_t *
ngx_http_qcc_policy_status(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t prometheus)
{
    u_char                           *p;
    size_t                            size, len;
    ngx_buf_t                        *nb;
    ngx_uint_t                        i, m, n;
    ngx_http_qcc_policy_zone_t      **zones;
    ngx_http_qcc_policy_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_qcc_policy_module);

    if (pmcf == NULL || pmcf->zones.nelts == 0) {
        return b;
    }

    len = b->last - b->pos;

    if (!prometheus) {
        /* the member goes inside the top object: before its "}\n" */
        if (len < 2 || b->last[-2] != '}' || b->last[-1] != '\n') {
            return b;
        }

        len -= 2;
    }

    zones = pmcf->zones.elts;
    n = pmcf->zones.nelts;

    /*
     * Every zone locked, always in the order of the configuration (no
     * other code holds two of them), so that the section is sized and
     * written from the same counts.  Nothing but memory work under the
     * locks.
     */

    for (i = 0; i < n; i++) {
        ngx_shmtx_lock(&zones[i]->shpool->mutex);
    }

    size = len + sizeof(",\"policy\":{}}\n") + n;

    for (i = 0; i < n; i++) {
        size += ngx_http_qcc_policy_status_size_locked(pmcf, zones[i],
                                                       prometheus);
    }

    nb = ngx_create_temp_buf(r->pool, size);

    if (nb) {
        p = ngx_cpymem(nb->last, b->pos, len);

        if (prometheus) {
            for (m = 0; ngx_http_qcc_policy_metrics[m][0]; m++) {
                p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                                ngx_http_qcc_policy_metrics[m][0],
                                ngx_http_qcc_policy_metrics[m][2],
                                ngx_http_qcc_policy_metrics[m][0],
                                ngx_http_qcc_policy_metrics[m][1]);

                for (i = 0; i < n; i++) {
                    p = ngx_http_qcc_policy_status_prom_locked(p, pmcf,
                                                               zones[i], m);
                }
            }

        } else {
            p = ngx_cpymem(p, ",\"policy\":{", sizeof(",\"policy\":{") - 1);

            for (i = 0; i < n; i++) {
                if (i) {
                    *p++ = ',';
                }

                p = ngx_http_qcc_policy_status_json_locked(p, pmcf, zones[i]);
            }

            p = ngx_cpymem(p, "}}\n", 3);
        }

        nb->last = p;
    }

    while (n--) {
        ngx_shmtx_unlock(&zones[n]->shpool->mutex);
    }

    return nb;
}


/* whether a family is shown for a client: allowed or ever counted */

static ngx_uint_t
ngx_http_qcc_policy_shown(ngx_http_qcc_policy_client_t *c,
    ngx_http_qcc_policy_usage_t *u, ngx_uint_t f)
{
    if (c->families & (1u << f)) {
        return 1;
    }

    return u->calls || u->cached || u->denied;
}


/* an upper bound of the bytes of a zone's section */

static size_t
ngx_http_qcc_policy_status_size_locked(ngx_http_qcc_policy_main_conf_t *pmcf,
    ngx_http_qcc_policy_zone_t *zone, ngx_uint_t prometheus)
{
    size_t                         size, line;
    ngx_uint_t                     i, f, k, entries;
    ngx_http_qcc_policy_usage_t   *u;
    ngx_http_qcc_policy_client_t  *c;

    /* one line or member: names, labels and a 20-digit number */
    line = 192 + zone->name.len + NGX_HTTP_QCC_POLICY_NAME_MAX
           + QCC_POLICY_FAMILY_MAX;

    entries = 16;
    c = zone->clients.elts;

    for (i = 0; i < zone->clients.nelts; i++) {
        entries += 8;

        for (f = 0; f < pmcf->nfamilies; f++) {
            u = &c[i].node->usage[zone->slot[f]];

            if (!ngx_http_qcc_policy_shown(&c[i], u, f)) {
                continue;
            }

            entries += 4;

            for (k = 0; k < QCC_POLICY_CODES; k++) {
                if (u->codes[k]) {
                    entries++;
                }
            }
        }
    }

    size = entries * line;

    if (prometheus) {
        /* HELP and TYPE lines */
        size += 20 * 256;
    }

    return size;
}


static u_char *
ngx_http_qcc_policy_code(u_char *p, ngx_uint_t k)
{
    if (k == QCC_POLICY_CODE_OTHER) {
        return ngx_cpymem(p, "other", 5);
    }

    if (k == QCC_POLICY_CODE_NONE) {
        return ngx_cpymem(p, "none", 4);
    }

    return ngx_sprintf(p, "%d", qcc_policy_code_value((int) k));
}


static u_char *
ngx_http_qcc_policy_status_json_locked(u_char *p,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_http_qcc_policy_zone_t *zone)
{
    time_t                         now;
    int64_t                        day;
    ngx_uint_t                     i, f, k, used, first, firstk;
    ngx_http_qcc_policy_sh_t      *sh;
    ngx_http_qcc_policy_node_t    *node;
    ngx_http_qcc_policy_usage_t   *u;
    ngx_http_qcc_policy_client_t  *c;

    sh = zone->sh;
    now = ngx_time();
    day = qcc_policy_period_index(now, zone->period);

    used = (sh->day == day) ? sh->used : 0;

    p = ngx_sprintf(p, "\"%V\":{\"period\":%T,\"reset\":", &zone->name,
                    zone->period);
    p = ngx_http_qcc_policy_time(p, qcc_policy_period_end(now,
                                                          zone->period));
    p = ngx_sprintf(p, ",\"budget\":");

    if (zone->budget == NGX_HTTP_QCC_POLICY_NO_BUDGET) {
        p = ngx_sprintf(p, "null,\"used\":%ui,\"left\":null", used);

    } else {
        p = ngx_sprintf(p, "%ui,\"used\":%ui,\"left\":%ui", zone->budget,
                        used, used < zone->budget ? zone->budget - used : 0);
    }

    p = ngx_sprintf(p, ",\"limited\":%uL,\"no_identity\":%uL,"
                    "\"unknown_client\":%uL,\"clients\":{",
                    sh->limited, sh->anonymous, sh->unknown);

    c = zone->clients.elts;

    for (i = 0; i < zone->clients.nelts; i++) {
        node = c[i].node;
        used = (node->day == day) ? node->used : 0;

        p = ngx_sprintf(p, "%s\"%V\":{\"budget\":", i ? "," : "",
                        &c[i].name);

        if (c[i].budget == NGX_HTTP_QCC_POLICY_NO_BUDGET) {
            p = ngx_sprintf(p, "null,\"used\":%ui,\"left\":null", used);

        } else {
            p = ngx_sprintf(p, "%ui,\"used\":%ui,\"left\":%ui", c[i].budget,
                            used,
                            used < c[i].budget ? c[i].budget - used : 0);
        }

        p = ngx_sprintf(p, ",\"limited\":%uL,\"families\":{", node->limited);

        first = 1;

        for (f = 0; f < pmcf->nfamilies; f++) {
            u = &node->usage[zone->slot[f]];

            if (!ngx_http_qcc_policy_shown(&c[i], u, f)) {
                continue;
            }

            p = ngx_sprintf(p, "%s\"%s\":{\"allowed\":%s,\"calls\":%uL,"
                            "\"cached\":%uL,\"denied\":%uL,\"codes\":{",
                            first ? "" : ",", pmcf->families[f].data,
                            (c[i].families & (1u << f)) ? "true" : "false",
                            u->calls, u->cached, u->denied);
            first = 0;
            firstk = 1;

            for (k = 0; k < QCC_POLICY_CODES; k++) {
                if (u->codes[k] == 0) {
                    continue;
                }

                p = ngx_sprintf(p, "%s\"", firstk ? "" : ",");
                p = ngx_http_qcc_policy_code(p, k);
                p = ngx_sprintf(p, "\":%uD", u->codes[k]);
                firstk = 0;
            }

            p = ngx_cpymem(p, "}}", 2);
        }

        p = ngx_cpymem(p, "}}", 2);
    }

    return ngx_cpymem(p, "}}", 2);
}


/* the samples of metric m of one zone */

static u_char *
ngx_http_qcc_policy_status_prom_locked(u_char *p,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_http_qcc_policy_zone_t *zone,
    ngx_uint_t m)
{
    char                          *name;
    time_t                         now;
    int64_t                        day;
    uint64_t                       n;
    ngx_uint_t                     i, f, k, used;
    ngx_http_qcc_policy_sh_t      *sh;
    ngx_http_qcc_policy_node_t    *node;
    ngx_http_qcc_policy_usage_t   *u;
    ngx_http_qcc_policy_client_t  *c;

    name = ngx_http_qcc_policy_metrics[m][0];
    sh = zone->sh;
    now = ngx_time();
    day = qcc_policy_period_index(now, zone->period);
    c = zone->clients.elts;

    switch (m) {

    case 0: case 1: case 2:   /* calls, cached, denied */

        for (i = 0; i < zone->clients.nelts; i++) {
            for (f = 0; f < pmcf->nfamilies; f++) {
                u = &c[i].node->usage[zone->slot[f]];

                if (!ngx_http_qcc_policy_shown(&c[i], u, f)) {
                    continue;
                }

                n = (m == 0) ? u->calls : (m == 1) ? u->cached : u->denied;

                p = ngx_sprintf(p, "%s{zone=\"%V\",client=\"%V\","
                                "family=\"%s\"} %uL\n", name, &zone->name,
                                &c[i].name, pmcf->families[f].data, n);
            }
        }

        break;

    case 3:   /* business status */

        for (i = 0; i < zone->clients.nelts; i++) {
            for (f = 0; f < pmcf->nfamilies; f++) {
                u = &c[i].node->usage[zone->slot[f]];

                for (k = 0; k < QCC_POLICY_CODES; k++) {
                    if (u->codes[k] == 0) {
                        continue;
                    }

                    p = ngx_sprintf(p, "%s{zone=\"%V\",client=\"%V\","
                                    "family=\"%s\",code=\"", name,
                                    &zone->name, &c[i].name,
                                    pmcf->families[f].data);
                    p = ngx_http_qcc_policy_code(p, k);
                    p = ngx_sprintf(p, "\"} %uD\n", u->codes[k]);
                }
            }
        }

        break;

    case 4: case 5: case 6: case 7:   /* limited, used, budget, left */

        for (i = 0; i < zone->clients.nelts; i++) {
            node = c[i].node;
            used = (node->day == day) ? node->used : 0;

            if (m == 4) {
                n = node->limited;

            } else if (m == 5) {
                n = used;

            } else if (c[i].budget == NGX_HTTP_QCC_POLICY_NO_BUDGET) {
                continue;

            } else if (m == 6) {
                n = c[i].budget;

            } else {
                n = (used < c[i].budget) ? c[i].budget - used : 0;
            }

            p = ngx_sprintf(p, "%s{zone=\"%V\",client=\"%V\"} %uL\n", name,
                            &zone->name, &c[i].name, n);
        }

        break;

    case 8: case 9:   /* the account: used, left */

        used = (sh->day == day) ? sh->used : 0;

        if (m == 8) {
            n = used;

        } else if (zone->budget == NGX_HTTP_QCC_POLICY_NO_BUDGET) {
            break;

        } else {
            n = (used < zone->budget) ? zone->budget - used : 0;
        }

        p = ngx_sprintf(p, "%s{zone=\"%V\"} %uL\n", name, &zone->name, n);
        break;

    case 10:   /* refused before a client was found */

        p = ngx_sprintf(p, "%s{zone=\"%V\",reason=\"no_identity\"} %uL\n"
                        "%s{zone=\"%V\",reason=\"unknown_client\"} %uL\n",
                        name, &zone->name, sh->anonymous,
                        name, &zone->name, sh->unknown);
        break;

    default:   /* the reset */

        p = ngx_sprintf(p, "%s{zone=\"%V\"} %L\n", name, &zone->name,
                        (int64_t) qcc_policy_period_end(now, zone->period));
        break;
    }

    return p;
}


/* "2026-11-28T00:00:00+08:00": QCC's local time */

static u_char *
ngx_http_qcc_policy_time(u_char *p, time_t t)
{
    ngx_tm_t  tm;

    ngx_gmtime(t + QCC_POLICY_TZ_OFFSET, &tm);

    return ngx_sprintf(p, "\"%4d-%02d-%02dT%02d:%02d:%02d+08:00\"",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}


/* --- configuration ------------------------------------------------------ */

static void *
ngx_http_qcc_policy_create_main_conf(ngx_conf_t *cf)
{
    char                            **name;
    ngx_http_qcc_policy_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_policy_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->zones, cf->pool, 2,
                       sizeof(ngx_http_qcc_policy_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    for (name = ngx_http_qcc_policy_builtin; *name; name++) {
        pmcf->families[pmcf->nfamilies].data = (u_char *) *name;
        pmcf->families[pmcf->nfamilies].len = ngx_strlen(*name);
        pmcf->nfamilies++;
    }

    return pmcf;
}


static void *
ngx_http_qcc_policy_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_qcc_policy_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_policy_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone = NGX_CONF_UNSET_PTR;
    conf->client_id = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_qcc_policy_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_qcc_policy_loc_conf_t *prev = parent;
    ngx_http_qcc_policy_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /*
     * QCC's push callbacks and the status endpoint are not app calls: a
     * policy of the server or http level does not reach them.
     */

    if (conf->zone == NGX_CONF_UNSET_PTR
        && (clcf->handler == ngx_http_qcc_callback_handler
            || clcf->handler == ngx_http_qcc_status_handler))
    {
        conf->zone = NULL;
    }

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);
    ngx_conf_merge_ptr_value(conf->client_id, prev->client_id, NULL);

    if (conf->zone && conf->client_id == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"qcc_policy %V\" needs \"qcc_client_id\" in effect: "
                      "the variable that names the calling app",
                      &conf->zone->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_policy_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_qcc_add_variables(cf, ngx_http_qcc_policy_vars);
}


/* $qcc_client (the identity) and $qcc_family, where a policy decided */

static ngx_int_t
ngx_http_qcc_policy_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_qcc_policy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_qcc_policy_module);

    if (ctx == NULL) {
        ctx = ngx_http_qcc_policy_find(r->main);
    }

    if (ctx == NULL || (data == 1 && ctx->family == NULL)) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        v->data = ctx->id.data;
        v->len = ctx->id.len;

    } else {
        v->data = (u_char *) ctx->family->data;
        v->len = ctx->family->len;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_policy_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The precontent phase: after every access check, so that the
     * identity is established and "satisfy any" is not disturbed.  The
     * handlers of a phase run in the reverse order of registration: this
     * one, registered after the signing module's, runs before signing.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_qcc_policy_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_qcc_policy_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_qcc_policy_body_filter;

    return NGX_OK;
}


static ngx_http_qcc_policy_zone_t *
ngx_http_qcc_policy_zone_by_name(ngx_http_qcc_policy_main_conf_t *pmcf,
    ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_http_qcc_policy_zone_t  **zones;

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        if (zones[i]->name.len == name->len
            && ngx_strncmp(zones[i]->name.data, name->data, name->len) == 0)
        {
            return zones[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_qcc_policy_family_add(ngx_conf_t *cf,
    ngx_http_qcc_policy_main_conf_t *pmcf, ngx_str_t *name)
{
    u_char      *p;
    ngx_uint_t   i;

    for (i = 0; i < pmcf->nfamilies; i++) {
        if (pmcf->families[i].len == name->len
            && ngx_strncmp(pmcf->families[i].data, name->data, name->len)
               == 0)
        {
            return i;
        }
    }

    if (pmcf->nfamilies == NGX_HTTP_QCC_POLICY_FAMILIES) {
        return NGX_ERROR;
    }

    /* NUL-terminated: printed with %s */

    p = ngx_pnalloc(cf->pool, name->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(p, name->data, name->len) = '\0';

    pmcf->families[i].data = p;
    pmcf->families[i].len = name->len;
    pmcf->nfamilies++;

    return i;
}


/* qcc_policy_zone zone=NAME:SIZE [budget=N] [period=TIME]; */

static char *
ngx_http_qcc_policy_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_policy_main_conf_t *pmcf = conf;

    ssize_t                       size;
    ngx_int_t                     n;
    ngx_str_t                    *value, name, s;
    ngx_uint_t                    i;
    ngx_shm_zone_t               *shm_zone;
    ngx_http_qcc_policy_zone_t   *zone, **zp;

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_policy_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->budget = NGX_HTTP_QCC_POLICY_NO_BUDGET;
    zone->period = QCC_POLICY_DAY;
    zone->pmcf = pmcf;

    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            if (ngx_http_qcc_parse_zone(cf, &value[i], &name, &size)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "budget=", 7) == 0) {

            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid budget \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->budget = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "period=", 7) == 0) {

            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid period \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->period = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* shown as is in JSON and Prometheus labels */

    for (i = 0; i < name.len; i++) {
        if (!qcc_policy_family_valid(&name.data[i], 1)
            && name.data[i] != '.')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid zone name \"%V\": letters, "
                               "digits, \"_\", \"-\" and \".\" only", &name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_qcc_policy_zone_by_name(pmcf, &name)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_qcc_policy_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&zone->clients, cf->pool, 4,
                       sizeof(ngx_http_qcc_policy_client_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zone->name = shm_zone->shm.name;
    zone->shm_zone = shm_zone;

    shm_zone->init = ngx_http_qcc_policy_init_zone;
    shm_zone->data = zone;

    zp = ngx_array_push(&pmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = zone;

    return NGX_CONF_OK;
}


/* qcc_client NAME zone=NAME families=F[,F...]|* [budget=N]; */

static char *
ngx_http_qcc_policy_client(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_policy_main_conf_t *pmcf = conf;

    u_char                        *p, *last, *start;
    ngx_int_t                      n, f;
    ngx_str_t                     *value, zname, fam;
    ngx_uint_t                     i, all, families;
    ngx_http_qcc_policy_zone_t    *zone;
    ngx_http_qcc_policy_client_t  *client, *c;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_QCC_POLICY_NAME_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid client name \"%V\": 1 to %d bytes",
                           &value[1], NGX_HTTP_QCC_POLICY_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    /* shown as is in JSON strings and Prometheus labels */

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] < 0x20 || value[1].data[i] == 0x7f
            || value[1].data[i] == '"' || value[1].data[i] == '\\')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid client name \"%V\": no quote, "
                               "backslash or control character", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    zname.len = 0;
    families = 0;
    all = 0;
    n = NGX_HTTP_QCC_POLICY_NO_BUDGET;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            zname.data = value[i].data + 5;
            zname.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "budget=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid budget \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "families=", 9) == 0) {

            p = value[i].data + 9;
            last = value[i].data + value[i].len;

            if (p == last) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            while (p < last) {
                start = p;

                while (p < last && *p != ',') {
                    p++;
                }

                fam.data = start;
                fam.len = p - start;
                p++;

                if (fam.len == 1 && fam.data[0] == '*') {
                    all = 1;
                    continue;
                }

                if (!qcc_policy_family_valid(fam.data, fam.len)
                    || (fam.len == 5
                        && ngx_strncmp(fam.data, "other", 5) == 0))
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid family \"%V\": path "
                                       "segments under /api/ such as "
                                       "\"radar_ext\" or \"yj/Report\"",
                                       &fam);
                    return NGX_CONF_ERROR;
                }

                f = ngx_http_qcc_policy_family_add(cf, pmcf, &fam);
                if (f == NGX_ERROR) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "too many families: %d at most",
                                       NGX_HTTP_QCC_POLICY_FAMILIES - 1);
                    return NGX_CONF_ERROR;
                }

                families |= 1u << f;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (zname.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    zone = ngx_http_qcc_policy_zone_by_name(pmcf, &zname);

    if (zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown policy zone \"%V\": \"qcc_policy_zone\" "
                           "must come first", &zname);
        return NGX_CONF_ERROR;
    }

    if (families == 0 && !all) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"families\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    c = zone->clients.elts;

    for (i = 0; i < zone->clients.nelts; i++) {
        if (c[i].name.len == value[1].len
            && ngx_strncmp(c[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate client \"%V\" in zone \"%V\"",
                               &value[1], &zname);
            return NGX_CONF_ERROR;
        }
    }

    client = ngx_array_push(&zone->clients);
    if (client == NULL) {
        return NGX_CONF_ERROR;
    }

    client->name = value[1];
    client->budget = (ngx_uint_t) n;
    client->families = all ? 0xffffffff : families;
    client->node = NULL;

    return NGX_CONF_OK;
}


/* qcc_policy NAME | off; */

static char *
ngx_http_qcc_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_policy_loc_conf_t *plcf = conf;

    ngx_str_t                        *value;
    ngx_http_qcc_policy_main_conf_t  *pmcf;

    if (plcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        plcf->zone = NULL;
        return NGX_CONF_OK;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_policy_module);

    plcf->zone = ngx_http_qcc_policy_zone_by_name(pmcf, &value[1]);

    if (plcf->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown policy zone \"%V\": \"qcc_policy_zone\" "
                           "must come first", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
