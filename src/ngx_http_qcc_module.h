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
#include "qcc_callback.h"


#define NGX_HTTP_QCC_SECRET_MAX       1024
#define NGX_HTTP_QCC_ERROR_MAX        160

/* feeds: the index of each in every per-feed array */
#define NGX_HTTP_QCC_FEED_NONE        -1
#define NGX_HTTP_QCC_FEED_RISK        0     /* dd_risk_mnr */
#define NGX_HTTP_QCC_FEED_CORP        1     /* dd_corp_monitor */
#define NGX_HTTP_QCC_FEEDS            2

/* order states, in the order of an order's life */
#define NGX_HTTP_QCC_QUEUED           0
#define NGX_HTTP_QCC_DOWNLOADING      1
#define NGX_HTTP_QCC_UNPACKING        2
#define NGX_HTTP_QCC_DELIVERED        3
#define NGX_HTTP_QCC_FAILED           4
#define NGX_HTTP_QCC_STATES           5

/* where an order came from */
#define NGX_HTTP_QCC_SOURCE_PUSH      0
#define NGX_HTTP_QCC_SOURCE_RECONCILE 1

/* callback outcomes counted in the zone */
#define NGX_HTTP_QCC_CB_OK            0
#define NGX_HTTP_QCC_CB_DUPLICATE     1
#define NGX_HTTP_QCC_CB_REFUSED       2
#define NGX_HTTP_QCC_CB_ERROR         3
#define NGX_HTTP_QCC_CB_OUTCOMES      4

/* buckets of the push-to-delivered histogram (ngx_http_qcc_metrics.c) */
#define NGX_HTTP_QCC_DELIVERY_BUCKETS 10


/*
 * An order in the shared zone.  The URL is a separate slab allocation, as
 * a refreshed link replaces it; everything else is inline.
 */
typedef struct ngx_http_qcc_order_s  ngx_http_qcc_order_t;

struct ngx_http_qcc_order_s {
    ngx_http_qcc_order_t       *next;         /* in its hash bucket */
    uint32_t                    hash;         /* crc32(feed, orderNo) */
    ngx_queue_t                 queue;        /* sh->orders, newest first */

    time_t                      received;
    time_t                      updated;
    time_t                      expires;      /* downloadUrlExpiredTime */
    time_t                      next_try;
    time_t                      lease_until;
    ngx_pid_t                   lease_pid;

    u_char                     *url;
    uint16_t                    url_len;
    uint16_t                    error_len;
    uint32_t                    attempts;

    uint8_t                     feed;
    uint8_t                     state;
    uint8_t                     source;
    uint8_t                     order_no_len;
    uint8_t                     password_len;
    unsigned                    durable:1;    /* its ORDER record synced */

    u_char                      order_no[QCC_CALLBACK_ORDER_NO_MAX];
    u_char                      password[QCC_CALLBACK_PASSWORD_MAX];
    u_char                      error[NGX_HTTP_QCC_ERROR_MAX];
};


