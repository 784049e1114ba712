/*
 * The status endpoint: the queue per feed and the newest orders as JSON,
 * or the counters in Prometheus text format (?format=prometheus).
 * Never a password, never a URL.
 */

#include "ngx_http_qcc_module.h"
#include "ngx_http_qcc_policy.h"
#include "ngx_http_qcc_metrics.h"


#define NGX_HTTP_QCC_STATUS_LIMIT      100
#define NGX_HTTP_QCC_STATUS_LIMIT_MAX  1000

/* one order's JSON line at most, error text escaped included */
#define NGX_HTTP_QCC_ORDER_JSON_MAX                                          \
    (256 + QCC_CALLBACK_ORDER_NO_MAX + 6 * NGX_HTTP_QCC_ERROR_MAX)


static ngx_int_t ngx_http_qcc_status_json(ngx_http_request_t *r,
    ngx_http_qcc_queue_t *q, ngx_uint_t limit);
static ngx_int_t ngx_http_qcc_status_prometheus(ngx_http_request_t *r,
    ngx_http_qcc_queue_t *q);
static u_char *ngx_http_qcc_status_time(u_char *p, time_t t);
static ngx_int_t ngx_http_qcc_status_send(ngx_http_request_t *r,
    ngx_buf_t *b, char *type);


static char  *ngx_http_qcc_outcome_names[NGX_HTTP_QCC_CB_OUTCOMES] = {
    "ok", "duplicate", "refused", "error"
};

static char  *ngx_http_qcc_source_names[] = { "push", "reconcile" };


ngx_int_t
ngx_http_qcc_status_handler(ngx_http_request_t *r)
{
    ngx_int_t              rc, limit;
    ngx_str_t              value;
    ngx_http_qcc_queue_t  *q;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the operator's actions: retry a failed order, reconcile now */
    if (r->method == NGX_HTTP_POST
        || ngx_http_arg(r, (u_char *) "action", 6, &value) == NGX_OK)
    {
        return ngx_http_qcc_status_action(r);
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK
        && value.len == 10
        && ngx_strncmp(value.data, "prometheus", 10) == 0)
    {
        return ngx_http_qcc_status_prometheus(r, q);
    }

    limit = NGX_HTTP_QCC_STATUS_LIMIT;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);
        if (limit == NGX_ERROR) {
            limit = NGX_HTTP_QCC_STATUS_LIMIT;
        }

        limit = ngx_min(limit, NGX_HTTP_QCC_STATUS_LIMIT_MAX);
    }

    return ngx_http_qcc_status_json(r, q, limit);
}


