/*
 * ngx_http_qcc_metrics_module: per-request metrics of the proxied QCC
 * calls, the $qcc_status, $qcc_feed and $qcc_order_no variables, and the
 * push-to-delivered histogram of the queue zone.
 */

#ifndef _NGX_HTTP_QCC_METRICS_H_INCLUDED_
#define _NGX_HTTP_QCC_METRICS_H_INCLUDED_


#include "ngx_http_qcc_module.h"


extern ngx_module_t  ngx_http_qcc_metrics_module;


/*
 * Adds the metrics to a Prometheus status answer in b (JSON answers are
 * left as they are).  Returns b, a larger copy of it, or NULL on memory
 * exhaustion.
 */
ngx_buf_t *ngx_http_qcc_metrics_status(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t prometheus);

/* An order was delivered seconds after its push; the zone mutex held. */
void ngx_http_qcc_metrics_delivered_locked(ngx_http_qcc_shctx_t *sh,
    ngx_uint_t feed, time_t seconds);


#endif /* _NGX_HTTP_QCC_METRICS_H_INCLUDED_ */