typedef struct {
    /* orders by crc32(feed, orderNo): a bucket per KB of the zone */
    ngx_http_qcc_order_t      **buckets;
    ngx_uint_t                  bucket_mask;
    ngx_queue_t                 orders;

    ngx_uint_t                  count[NGX_HTTP_QCC_FEEDS]
                                     [NGX_HTTP_QCC_STATES];
    ngx_atomic_uint_t           callbacks[NGX_HTTP_QCC_FEEDS]
                                         [NGX_HTTP_QCC_CB_OUTCOMES];
    time_t                      last_push[NGX_HTTP_QCC_FEEDS];
    /* a callback was answered with an error since the last activation */
    ngx_uint_t                  callback_failed[NGX_HTTP_QCC_FEEDS];
    ngx_uint_t                  evicted;

    /* push to delivered, by feed: a histogram (ngx_http_qcc_metrics.c) */
    ngx_uint_t                  delivery[NGX_HTTP_QCC_FEEDS]
                                        [NGX_HTTP_QCC_DELIVERY_BUCKETS + 1];
    uint64_t                    delivery_sum[NGX_HTTP_QCC_FEEDS];

    ngx_uint_t                  journal_gen;  /* bumped by compaction */
    uint64_t                    journal_seq;

    /* the worker whose timer picks due orders */
    ngx_pid_t                   leader_pid;
    time_t                      leader_beat;

    ngx_atomic_uint_t           delivered_total[NGX_HTTP_QCC_FEEDS];
    ngx_atomic_uint_t           failed_total[NGX_HTTP_QCC_FEEDS];
    ngx_atomic_uint_t           retries_total[NGX_HTTP_QCC_FEEDS];
    ngx_atomic_uint_t           refreshes_total[NGX_HTTP_QCC_FEEDS];

    /* the reconciler, per feed */
    time_t                      reconcile_next[NGX_HTTP_QCC_FEEDS];
    time_t                      reconcile_last[NGX_HTTP_QCC_FEEDS];
    time_t                      reconcile_started[NGX_HTTP_QCC_FEEDS];
    time_t                      activated[NGX_HTTP_QCC_FEEDS];
    ngx_uint_t                  reconcile_errors[NGX_HTTP_QCC_FEEDS];
    ngx_uint_t                  reconcile_found[NGX_HTTP_QCC_FEEDS];
    ngx_uint_t                  reconcile_ok[NGX_HTTP_QCC_FEEDS];
    u_char                      reconcile_code[NGX_HTTP_QCC_FEEDS][8];
    u_char                      reconcile_msg[NGX_HTTP_QCC_FEEDS][96];
    ngx_atomic_uint_t           reconcile_runs[NGX_HTTP_QCC_FEEDS][2];
    ngx_atomic_uint_t           activations[NGX_HTTP_QCC_FEEDS];
} ngx_http_qcc_shctx_t;


typedef struct ngx_http_qcc_main_conf_s  ngx_http_qcc_main_conf_t;


/* the driver location: how orders are fetched, unpacked and delivered */
typedef struct {
    ngx_url_t                   driver;       /* where the workers reach it */
    ngx_str_t                   uri;          /* its location */
    ngx_str_t                   download;     /* internal download location */
    ngx_str_t                   pull;         /* internal signed location */
    ngx_str_t                   deliver;      /* internal deliver location */
    ngx_str_t                   spool;        /* directory, or empty */
    ngx_str_t                   temp;         /* directory */
    ngx_uint_t                  concurrency;
    ngx_flag_t                  cjson;        /* validate=cjson|scanner */
    time_t                      lease;
    ngx_msec_t                  timeout;
    off_t                       max_size;

    ngx_uint_t                  attempts;
    time_t                      delay;
    time_t                      max_delay;
    time_t                      deadline;

    ngx_array_t                *download_hosts;   /* of qcc_url_host_t */

    time_t                      reconcile;    /* interval, 0: off */
    ngx_uint_t                  feeds[NGX_HTTP_QCC_FEEDS];  /* have a
                                                               callback */
} ngx_http_qcc_fetch_conf_t;


typedef struct {
    ngx_http_qcc_shctx_t       *sh;
    ngx_slab_pool_t            *shpool;
    ngx_cycle_t                *cycle;       /* the cycle being configured */
    ngx_http_qcc_main_conf_t   *qmcf;
} ngx_http_qcc_queue_t;


struct ngx_http_qcc_main_conf_s {
    ngx_shm_zone_t             *queue_zone;
    ngx_str_t                   journal;      /* the journal's full path */
    ngx_str_t                   thread_pool_name;
    ngx_thread_pool_t          *thread_pool;
    ngx_str_t                   unpack_pool_name;
    ngx_thread_pool_t          *unpack_pool;      /* thread_pool if unset */
    size_t                      journal_compact;   /* size threshold */
    time_t                      journal_retention;
    ngx_array_t                *protected_logs;   /* of ngx_log_t * */
    ngx_http_qcc_fetch_conf_t  *fetch;        /* the driver, if any */
    ngx_uint_t                  callbacks[NGX_HTTP_QCC_FEEDS];
};