static ngx_int_t
ngx_http_qcc_status_json(ngx_http_request_t *r, ngx_http_qcc_queue_t *q,
    ngx_uint_t limit)
{
    size_t                 size;
    ngx_buf_t             *b;
    ngx_uint_t             f, s, n;
    ngx_queue_t           *qu;
    ngx_http_qcc_order_t  *o;

    size = 256 + NGX_HTTP_QCC_FEEDS * (1536 + NGX_HTTP_QCC_STATES * 48)
           + limit * NGX_HTTP_QCC_ORDER_JSON_MAX;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"time\":");
    b->last = ngx_http_qcc_status_time(b->last, ngx_time());
    b->last = ngx_sprintf(b->last, ",\"feeds\":{");

    if (q == NULL) {
        b->last = ngx_sprintf(b->last, "},\"orders\":[]}\n");
        return ngx_http_qcc_status_send(r, b, "application/json");
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        b->last = ngx_sprintf(b->last, "%s\"%V\":{", f ? "," : "",
                              &ngx_http_qcc_feed_names[f]);

        for (s = 0; s < NGX_HTTP_QCC_STATES; s++) {
            b->last = ngx_sprintf(b->last, "\"%V\":%ui,",
                                  &ngx_http_qcc_state_names[s],
                                  q->sh->count[f][s]);
        }

        b->last = ngx_sprintf(b->last, "\"last_push\":");
        b->last = ngx_http_qcc_status_time(b->last, q->sh->last_push[f]);

        b->last = ngx_sprintf(b->last, ",\"reconcile\":{\"last\":");
        b->last = ngx_http_qcc_status_time(b->last,
                                           q->sh->reconcile_last[f]);
        b->last = ngx_sprintf(b->last, ",\"next\":");
        b->last = ngx_http_qcc_status_time(b->last,
                                           q->sh->reconcile_next[f]);
        b->last = ngx_sprintf(b->last,
                              ",\"outcome\":\"%s\",\"code\":\"%s\","
                              "\"msg\":\"",
                              q->sh->reconcile_last[f] == 0 ? "none"
                              : q->sh->reconcile_ok[f] ? "ok" : "error",
                              q->sh->reconcile_code[f]);
        b->last = (u_char *) ngx_escape_json(b->last,
                                 q->sh->reconcile_msg[f],
                                 ngx_strlen(q->sh->reconcile_msg[f]));
        b->last = ngx_sprintf(b->last,
                              "\",\"found\":%ui,\"errors\":%ui,"
                              "\"activated\":",
                              q->sh->reconcile_found[f],
                              q->sh->reconcile_errors[f]);
        b->last = ngx_http_qcc_status_time(b->last, q->sh->activated[f]);
        b->last = ngx_sprintf(b->last, "}");

        b->last = ngx_sprintf(b->last, ",\"callbacks\":{");

        for (s = 0; s < NGX_HTTP_QCC_CB_OUTCOMES; s++) {
            b->last = ngx_sprintf(b->last, "%s\"%s\":%uA", s ? "," : "",
                                  ngx_http_qcc_outcome_names[s],
                                  q->sh->callbacks[f][s]);
        }

        b->last = ngx_sprintf(b->last, "}}");
    }

    b->last = ngx_sprintf(b->last, "},\"orders\":[");

    n = 0;

    for (qu = ngx_queue_head(&q->sh->orders);
         qu != ngx_queue_sentinel(&q->sh->orders) && n < limit;
         qu = ngx_queue_next(qu))
    {
        o = ngx_queue_data(qu, ngx_http_qcc_order_t, queue);

        b->last = ngx_sprintf(b->last,
                              "%s\n{\"feed\":\"%V\",\"orderNo\":\"%*s\","
                              "\"state\":\"%V\",\"source\":\"%s\","
                              "\"attempts\":%uD,\"received\":",
                              n ? "," : "",
                              &ngx_http_qcc_feed_names[o->feed],
                              (size_t) o->order_no_len, o->order_no,
                              &ngx_http_qcc_state_names[o->state],
                              ngx_http_qcc_source_names[o->source],
                              o->attempts);
        b->last = ngx_http_qcc_status_time(b->last, o->received);
        b->last = ngx_sprintf(b->last, ",\"updated\":");
        b->last = ngx_http_qcc_status_time(b->last, o->updated);
        b->last = ngx_sprintf(b->last, ",\"last_error\":");

        if (o->error_len) {
            *b->last++ = '"';
            b->last = (u_char *) ngx_escape_json(b->last, o->error,
                                                 o->error_len);
            *b->last++ = '"';

        } else {
            b->last = ngx_sprintf(b->last, "null");
        }

        *b->last++ = '}';
        n++;
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    b->last = ngx_sprintf(b->last, "]}\n");

    return ngx_http_qcc_status_send(r, b, "application/json");
}


