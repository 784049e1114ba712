/*
 * Never missing a push: per feed with a callback, the leader asks the
 * driver to reconcile shortly after start and then every interval.  The
 * driver lists QCC's latest orders through the signed pull location,
 * fetches the link of every order the queue does not know, queues it as
 * if it had been pushed (source "reconcile"), and re-activates the
 * callback when a callback was refused since the last activation or an
 * order was found that was never pushed.  QCC's error answers back off.
 *
 * Also the operator's actions on the status location: retry a failed
 * order, reconcile a feed now.
 */

#include "ngx_http_qcc_module.h"

#include <cjson/cJSON.h>


#define NGX_HTTP_QCC_RECONCILE_FIRST   3       /* seconds after start */
#define NGX_HTTP_QCC_RECONCILE_ORDERS  100     /* at most per run */
#define NGX_HTTP_QCC_RECONCILE_STALE   600     /* a run that never ended */

#define NGX_HTTP_QCC_RC_LIST           1
#define NGX_HTTP_QCC_RC_LINK           2
#define NGX_HTTP_QCC_RC_ACTIVATE       3
#define NGX_HTTP_QCC_RC_DONE           4


typedef struct {
    u_char                      order_no[QCC_CALLBACK_ORDER_NO_MAX];
    size_t                      len;
} ngx_http_qcc_rc_order_t;


typedef struct {
    ngx_uint_t                  kind;         /* NGX_HTTP_QCC_CTX_RECONCILE */
    ngx_http_request_t         *request;
    ngx_http_qcc_fetch_conf_t  *fcf;
    ngx_uint_t                  feed;
    ngx_uint_t                  step;

    ngx_array_t                *orders;       /* unknown to the queue */
    ngx_uint_t                  next;
    ngx_uint_t                  listed;
    ngx_uint_t                  added;
    ngx_uint_t                  unpushed;

    ngx_http_request_t         *sr;
    ngx_uint_t                  sr_status;
    unsigned                    waiting:1;
    unsigned                    failed:1;

    u_char                      code[8];      /* QCC status of a failure */
    size_t                      code_len;
    u_char                      msg[96];
    size_t                      msg_len;
} ngx_http_qcc_rc_ctx_t;


