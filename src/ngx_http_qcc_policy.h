/*
 * ngx_http_qcc_policy_module: which internal app may call which QCC API
 * families, daily call budgets, usage per app.  What the status endpoint
 * calls.
 */

#ifndef _NGX_HTTP_QCC_POLICY_H_INCLUDED_
#define _NGX_HTTP_QCC_POLICY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


extern ngx_module_t  ngx_http_qcc_policy_module;


/*
 * Adds the policy section to a status answer in b: for JSON (b ends with
 * the closing "}\n" of the top object) a "policy" member, for Prometheus
 * text the qcc_policy_* metrics.  Returns b, a larger copy of it, or NULL
 * on memory exhaustion; b unchanged when no policy zone is configured.
 */
ngx_buf_t *ngx_http_qcc_policy_status(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t prometheus);


#endif /* _NGX_HTTP_QCC_POLICY_H_INCLUDED_ */
