/*
 * ngx_http_qcc_module: the Qichacha Pro API behind nginx.
 * Shared types and prototypes of the nginx glue.
 */

#ifndef _NGX_HTTP_QCC_MODULE_H_INCLUDED_
#define _NGX_HTTP_QCC_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "qcc_sign.h"


#define NGX_HTTP_QCC_SECRET_MAX  1024


typedef struct {
    ngx_str_t                   key;          /* the AppKey */
    ngx_str_t                   key_arg;      /* "key=<escaped AppKey>" */
    ngx_str_t                   secret;       /* the SecretKey */

    ngx_flag_t                  sign;
    u_char                     *sign_file;    /* where "qcc_sign on" was */
    ngx_uint_t                  sign_line;
} ngx_http_qcc_loc_conf_t;


typedef struct {
    u_char                      timespan[QCC_TIMESPAN_MAX];
    size_t                      timespan_len;
    u_char                      token[QCC_TOKEN_LEN];
    unsigned                    signed_:1;    /* timespan and token valid */
} ngx_http_qcc_ctx_t;


extern ngx_module_t  ngx_http_qcc_module;


ngx_http_qcc_ctx_t *ngx_http_qcc_get_ctx(ngx_http_request_t *r);
ngx_http_qcc_ctx_t *ngx_http_qcc_sign_values(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf);
ngx_int_t ngx_http_qcc_sign_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_qcc_sign_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_QCC_MODULE_H_INCLUDED_ */