static void ngx_http_qcc_rc_resume(ngx_http_request_t *r);
static void ngx_http_qcc_rc_run(ngx_http_request_t *r,
    ngx_http_qcc_rc_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_rc_call(ngx_http_request_t *r,
    ngx_http_qcc_rc_ctx_t *ctx, ngx_str_t *call, ngx_str_t *args);
static ngx_int_t ngx_http_qcc_rc_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_qcc_rc_listed(ngx_http_request_t *sr,
    ngx_http_qcc_rc_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_rc_linked(ngx_http_request_t *sr,
    ngx_http_qcc_rc_ctx_t *ctx);
static void ngx_http_qcc_rc_journaled(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_qcc_rc_activated(ngx_http_request_t *sr,
    ngx_http_qcc_rc_ctx_t *ctx);
static void ngx_http_qcc_rc_fail(ngx_http_qcc_rc_ctx_t *ctx, u_char *code,
    size_t code_len, const char *fmt, ...);
static void ngx_http_qcc_rc_finish(ngx_http_request_t *r,
    ngx_http_qcc_rc_ctx_t *ctx);
static const char *ngx_http_qcc_status_meaning(u_char *code, size_t len);
static ngx_int_t ngx_http_qcc_action_reply(ngx_http_request_t *r,
    ngx_uint_t status, const char *msg);


static ngx_str_t  ngx_http_qcc_list_calls[NGX_HTTP_QCC_FEEDS] = {
    ngx_string("/api/dd_risk_mnr/listDdRiskLatestOrderNo"),
    ngx_string("/api/dd_corp_monitor/listLatestOrderNo")
};

static ngx_str_t  ngx_http_qcc_link_calls[NGX_HTTP_QCC_FEEDS] = {
    ngx_string("/api/dd_risk_mnr/getDdRiskDownloadUrl"),
    ngx_string("/api/dd_corp_monitor/getDownloadUrl")
};

static ngx_str_t  ngx_http_qcc_activate_calls[NGX_HTTP_QCC_FEEDS] = {
    ngx_string("/api/dd_risk_mnr/activeDdRiskCallCallbackUrl"),
    ngx_string("/api/dd_corp_monitor/activeCallbackUrl")
};


/* QCC's status codes, as the documents explain them */

static struct {
    char  *code;
    char  *meaning;
} ngx_http_qcc_status_meanings[] = {
    { "101", "key invalid" },
    { "102", "key in arrears" },
    { "103", "key suspended" },
    { "104", "key abnormal" },
    { "106", "too many bad requests" },
    { "107", "IP forbidden or bad signature" },
    { "108", "too many bad requests" },
    { "109", "daily system limit reached" },
    { "110", "same failing query repeated, wait 2 hours" },
    { "111", "no permission" },
    { "112", "quota used up or expired" },
    { "113", "API deleted" },
    { "114", "API disabled" },
    { "115", "authentication failed or expired" },
    { "116", "daily call total exceeded" },
    { "117", "too many unsupported parameters" },
    { "118", "call style not supported" },
    { "119", "account abnormal" },
    { "199", "unknown error" },
    { "202", "bad parameters" },
    { "500", "logic error" },
    { NULL, NULL }
};


/* --- the leader: which feeds are due -------------------------------------- */

void
ngx_http_qcc_reconcile_tick_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_uint_t *due)
{
    time_t      now;
    ngx_uint_t  f;

    now = ngx_time();

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        due[f] = 0;

        if (fcf->reconcile == 0 || !fcf->feeds[f]) {
            continue;
        }

        if (q->sh->reconcile_next[f] == 0) {
            q->sh->reconcile_next[f] = now + NGX_HTTP_QCC_RECONCILE_FIRST;
            continue;
        }

        if (q->sh->reconcile_next[f] > now) {
            continue;
        }

        /* one run at a time; a run whose worker died is forgotten */
        if (q->sh->reconcile_started[f]
            && q->sh->reconcile_started[f] + NGX_HTTP_QCC_RECONCILE_STALE
               > now)
        {
            continue;
        }

        q->sh->reconcile_started[f] = now;
        due[f] = 1;
    }
}


/* --- the driver's reconcile request --------------------------------------- */

ngx_int_t
ngx_http_qcc_reconcile_handler(ngx_http_request_t *r,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_uint_t feed)
{
    ngx_http_qcc_rc_ctx_t  *ctx;

    if (fcf->pull.len == 0) {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_CONFLICT,
                                         "no pull location to reconcile "
                                         "through");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_qcc_rc_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->orders = ngx_array_create(r->pool, 8,
                                   sizeof(ngx_http_qcc_rc_order_t));
    if (ctx->orders == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->kind = NGX_HTTP_QCC_CTX_RECONCILE;
    ctx->request = r;
    ctx->fcf = fcf;
    ctx->feed = feed;
    ctx->step = NGX_HTTP_QCC_RC_LIST;

    ngx_http_set_ctx(r, ctx, ngx_http_qcc_fetch_filter_module);

    r->main->count++;
    r->write_event_handler = ngx_http_qcc_rc_resume;

    ngx_http_qcc_rc_run(r, ctx);

    return NGX_DONE;
}


static void
ngx_http_qcc_rc_resume(ngx_http_request_t *r)
{
    ngx_http_qcc_rc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_fetch_filter_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_QCC_CTX_RECONCILE
        || ctx->waiting)
    {
        return;
    }

    ngx_http_qcc_rc_run(r, ctx);
}


static void
ngx_http_qcc_rc_run(ngx_http_request_t *r, ngx_http_qcc_rc_ctx_t *ctx)
{
    ngx_str_t                 args;
    ngx_int_t                 rc;
    ngx_http_qcc_queue_t     *q;
    ngx_http_qcc_rc_order_t  *o;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    for ( ;; ) {

        switch (ctx->step) {

        case NGX_HTTP_QCC_RC_LIST:
            rc = ngx_http_qcc_rc_call(r, ctx,
                                      &ngx_http_qcc_list_calls[ctx->feed],
                                      NULL);
            break;

        case NGX_HTTP_QCC_RC_LINK:
            if (ctx->next == ctx->orders->nelts) {
                ctx->step = NGX_HTTP_QCC_RC_ACTIVATE;
                continue;
            }

            o = ctx->orders->elts;
            o += ctx->next;

            /* the subrequest keeps a pointer to its arguments */
            args.data = ngx_pnalloc(r->pool, sizeof("orderNo=") + o->len);
            if (args.data == NULL) {
                rc = NGX_ERROR;
                break;
            }

            args.len = ngx_sprintf(args.data, "orderNo=%*s", o->len,
                                   o->order_no)
                       - args.data;

            rc = ngx_http_qcc_rc_call(r, ctx,
                                      &ngx_http_qcc_link_calls[ctx->feed],
                                      &args);
            break;

        case NGX_HTTP_QCC_RC_ACTIVATE:
            /* at most once per interval, and only when it helps */
            if ((!q->sh->callback_failed[ctx->feed] && ctx->unpushed == 0)
                || ngx_time() - q->sh->activated[ctx->feed]
                   < ctx->fcf->reconcile)
            {
                ctx->step = NGX_HTTP_QCC_RC_DONE;
                continue;
            }

            rc = ngx_http_qcc_rc_call(r, ctx,
                                  &ngx_http_qcc_activate_calls[ctx->feed],
                                  NULL);
            break;

        default: /* NGX_HTTP_QCC_RC_DONE */
            ngx_http_qcc_rc_finish(r, ctx);
            return;
        }

        if (rc == NGX_AGAIN) {
            ctx->waiting = 1;
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_qcc_rc_fail(ctx, NULL, 0, "internal error");
        }
    }
}


/* a signed call through the pull location, its answer kept in memory */

static ngx_int_t
ngx_http_qcc_rc_call(ngx_http_request_t *r, ngx_http_qcc_rc_ctx_t *ctx,
    ngx_str_t *call, ngx_str_t *args)
{
    ngx_str_t            uri;
    ngx_http_request_t  *sr;

    if (ngx_http_qcc_pull_uri(r->pool, &ctx->fcf->pull, call, &uri)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr = ngx_http_qcc_subrequest(r, &uri, args, NGX_HTTP_SUBREQUEST_IN_MEMORY,
                                 ngx_http_qcc_rc_done, ctx);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    ctx->sr = sr;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_qcc_rc_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_qcc_rc_ctx_t *ctx = data;

    ngx_int_t  next;

    ctx->waiting = 0;
    ctx->sr_status = r->headers_out.status;

    if (ctx->sr_status != NGX_HTTP_OK || r->out == NULL) {
        ngx_http_qcc_rc_fail(ctx, NULL, 0, "HTTP %ui from QCC",
                             ctx->sr_status);
        return rc;
    }

    switch (ctx->step) {

    case NGX_HTTP_QCC_RC_LIST:
        next = ngx_http_qcc_rc_listed(r, ctx);
        break;

    case NGX_HTTP_QCC_RC_LINK:
        next = ngx_http_qcc_rc_linked(r, ctx);
        break;

    default:
        next = ngx_http_qcc_rc_activated(r, ctx);
        break;
    }

    if (next == NGX_AGAIN) {
        /* an order's journal record is being written */
        ctx->waiting = 1;
    }

    return rc;
}


/* {"status":"200","resultList":[{"orderNo":...,"createDate":...}, ...]} */

static ngx_int_t
ngx_http_qcc_rc_listed(ngx_http_request_t *sr, ngx_http_qcc_rc_ctx_t *ctx)
{
    cJSON                    *root, *status, *list, *item, *no;
    size_t                    len;
    ngx_buf_t                *b;
    ngx_http_qcc_queue_t     *q;
    ngx_http_qcc_order_t     *known;
    ngx_http_qcc_rc_order_t  *o;

    b = sr->out->buf;
    root = cJSON_ParseWithLength((char *) b->pos, b->last - b->pos);
    status = cJSON_GetObjectItemCaseSensitive(root, "status");

    if (!cJSON_IsString(status)) {
        ngx_http_qcc_rc_fail(ctx, NULL, 0, "list call: not QCC's JSON");
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    /* 201: no result, nothing to do */
    if (ngx_strcmp(status->valuestring, "201") == 0) {
        cJSON_Delete(root);
        ctx->step = NGX_HTTP_QCC_RC_ACTIVATE;
        return NGX_OK;
    }

    if (ngx_strcmp(status->valuestring, "200") != 0) {
        len = ngx_min(ngx_strlen(status->valuestring), 7);
        ngx_http_qcc_rc_fail(ctx, (u_char *) status->valuestring, len,
                             "list call: %s",
                             ngx_http_qcc_status_meaning(
                                 (u_char *) status->valuestring, len));
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    list = cJSON_GetObjectItemCaseSensitive(root, "resultList");

    /* one of the documents' samples spells it with a leading space */
    if (list == NULL) {
        list = cJSON_GetObjectItemCaseSensitive(root, " resultList");
    }

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    cJSON_ArrayForEach(item, list) {
        no = cJSON_GetObjectItemCaseSensitive(item, "orderNo");

        if (!cJSON_IsString(no)) {
            continue;
        }

        len = ngx_strlen(no->valuestring);

        if (qcc_callback_check_order_no((u_char *) no->valuestring, len)
            != QCC_CALLBACK_OK)
        {
            continue;
        }

        ctx->listed++;

        ngx_shmtx_lock(&q->shpool->mutex);
        known = ngx_http_qcc_order_lookup_locked(q, ctx->feed,
                                                 (u_char *) no->valuestring,
                                                 len);
        ngx_shmtx_unlock(&q->shpool->mutex);

        if (known || ctx->orders->nelts == NGX_HTTP_QCC_RECONCILE_ORDERS) {
            continue;
        }

        o = ngx_array_push(ctx->orders);
        if (o == NULL) {
            break;
        }

        o->len = len;
        ngx_memcpy(o->order_no, no->valuestring, len);
    }

    cJSON_Delete(root);

    ctx->step = NGX_HTTP_QCC_RC_LINK;

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_rc_linked(ngx_http_request_t *sr, ngx_http_qcc_rc_ctx_t *ctx)
{
    time_t                    now;
    ngx_int_t                 rc;
    ngx_http_qcc_link_t       link;
    ngx_http_qcc_queue_t     *q;
    ngx_http_qcc_order_t     *o;
    ngx_http_qcc_rc_order_t  *ro;

    ro = ctx->orders->elts;
    ro += ctx->next;

    rc = ngx_http_qcc_parse_link(sr, ctx->request->pool,
                                 ctx->fcf->download_hosts, &link);

    if (rc == NGX_DECLINED) {
        ngx_http_qcc_rc_fail(ctx, link.status, link.status_len,
                             "link call: %s",
                             ngx_http_qcc_status_meaning(link.status,
                                                         link.status_len));
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        /* this order's answer is unusable; the others may be fine */
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "qcc: reconcile %V: no valid link for order \"%*s\"",
                      &ngx_http_qcc_feed_names[ctx->feed], ro->len,
                      ro->order_no);
        ctx->next++;
        return NGX_OK;
    }

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);
    now = ngx_time();

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ro->order_no,
                                         ro->len);

    if (o) {
        /* pushed meanwhile */
        ngx_shmtx_unlock(&q->shpool->mutex);
        ngx_explicit_memzero(link.password, sizeof(link.password));
        ctx->next++;
        return NGX_OK;
    }

    o = ngx_http_qcc_order_add_locked(q, ctx->feed, ro->order_no, ro->len);

    if (o == NULL
        || ngx_http_qcc_order_set_url_locked(q, o, link.url.data,
                                             link.url.len)
           != NGX_OK)
    {
        if (o) {
            ngx_http_qcc_order_remove_locked(q, o);
        }

        ngx_shmtx_unlock(&q->shpool->mutex);
        ngx_explicit_memzero(link.password, sizeof(link.password));
        ngx_http_qcc_rc_fail(ctx, NULL, 0, "queue zone full");
        return NGX_ERROR;
    }

    o->received = now;
    o->updated = now;
    o->next_try = now;
    o->expires = link.expires;
    o->source = NGX_HTTP_QCC_SOURCE_RECONCILE;
    o->password_len = (uint8_t) link.password_len;
    ngx_memcpy(o->password, link.password, link.password_len);

    ngx_shmtx_unlock(&q->shpool->mutex);

    ngx_explicit_memzero(link.password, sizeof(link.password));

    ctx->unpushed++;

    if (ngx_http_qcc_journal_order(q, ctx->feed, ro->order_no, ro->len,
                                   ctx->request->connection->log,
                                   ngx_http_qcc_rc_journaled, ctx)
        != NGX_OK)
    {
        ngx_shmtx_lock(&q->shpool->mutex);

        o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ro->order_no,
                                             ro->len);
        if (o && !o->durable) {
            ngx_http_qcc_order_remove_locked(q, o);
        }

        ngx_shmtx_unlock(&q->shpool->mutex);

        ngx_http_qcc_rc_fail(ctx, NULL, 0, "journal write failed");
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


static void
ngx_http_qcc_rc_journaled(void *data, ngx_int_t rc)
{
    ngx_http_qcc_rc_ctx_t *ctx = data;

    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_qcc_queue_t     *q;
    ngx_http_qcc_order_t     *o;
    ngx_http_qcc_rc_order_t  *ro;

    r = ctx->request;
    c = r->connection;
    ro = ctx->orders->elts;
    ro += ctx->next;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ro->order_no,
                                         ro->len);
    if (o) {
        if (rc == NGX_OK) {
            o->durable = 1;

        } else if (!o->durable) {
            ngx_http_qcc_order_remove_locked(q, o);
        }
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    if (rc == NGX_OK) {
        ctx->added++;

        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
                      "qcc: reconcile %V: order \"%*s\" was never pushed, "
                      "queued", &ngx_http_qcc_feed_names[ctx->feed],
                      ro->len, ro->order_no);

        ngx_http_qcc_fetch_wake(ctx->feed, ro->order_no, ro->len);
        ctx->next++;

    } else {
        ngx_http_qcc_rc_fail(ctx, NULL, 0, "journal write failed");
    }

    ctx->waiting = 0;

    ngx_http_qcc_rc_run(r, ctx);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_qcc_rc_activated(ngx_http_request_t *sr, ngx_http_qcc_rc_ctx_t *ctx)
{
    cJSON                 *root, *status;
    size_t                 len;
    ngx_buf_t             *b;
    ngx_http_qcc_queue_t  *q;

    b = sr->out->buf;
    root = cJSON_ParseWithLength((char *) b->pos, b->last - b->pos);
    status = cJSON_GetObjectItemCaseSensitive(root, "status");

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    if (cJSON_IsString(status) && ngx_strcmp(status->valuestring, "200") == 0)
    {
        q->sh->activated[ctx->feed] = ngx_time();
        q->sh->callback_failed[ctx->feed] = 0;
        (void) ngx_atomic_fetch_add(&q->sh->activations[ctx->feed], 1);

        ngx_log_error(NGX_LOG_NOTICE, ctx->request->connection->log, 0,
                      "qcc: %V callback re-activated at QCC",
                      &ngx_http_qcc_feed_names[ctx->feed]);

        ctx->step = NGX_HTTP_QCC_RC_DONE;
        cJSON_Delete(root);
        return NGX_OK;
    }

    len = cJSON_IsString(status) ? ngx_min(ngx_strlen(status->valuestring), 7)
                                 : 0;

    ngx_http_qcc_rc_fail(ctx, len ? (u_char *) status->valuestring : NULL,
                         len, "activate call: %s",
                         len ? ngx_http_qcc_status_meaning(
                                   (u_char *) status->valuestring, len)
                             : "not QCC's JSON");
    cJSON_Delete(root);

    return NGX_ERROR;
}


static void
ngx_http_qcc_rc_fail(ngx_http_qcc_rc_ctx_t *ctx, u_char *code,
    size_t code_len, const char *fmt, ...)
{
    va_list  args;

    ctx->failed = 1;
    ctx->step = NGX_HTTP_QCC_RC_DONE;

    ctx->code_len = ngx_min(code_len, sizeof(ctx->code));
    if (code) {
        ngx_memcpy(ctx->code, code, ctx->code_len);
    }

    va_start(args, fmt);
    ctx->msg_len = ngx_vslprintf(ctx->msg, ctx->msg + sizeof(ctx->msg), fmt,
                                 args)
                   - ctx->msg;
    va_end(args);
}


/* records the run in the zone, backs off after QCC's errors, answers */

static void
ngx_http_qcc_rc_finish(ngx_http_request_t *r, ngx_http_qcc_rc_ctx_t *ctx)
{
    time_t                 now, delay;
    u_char                 body[256], *p;
    ngx_uint_t             f, i;
    ngx_http_qcc_queue_t  *q;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);
    now = ngx_time();
    f = ctx->feed;

    ngx_shmtx_lock(&q->shpool->mutex);

    q->sh->reconcile_last[f] = now;
    q->sh->reconcile_started[f] = 0;
    q->sh->reconcile_ok[f] = !ctx->failed;
    q->sh->reconcile_found[f] = ctx->added;

    ngx_memzero(q->sh->reconcile_code[f], sizeof(q->sh->reconcile_code[f]));
    ngx_memcpy(q->sh->reconcile_code[f], ctx->code,
               ngx_min(ctx->code_len, sizeof(q->sh->reconcile_code[f]) - 1));
    ngx_memzero(q->sh->reconcile_msg[f], sizeof(q->sh->reconcile_msg[f]));
    ngx_memcpy(q->sh->reconcile_msg[f], ctx->msg,
               ngx_min(ctx->msg_len, sizeof(q->sh->reconcile_msg[f]) - 1));

    if (ctx->failed) {
        q->sh->reconcile_errors[f]++;

        /* back off: a tenth of the interval, doubling, up to it */
        delay = ngx_max(ctx->fcf->reconcile / 10, 1);
        for (i = 1; i < q->sh->reconcile_errors[f]
                    && delay < ctx->fcf->reconcile; i++)
        {
            delay *= 2;
        }

        q->sh->reconcile_next[f] = now + ngx_min(delay, ctx->fcf->reconcile);

    } else {
        q->sh->reconcile_errors[f] = 0;
        q->sh->reconcile_next[f] = now + ctx->fcf->reconcile;
    }

    (void) ngx_atomic_fetch_add(&q->sh->reconcile_runs[f][ctx->failed], 1);

    ngx_shmtx_unlock(&q->shpool->mutex);

    if (ctx->failed) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "qcc: reconcile %V failed: %*s%s%*s",
                      &ngx_http_qcc_feed_names[f], ctx->msg_len, ctx->msg,
                      ctx->code_len ? ", status " : "", ctx->code_len,
                      ctx->code);

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "qcc: reconcile %V: %ui listed, %ui never pushed",
                      &ngx_http_qcc_feed_names[f], ctx->listed, ctx->added);
    }

    p = ngx_snprintf(body, sizeof(body),
                     "{\"status\":\"%s\",\"msg\":\"%ui listed, %ui queued\"}",
                     ctx->failed ? "502" : "200", ctx->listed, ctx->added);

    ngx_http_finalize_request(r,
        ngx_http_qcc_send_json(r, ctx->failed ? NGX_HTTP_BAD_GATEWAY
                                              : NGX_HTTP_OK,
                               body, p - body));
}