typedef struct {
    ngx_str_t                   key;          /* the AppKey */
    ngx_str_t                   key_arg;      /* "key=<escaped AppKey>" */
    ngx_str_t                   secret;       /* the SecretKey */

    /* the last second signed in this worker, and its Token */
    time_t                      signed_sec;
    u_char                      signed_ts[QCC_TIMESPAN_MAX];
    size_t                      signed_ts_len;
    u_char                      signed_token[QCC_TOKEN_LEN];

    ngx_flag_t                  sign;
    u_char                     *sign_file;    /* where "qcc_sign on" was */
    ngx_uint_t                  sign_line;

    ngx_int_t                   callback;     /* feed, or FEED_NONE */
    ngx_array_t                *download_hosts;   /* of qcc_url_host_t */
    size_t                      callback_max_body;
    ngx_flag_t                  status;

    ngx_http_qcc_fetch_conf_t  *fetch;        /* set in the driver location */
    ngx_str_t                   spool;
    ngx_str_t                   deliver;
} ngx_http_qcc_loc_conf_t;


typedef struct {
    u_char                      timespan[QCC_TIMESPAN_MAX];
    size_t                      timespan_len;
    u_char                      token[QCC_TOKEN_LEN];
    unsigned                    signed_:1;    /* timespan and token valid */
} ngx_http_qcc_ctx_t;


extern ngx_module_t  ngx_http_qcc_module;
extern ngx_str_t     ngx_http_qcc_feed_names[NGX_HTTP_QCC_FEEDS];
extern ngx_str_t     ngx_http_qcc_state_names[NGX_HTTP_QCC_STATES];


ngx_http_qcc_ctx_t *ngx_http_qcc_get_ctx(ngx_http_request_t *r);
ngx_http_qcc_ctx_t *ngx_http_qcc_sign_values(ngx_http_request_t *r,
    ngx_http_qcc_loc_conf_t *qlcf);
ngx_int_t ngx_http_qcc_sign_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_qcc_sign_add_variables(ngx_conf_t *cf);
ngx_uint_t ngx_http_qcc_has_credentials(ngx_http_request_t *r);
ngx_int_t ngx_http_qcc_headers_without_credentials(ngx_http_request_t *r,
    ngx_list_t *headers, ngx_uint_t extra);

/* the shared queue */
char *ngx_http_qcc_queue_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_qcc_order_t *ngx_http_qcc_order_lookup_locked(
    ngx_http_qcc_queue_t *q, ngx_uint_t feed, u_char *order_no, size_t len);
ngx_http_qcc_order_t *ngx_http_qcc_order_add_locked(ngx_http_qcc_queue_t *q,
    ngx_uint_t feed, u_char *order_no, size_t order_no_len);
void ngx_http_qcc_order_remove_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o);
ngx_int_t ngx_http_qcc_order_set_url_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, u_char *url, size_t len);
void ngx_http_qcc_order_set_state_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_uint_t state);
void ngx_http_qcc_order_set_error(ngx_http_qcc_order_t *o, u_char *text,
    size_t len);
ngx_http_qcc_queue_t *ngx_http_qcc_queue_get(ngx_cycle_t *cycle);
ngx_int_t ngx_http_qcc_feed_index(u_char *name, size_t len);

ngx_int_t ngx_http_qcc_add_variables(ngx_conf_t *cf,
    ngx_http_variable_t *vars);
ngx_int_t ngx_http_qcc_parse_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size);
ngx_http_request_t *ngx_http_qcc_subrequest(ngx_http_request_t *r,
    ngx_str_t *uri, ngx_str_t *args, ngx_uint_t flags,
    ngx_http_post_subrequest_pt handler, void *data);