static ngx_int_t
ngx_http_qcc_status_prometheus(ngx_http_request_t *r,
    ngx_http_qcc_queue_t *q)
{
    size_t       size;
    ngx_buf_t   *b;
    ngx_uint_t   f, s;

    size = 4096 + NGX_HTTP_QCC_FEEDS
                  * (NGX_HTTP_QCC_STATES + NGX_HTTP_QCC_CB_OUTCOMES + 2)
                  * 128;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (q == NULL) {
        /* an empty body would be a zero-size buffer: say why instead */
        b->last = ngx_sprintf(b->last, "# no qcc_queue is configured\n");
        return ngx_http_qcc_status_send(r, b, "text/plain; version=0.0.4");
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_orders Orders in the queue by feed and state.\n"
                  "# TYPE qcc_orders gauge\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        for (s = 0; s < NGX_HTTP_QCC_STATES; s++) {
            b->last = ngx_sprintf(b->last,
                                  "qcc_orders{feed=\"%V\",state=\"%V\"} %ui\n",
                                  &ngx_http_qcc_feed_names[f],
                                  &ngx_http_qcc_state_names[s],
                                  q->sh->count[f][s]);
        }
    }

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_callbacks_total Push callbacks answered, "
                  "by feed and outcome.\n"
                  "# TYPE qcc_callbacks_total counter\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        for (s = 0; s < NGX_HTTP_QCC_CB_OUTCOMES; s++) {
            b->last = ngx_sprintf(b->last,
                              "qcc_callbacks_total{feed=\"%V\",outcome=\"%s\"}"
                              " %uA\n",
                              &ngx_http_qcc_feed_names[f],
                              ngx_http_qcc_outcome_names[s],
                              q->sh->callbacks[f][s]);
        }
    }

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_last_push_timestamp_seconds Time of the last "
                  "push callback, by feed.\n"
                  "# TYPE qcc_last_push_timestamp_seconds gauge\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        b->last = ngx_sprintf(b->last,
                              "qcc_last_push_timestamp_seconds{feed=\"%V\"} "
                              "%T\n",
                              &ngx_http_qcc_feed_names[f],
                              q->sh->last_push[f]);
    }

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_orders_evicted_total Delivered orders dropped "
                  "from the zone to make room.\n"
                  "# TYPE qcc_orders_evicted_total counter\n"
                  "qcc_orders_evicted_total %ui\n", q->sh->evicted);

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_reconcile_runs_total Reconciliations with "
                  "QCC's order lists, by feed and outcome.\n"
                  "# TYPE qcc_reconcile_runs_total counter\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        b->last = ngx_sprintf(b->last,
                      "qcc_reconcile_runs_total{feed=\"%V\",outcome=\"ok\"} "
                      "%uA\n"
                      "qcc_reconcile_runs_total{feed=\"%V\","
                      "outcome=\"error\"} %uA\n",
                      &ngx_http_qcc_feed_names[f],
                      q->sh->reconcile_runs[f][0],
                      &ngx_http_qcc_feed_names[f],
                      q->sh->reconcile_runs[f][1]);
    }

    b->last = ngx_sprintf(b->last,
                  "# HELP qcc_callback_activations_total Calls that "
                  "re-activated QCC's pushes, by feed.\n"
                  "# TYPE qcc_callback_activations_total counter\n");

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        b->last = ngx_sprintf(b->last,
                      "qcc_callback_activations_total{feed=\"%V\"} %uA\n",
                      &ngx_http_qcc_feed_names[f], q->sh->activations[f]);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    return ngx_http_qcc_status_send(r, b, "text/plain; version=0.0.4");
}


/* ISO 8601 in UTC, or null */

static u_char *
ngx_http_qcc_status_time(u_char *p, time_t t)
{
    ngx_tm_t  tm;

    if (t == 0) {
        return ngx_cpymem(p, "null", 4);
    }

    ngx_gmtime(t, &tm);

    return ngx_sprintf(p, "\"%4d-%02d-%02dT%02d:%02d:%02dZ\"",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}


static ngx_int_t
ngx_http_qcc_status_send(ngx_http_request_t *r, ngx_buf_t *b, char *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    /* per-app policy (ngx_http_qcc_policy.c): its section, appended */
    b = ngx_http_qcc_policy_status(r, b,
                                   ngx_strncmp(type, "text/plain", 10) == 0);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* per-request and delivery metrics (ngx_http_qcc_metrics.c) */
    b = ngx_http_qcc_metrics_status(r, b,
                                    ngx_strncmp(type, "text/plain", 10) == 0);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