static const char *
ngx_http_qcc_status_meaning(u_char *code, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_qcc_status_meanings[i].code; i++) {
        if (len == 3
            && ngx_strncmp(ngx_http_qcc_status_meanings[i].code, code, 3)
               == 0)
        {
            return ngx_http_qcc_status_meanings[i].meaning;
        }
    }

    return "QCC error";
}


/* --- the operator's actions on the status location ------------------------ */

ngx_int_t
ngx_http_qcc_status_action(ngx_http_request_t *r)
{
    u_char                     buf[64 + QCC_CALLBACK_ORDER_NO_MAX];
    ngx_int_t                  feed;
    ngx_str_t                  action, arg, args;
    ngx_http_qcc_queue_t      *q;
    ngx_http_qcc_order_t      *o;
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_module);
    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_NOT_ALLOWED,
                                         "actions are POST requests");
    }

    if (q == NULL || qmcf->fetch == NULL) {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_CONFLICT,
                                         "no queue or no driver "
                                         "configured");
    }

    (void) ngx_http_arg(r, (u_char *) "action", 6, &action);

    feed = NGX_HTTP_QCC_FEED_NONE;

    if (ngx_http_arg(r, (u_char *) "feed", 4, &arg) == NGX_OK) {
        feed = ngx_http_qcc_feed_index(arg.data, arg.len);
    }

    if (feed == NGX_HTTP_QCC_FEED_NONE) {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_BAD_REQUEST,
                                         "feed must be dd_risk_mnr or "
                                         "dd_corp_monitor");
    }

    if (action.len == 9 && ngx_strncmp(action.data, "reconcile", 9) == 0) {

        if (qmcf->fetch->pull.len == 0) {
            return ngx_http_qcc_action_reply(r, NGX_HTTP_CONFLICT,
                                             "no pull location to "
                                             "reconcile through");
        }

        args.data = buf;
        args.len = ngx_sprintf(buf, "action=reconcile&feed=%V",
                               &ngx_http_qcc_feed_names[feed])
                   - buf;

        ngx_http_qcc_driver_kick((ngx_cycle_t *) ngx_cycle, &args);

        return ngx_http_qcc_action_reply(r, NGX_HTTP_ACCEPTED,
                                         "reconcile started");
    }

    if (action.len != 5 || ngx_strncmp(action.data, "retry", 5) != 0) {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_BAD_REQUEST,
                                         "action must be retry or "
                                         "reconcile");
    }

    if (ngx_http_arg(r, (u_char *) "orderNo", 7, &arg) != NGX_OK
        || qcc_callback_check_order_no(arg.data, arg.len) != QCC_CALLBACK_OK)
    {
        return ngx_http_qcc_action_reply(r, NGX_HTTP_BAD_REQUEST,
                                         "orderNo must be 1 to 64 of "
                                         "[A-Za-z0-9_-]");
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, feed, arg.data, arg.len);

    if (o == NULL) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return ngx_http_qcc_action_reply(r, NGX_HTTP_NOT_FOUND,
                                         "no such order");
    }

    if (o->state != NGX_HTTP_QCC_FAILED) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return ngx_http_qcc_action_reply(r, NGX_HTTP_CONFLICT,
                                         "only a failed order is retried");
    }

    /* a fresh start, with a fresh link */
    o->attempts = 0;
    o->next_try = ngx_time();
    o->expires = 0;
    o->error_len = 0;
    ngx_http_qcc_order_set_state_locked(q, o, NGX_HTTP_QCC_QUEUED);
    (void) ngx_http_qcc_journal_link_locked(q, o, r->connection->log);
    (void) ngx_http_qcc_journal_state_locked(q, o, r->connection->log);

    ngx_shmtx_unlock(&q->shpool->mutex);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "qcc: %V order \"%V\" queued again by the operator",
                  &ngx_http_qcc_feed_names[feed], &arg);

    ngx_http_qcc_fetch_wake(feed, arg.data, arg.len);

    return ngx_http_qcc_action_reply(r, NGX_HTTP_OK, "queued again");
}


static ngx_int_t
ngx_http_qcc_action_reply(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    u_char  body[160], *p;

    if (status == NGX_HTTP_NOT_ALLOWED
        && ngx_http_qcc_add_header(r, "Allow", "GET, POST") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(body, sizeof(body), "{\"status\":\"%ui\",\"msg\":\"%s\"}",
                     status, msg);

    return ngx_http_qcc_send_json(r, status, body, p - body);
}