ngx_int_t ngx_http_qcc_pull_uri(ngx_pool_t *pool, ngx_str_t *pull,
    ngx_str_t *call, ngx_str_t *uri);

/* logs */
ngx_int_t ngx_http_qcc_log_init(ngx_conf_t *cf);
void ngx_http_qcc_log_mask_request(ngx_http_request_t *r);
void ngx_http_qcc_log_masked_request(ngx_http_request_t *r);
ngx_int_t ngx_http_qcc_log_protect(ngx_array_t *protected, ngx_log_t *log);
void ngx_http_qcc_log_unprotect(ngx_array_t *protected);
void ngx_http_qcc_log_init_process(void);
void ngx_http_qcc_log_warn(ngx_log_t *log, u_char *msg, size_t len);
void ngx_http_qcc_log_flush(void);

/* responses */
ngx_int_t ngx_http_qcc_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);
ngx_int_t ngx_http_qcc_add_header(ngx_http_request_t *r, char *key,
    char *value);

/* the callback and status content handlers */
ngx_int_t ngx_http_qcc_callback_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_qcc_status_handler(ngx_http_request_t *r);

/*
 * The driver's request contexts (under ngx_http_qcc_fetch_filter_module)
 * start with their kind, so the filter and the variables read only theirs.
 */
#define NGX_HTTP_QCC_CTX_FETCH        1
#define NGX_HTTP_QCC_CTX_RECONCILE    2


/* a download link, as getDownloadUrl gives it */
typedef struct {
    ngx_str_t                   url;
    u_char                      password[QCC_CALLBACK_PASSWORD_MAX];
    size_t                      password_len;
    time_t                      expires;
    u_char                      status[8];    /* QCC's business status */
    size_t                      status_len;
} ngx_http_qcc_link_t;


/* fetching orders */
extern ngx_module_t  ngx_http_qcc_fetch_filter_module;

char *ngx_http_qcc_fetch_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_qcc_retry_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_qcc_reconcile_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_qcc_fetch_merge(ngx_conf_t *cf, ngx_http_qcc_loc_conf_t *prev,
    ngx_http_qcc_loc_conf_t *conf);
ngx_int_t ngx_http_qcc_fetch_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_qcc_fetch_init_process(ngx_cycle_t *cycle);
void ngx_http_qcc_fetch_wake(ngx_uint_t feed, u_char *order_no, size_t len);
ngx_int_t ngx_http_qcc_fetch_add_variables(ngx_conf_t *cf);
void ngx_http_qcc_driver_kick(ngx_cycle_t *cycle, ngx_str_t *args);
ngx_int_t ngx_http_qcc_parse_link(ngx_http_request_t *sr, ngx_pool_t *pool,
    ngx_array_t *hosts, ngx_http_qcc_link_t *link);

/* reconciling with QCC's lists */
ngx_int_t ngx_http_qcc_reconcile_handler(ngx_http_request_t *r,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_uint_t feed);
void ngx_http_qcc_reconcile_tick_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_uint_t *due);
ngx_int_t ngx_http_qcc_status_action(ngx_http_request_t *r);

/* the journal */
typedef void (*ngx_http_qcc_journal_done_pt)(void *data, ngx_int_t rc);

ngx_int_t ngx_http_qcc_journal_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_qcc_journal_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_qcc_journal_order(ngx_http_qcc_queue_t *q,
    ngx_uint_t feed, u_char *order_no, size_t len, ngx_log_t *log,
    ngx_http_qcc_journal_done_pt done, void *data);
ngx_int_t ngx_http_qcc_journal_state_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_log_t *log);
ngx_int_t ngx_http_qcc_journal_link_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_log_t *log);
ngx_int_t ngx_http_qcc_journal_replay(ngx_cycle_t *cycle,
    ngx_http_qcc_queue_t *q, ngx_http_qcc_main_conf_t *qmcf);


#endif /* _NGX_HTTP_QCC_MODULE_H_INCLUDED_ */
