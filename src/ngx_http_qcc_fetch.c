/*
 * Driving orders to delivery.
 *
 * A timer in every worker elects one leader through the zone; the leader
 * picks due orders.  Each order is worked on by a request to the driver
 * location (qcc_fetch), which a worker sends to nginx itself over
 * loopback: that request owns the order through a lease in the zone and
 * runs every step as an ordinary subrequest through the operator's own
 * locations, so TLS, resolver, timeouts and proxy settings are theirs:
 *
 *   pull      the signed getDownloadUrl call, when the link expired or
 *             OSS refused it (a new link and password)
 *   download  proxy_pass $qcc_download_url; proxy_store
 *             $qcc_download_file (complete or not at all)
 *   unpack    in the thread pool: decrypt, inflate, validate, spool
 *   deliver   a POST of the JSON file to the operator's location
 *
 * A fresh callback wakes the driver at once; retries, orders replayed
 * from the journal and reconciled orders go through the leader's timer.
 */

#include "ngx_http_qcc_module.h"
#include "ngx_http_qcc_metrics.h"
#include "qcc_unpack.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sched.h>


#define NGX_HTTP_QCC_TICK           1000
#define NGX_HTTP_QCC_LEADER_STALE   5
#define NGX_HTTP_QCC_REDIRECTS      3
#define NGX_HTTP_QCC_KICKS_MAX      64

/* what the driver does next */
#define NGX_HTTP_QCC_STEP_PULL      1
#define NGX_HTTP_QCC_STEP_DOWNLOAD  2
#define NGX_HTTP_QCC_STEP_UNPACK    3
#define NGX_HTTP_QCC_STEP_DELIVER   4
#define NGX_HTTP_QCC_STEP_DONE      5

/* how an attempt ended */
#define NGX_HTTP_QCC_DONE_OK        0
#define NGX_HTTP_QCC_DONE_RETRY     1
#define NGX_HTTP_QCC_DONE_FAIL      2


typedef struct {
    ngx_uint_t                  kind;         /* NGX_HTTP_QCC_CTX_FETCH */
    ngx_http_request_t         *request;
    ngx_http_qcc_fetch_conf_t  *fcf;

    ngx_uint_t                  feed;
    u_char                      order_no[QCC_CALLBACK_ORDER_NO_MAX];
    size_t                      order_no_len;

    ngx_str_t                   url;          /* the link being fetched */
    u_char                      password[QCC_CALLBACK_PASSWORD_MAX];
    size_t                      password_len;
    time_t                      expires;

    ngx_str_t                   download_path;
    ngx_str_t                   unpack_path;
    ngx_str_t                   payload_path;  /* what is delivered */

    ngx_uint_t                  step;
    ngx_uint_t                  redirects;
    unsigned                    refreshed:1;
    unsigned                    spooled:1;
    unsigned                    waiting:1;     /* a subrequest or task */

    /* the last subrequest, as the filter and post handler saw it */
    ngx_http_request_t         *sr;
    ngx_uint_t                  sr_status;
    ngx_str_t                   sr_location;
    u_char                     *sr_refused;    /* static text */

    ngx_uint_t                  done;          /* NGX_HTTP_QCC_DONE_* */
    u_char                      reason[NGX_HTTP_QCC_ERROR_MAX];
    size_t                      reason_len;

    ngx_event_t                 guard;

#if (NGX_THREADS)
    qcc_unpack_job_t            job;
    qcc_unpack_result_t         res;
    char                       *spool_path;    /* rename target, or NULL */
    char                       *spool_dir;
    int                         spool_err;
    unsigned                    low_priority:1;
#endif
} ngx_http_qcc_fetch_ctx_t;


typedef struct {
    ngx_pool_t                 *pool;
    ngx_buf_t                  *out;
    u_char                      status[16];
    size_t                      status_len;
} ngx_http_qcc_kick_t;


typedef struct {
    ngx_uint_t                  feed;
    u_char                      order_no[QCC_CALLBACK_ORDER_NO_MAX];
    size_t                      order_no_len;
    time_t                      next_try;
} ngx_http_qcc_due_t;


static void ngx_http_qcc_fetch_stale_socket(ngx_conf_t *cf, ngx_url_t *u);
static void ngx_http_qcc_fetch_clean_temp(ngx_cycle_t *cycle,
    ngx_str_t *temp);
static ngx_int_t ngx_http_qcc_fetch_handler(ngx_http_request_t *r);
static void ngx_http_qcc_fetch_resume(ngx_http_request_t *r);
static void ngx_http_qcc_fetch_run(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_pull(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_pull_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_qcc_fetch_pulled(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_download(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_download_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_qcc_fetch_downloaded(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_unpack(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
#if (NGX_THREADS)
static void ngx_http_qcc_fetch_yield_cpu(void);
static void ngx_http_qcc_fetch_unpack_thread(void *data, ngx_log_t *log);
static void ngx_http_qcc_fetch_unpacked(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_qcc_fetch_deliver(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_int_t ngx_http_qcc_fetch_deliver_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_qcc_fetch_finish(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static void ngx_http_qcc_fetch_end(ngx_http_qcc_fetch_ctx_t *ctx,
    ngx_uint_t done, const char *fmt, ...);
static void ngx_http_qcc_fetch_cleanup(void *data);
static void ngx_http_qcc_fetch_guard_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_qcc_fetch_claim(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx);
static ngx_uint_t ngx_http_qcc_lease_live(ngx_http_qcc_order_t *o,
    time_t now);
static ngx_int_t ngx_http_qcc_fetch_reply(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *msg);
static ngx_int_t ngx_http_qcc_fetch_copy_url(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx, u_char *url, size_t len);

static void ngx_http_qcc_fetch_tick(ngx_event_t *ev);
static void ngx_http_qcc_kick(ngx_cycle_t *cycle,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_uint_t feed, u_char *order_no,
    size_t len);
static void ngx_http_qcc_kick_args(ngx_cycle_t *cycle,
    ngx_http_qcc_fetch_conf_t *fcf, ngx_str_t *args);
static void ngx_http_qcc_kick_write(ngx_event_t *wev);
static void ngx_http_qcc_kick_read(ngx_event_t *rev);
static void ngx_http_qcc_kick_close(ngx_connection_t *c);

static ngx_int_t ngx_http_qcc_fetch_filter_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_fetch_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_qcc_download_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

static ngx_event_t                 ngx_http_qcc_tick_event;
static ngx_http_qcc_main_conf_t   *ngx_http_qcc_fetch_qmcf;

static const char  *ngx_http_qcc_push_names[NGX_HTTP_QCC_FEEDS][2] = {
    { "dd_risk_corp.json", NULL },
    { "dd_corp.json", "corp.json" }
};

static ngx_str_t  ngx_http_qcc_pull_calls[NGX_HTTP_QCC_FEEDS] = {
    ngx_string("/api/dd_risk_mnr/getDdRiskDownloadUrl"),
    ngx_string("/api/dd_corp_monitor/getDownloadUrl")
};


/*
 * The header filter of the download subrequests is a module of its own,
 * so that its request context never meets the signing context.
 */

static ngx_http_module_t  ngx_http_qcc_fetch_filter_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_qcc_fetch_filter_init,        /* postconfiguration */
    NULL, NULL, NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_qcc_fetch_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_qcc_fetch_filter_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_qcc_fetch_vars[] = {

    { ngx_string("qcc_download_url"), NULL, ngx_http_qcc_download_variable,
      offsetof(ngx_http_qcc_fetch_ctx_t, url), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("qcc_download_file"), NULL, ngx_http_qcc_download_variable,
      offsetof(ngx_http_qcc_fetch_ctx_t, download_path),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* --- configuration ------------------------------------------------------- */

/*
 * qcc_fetch ADDRESS download=URI [pull=URI] [temp=DIR] [concurrency=N]
 *           [lease=TIME] [timeout=TIME] [max_size=SIZE];
 */

char *
ngx_http_qcc_fetch_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    time_t                      t;
    off_t                       size;
    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_qcc_main_conf_t   *qmcf;
    ngx_http_qcc_fetch_conf_t  *fcf;

    qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);

    if (qlcf->fetch) {
        return "is duplicate";
    }

    if (qmcf->fetch) {
        return "is duplicate: one driver location serves all orders";
    }

    fcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_fetch_conf_t));
    if (fcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    fcf->driver.url = value[1];
    fcf->driver.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &fcf->driver) != NGX_OK
        || fcf->driver.naddrs == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid driver address \"%V\"%s%s", &value[1],
                           fcf->driver.err ? ": " : "",
                           fcf->driver.err ? fcf->driver.err : "");
        return NGX_CONF_ERROR;
    }

    ngx_http_qcc_fetch_stale_socket(cf, &fcf->driver);

    /*
     * The scanner finds each record's id itself: the verdicts of cJSON
     * (differentially fuzzed), at four times the speed; validate=cjson
     * parses every record with cJSON as well.
     */
    fcf->cjson = 0;
    fcf->concurrency = 4;
    fcf->lease = 300;
    fcf->timeout = 600000;
    fcf->max_size = 1024 * 1024 * 1024;
    ngx_str_set(&fcf->temp, "qcc_temp");

    fcf->reconcile = NGX_CONF_UNSET;

    fcf->attempts = 10;
    fcf->delay = 30;
    fcf->max_delay = 3600;
    fcf->deadline = 3 * 86400;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "download=", 9) == 0) {
            fcf->download.data = value[i].data + 9;
            fcf->download.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pull=", 5) == 0) {
            fcf->pull.data = value[i].data + 5;
            fcf->pull.len = value[i].len - 5;
            continue;
        }

        if (ngx_strcmp(value[i].data, "validate=cjson") == 0) {
            fcf->cjson = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "validate=scanner") == 0) {
            fcf->cjson = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "temp=", 5) == 0) {
            fcf->temp.data = value[i].data + 5;
            fcf->temp.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "concurrency=", 12) == 0) {
            n = ngx_atoi(value[i].data + 12, value[i].len - 12);
            if (n == NGX_ERROR || n < 1 || n > 256) {
                goto invalid;
            }

            fcf->concurrency = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "lease=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            t = ngx_parse_time(&s, 1);
            if (t == (time_t) NGX_ERROR || t < 1) {
                goto invalid;
            }

            fcf->lease = t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1000) {
                goto invalid;
            }

            fcf->timeout = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            size = ngx_parse_offset(&s);
            if (size == NGX_ERROR || size < 1024) {
                goto invalid;
            }

            fcf->max_size = size;
            continue;
        }

        goto invalid;
    }

    if (fcf->download.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"qcc_fetch\" must have \"download\" parameter: "
                           "the internal location that downloads a link");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &fcf->temp, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_qcc_fetch_handler;
    fcf->uri = clcf->name;

    qlcf->fetch = fcf;
    qmcf->fetch = fcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * A server killed with SIGKILL leaves its unix socket behind, and the
 * next start cannot bind it.  A socket file nobody answers on is stale.
 */

static void
ngx_http_qcc_fetch_stale_socket(ngx_conf_t *cf, ngx_url_t *u)
{
#if (NGX_HAVE_UNIX_DOMAIN)
    int                  fd, rc;
    struct sockaddr_un  *sun;

    if (ngx_test_config || u->family != AF_UNIX) {
        return;
    }

    sun = (struct sockaddr_un *) u->addrs[0].sockaddr;

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd == -1) {
        return;
    }

    rc = connect(fd, (struct sockaddr *) sun, u->addrs[0].socklen);

    if (rc == -1 && ngx_socket_errno == NGX_ECONNREFUSED) {
        if (unlink(sun->sun_path) == 0) {
            ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                               "qcc: removed the stale socket \"%s\"",
                               sun->sun_path);
        }
    }

    close(fd);
#endif
}


/* qcc_retry [attempts=N] [delay=TIME] [max_delay=TIME] [deadline=TIME]; */

char *
ngx_http_qcc_retry_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    time_t                      t;
    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_http_qcc_fetch_conf_t  *fcf;

    fcf = qlcf->fetch;

    if (fcf == NULL) {
        return "must follow \"qcc_fetch\" in the driver location";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "attempts=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n < 1 || n > 1000) {
                goto invalid;
            }

            fcf->attempts = n;
            continue;
        }

        s.len = 0;

        if (ngx_strncmp(value[i].data, "delay=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "max_delay=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

        } else if (ngx_strncmp(value[i].data, "deadline=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
        }

        if (s.len == 0) {
            goto invalid;
        }

        t = ngx_parse_time(&s, 1);
        if (t == (time_t) NGX_ERROR || t < 1) {
            goto invalid;
        }

        switch (value[i].data[0]) {
        case 'd':
            if (value[i].data[2] == 'l') {
                fcf->delay = t;
            } else {
                fcf->deadline = t;
            }
            break;
        default:
            fcf->max_delay = t;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* qcc_reconcile TIME | off; */

char *
ngx_http_qcc_reconcile_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    time_t      t;
    ngx_str_t  *value;

    if (qlcf->fetch == NULL) {
        return "must follow \"qcc_fetch\" in the driver location";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        qlcf->fetch->reconcile = 0;
        return NGX_CONF_OK;
    }

    t = ngx_parse_time(&value[1], 1);
    if (t == (time_t) NGX_ERROR || t < 1) {
        return "takes a time or \"off\"";
    }

    qlcf->fetch->reconcile = t;

    return NGX_CONF_OK;
}


char *
ngx_http_qcc_fetch_merge(ngx_conf_t *cf, ngx_http_qcc_loc_conf_t *prev,
    ngx_http_qcc_loc_conf_t *conf)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    if (conf->fetch == NULL) {
        return NGX_CONF_OK;
    }

    qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);

    if (qmcf->queue_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"qcc_fetch\" needs a \"qcc_queue\" in the http "
                      "block");
        return NGX_CONF_ERROR;
    }

    conf->fetch->download_hosts = conf->download_hosts;

    if (conf->fetch->reconcile == NGX_CONF_UNSET) {
        conf->fetch->reconcile = conf->fetch->pull.len ? 600 : 0;
    }

    if (conf->fetch->reconcile && conf->fetch->pull.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"qcc_reconcile\" needs the \"pull\" parameter of "
                      "\"qcc_fetch\": the list calls are signed there");
        return NGX_CONF_ERROR;
    }

    if (conf->spool.len) {
        conf->fetch->spool = conf->spool;
    }

    if (conf->deliver.len) {
        conf->fetch->deliver = conf->deliver;
    }

    if (conf->fetch->spool.len == 0 && conf->fetch->deliver.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the \"qcc_fetch\" location needs \"qcc_spool\" or "
                      "\"qcc_deliver\", or both: orders must go somewhere");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_qcc_fetch_add_variables(ngx_conf_t *cf)
{
    return ngx_http_qcc_add_variables(cf, ngx_http_qcc_fetch_vars);
}


static ngx_int_t
ngx_http_qcc_fetch_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_qcc_fetch_header_filter;

    return NGX_OK;
}


/* the directories the workers write: created by the master for them */

static void
ngx_http_qcc_fetch_clean_temp(ngx_cycle_t *cycle, ngx_str_t *temp)
{
    u_char     path[NGX_MAX_PATH];
    ngx_dir_t  dir;
    ngx_str_t  name;

    if (temp->len + 2 > NGX_MAX_PATH) {
        return;
    }

    ngx_sprintf(path, "%V%Z", temp);

    if (ngx_open_dir(temp, &dir) == NGX_ERROR) {
        return;
    }

    while (ngx_read_dir(&dir) == NGX_OK) {
        name.data = ngx_de_name(&dir);
        name.len = ngx_de_namelen(&dir);

        if (name.data[0] == '.'
            || temp->len + name.len + 2 > NGX_MAX_PATH)
        {
            continue;
        }

        ngx_sprintf(path, "%V/%V%Z", temp, &name);

        if (ngx_delete_file(path) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "qcc: cannot remove \"%s\"", path);
        }
    }

    (void) ngx_close_dir(&dir);
}


ngx_int_t
ngx_http_qcc_fetch_init_module(ngx_cycle_t *cycle)
{
    u_char                     *p, path[NGX_MAX_PATH];
    ngx_uint_t                  i, f;
    ngx_str_t                   dirs[2];
    ngx_core_conf_t            *ccf;
    ngx_http_qcc_main_conf_t   *qmcf;
    ngx_http_qcc_fetch_conf_t  *fcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->fetch == NULL || ngx_test_config) {
        return NGX_OK;
    }

    fcf = qmcf->fetch;
    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /*
     * What a killed server left in the temp directory is removed at the
     * first start; on a reload the old workers may still be writing there.
     */
    if (ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)) {
        ngx_http_qcc_fetch_clean_temp(cycle, &fcf->temp);
    }

    dirs[0] = fcf->temp;
    dirs[1] = fcf->spool;

    for (i = 0; i < 2; i++) {
        if (dirs[i].len == 0) {
            continue;
        }

        for (f = 0; f <= NGX_HTTP_QCC_FEEDS; f++) {

            if (dirs[i].len + 32 > NGX_MAX_PATH) {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "qcc: path \"%V\" too long", &dirs[i]);
                return NGX_ERROR;
            }

            /* the directory itself, then (spool only) one per feed */
            if (f == NGX_HTTP_QCC_FEEDS) {
                p = ngx_sprintf(path, "%V%Z", &dirs[i]);

            } else if (i == 1) {
                p = ngx_sprintf(path, "%V/%V%Z", &dirs[i],
                                &ngx_http_qcc_feed_names[f]);
            } else {
                continue;
            }

            (void) p;

            if (ngx_create_full_path(path, 0750) != 0
                || (ngx_create_dir(path, 0750) == NGX_FILE_ERROR
                    && ngx_errno != NGX_EEXIST))
            {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                              "qcc: cannot create \"%s\"", path);
                return NGX_ERROR;
            }

            if (geteuid() == 0
                && chown((char *) path, ccf->user, ccf->group) == -1)
            {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                              "qcc: chown \"%s\" failed", path);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_qcc_fetch_init_process(ngx_cycle_t *cycle)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->fetch == NULL || qmcf->queue_zone == NULL) {
        return NGX_OK;
    }

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_http_qcc_fetch_qmcf = qmcf;
    ngx_memcpy(qmcf->fetch->feeds, qmcf->callbacks, sizeof(qmcf->callbacks));

    ngx_http_qcc_tick_event.handler = ngx_http_qcc_fetch_tick;
    ngx_http_qcc_tick_event.log = cycle->log;
    ngx_http_qcc_tick_event.data = cycle;
    ngx_http_qcc_tick_event.cancelable = 1;

    ngx_add_timer(&ngx_http_qcc_tick_event, 100 + ngx_random() % 400);

    return NGX_OK;
}


/* --- the leader's timer --------------------------------------------------- */

static void
ngx_http_qcc_fetch_tick(ngx_event_t *ev)
{
    time_t                      now;
    u_char                      buf[64];
    ngx_str_t                   args;
    ngx_uint_t                  i, j, k, m, n, busy;
    ngx_uint_t                  reconcile[NGX_HTTP_QCC_FEEDS];
    ngx_queue_t                *qu;
    ngx_http_qcc_due_t          due[NGX_HTTP_QCC_KICKS_MAX], tmp;
    ngx_http_qcc_queue_t       *q;
    ngx_http_qcc_order_t       *o;
    ngx_http_qcc_fetch_conf_t  *fcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    q = ngx_http_qcc_fetch_qmcf->queue_zone->data;
    fcf = ngx_http_qcc_fetch_qmcf->fetch;
    now = ngx_time();
    n = 0;

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->sh->leader_pid != ngx_pid
        && (q->sh->leader_pid == 0
            || q->sh->leader_beat + NGX_HTTP_QCC_LEADER_STALE < now
            || (kill(q->sh->leader_pid, 0) == -1 && ngx_errno == NGX_ESRCH)))
    {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "qcc: this worker now picks due orders");
        q->sh->leader_pid = ngx_pid;
    }

    ngx_memzero(reconcile, sizeof(reconcile));

    if (q->sh->leader_pid == ngx_pid) {
        q->sh->leader_beat = now;

        ngx_http_qcc_reconcile_tick_locked(q, fcf, reconcile);

        busy = 0;

        for (qu = ngx_queue_head(&q->sh->orders);
             qu != ngx_queue_sentinel(&q->sh->orders);
             qu = ngx_queue_next(qu))
        {
            o = ngx_queue_data(qu, ngx_http_qcc_order_t, queue);

            if (o->state == NGX_HTTP_QCC_DOWNLOADING
                || o->state == NGX_HTTP_QCC_UNPACKING)
            {
                if (ngx_http_qcc_lease_live(o, now)) {
                    busy++;
                    continue;
                }

            } else if (o->state != NGX_HTTP_QCC_QUEUED) {
                continue;
            }

            if (o->next_try > now || !o->durable) {
                continue;
            }

            /* oldest first: the list is newest first, keep the last ones */
            if (n == NGX_HTTP_QCC_KICKS_MAX) {
                ngx_memmove(&due[0], &due[1],
                            (n - 1) * sizeof(ngx_http_qcc_due_t));
                n--;
            }

            due[n].feed = o->feed;
            due[n].next_try = o->next_try;
            due[n].order_no_len = o->order_no_len;
            ngx_memcpy(due[n].order_no, o->order_no, o->order_no_len);
            n++;
        }

        k = (busy >= fcf->concurrency) ? 0 : ngx_min(n, fcf->concurrency
                                                       - busy);

        /*
         * the free slots go to the orders due the longest: an order just
         * retried waits behind the others, so none is starved
         */
        for (i = 0; i < k; i++) {
            m = i;

            for (j = i + 1; j < n; j++) {
                if (due[j].next_try <= due[m].next_try) {
                    m = j;
                }
            }

            if (m != i) {
                tmp = due[i];
                due[i] = due[m];
                due[m] = tmp;
            }
        }

        n = k;
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    for (i = 0; i < n; i++) {
        ngx_http_qcc_kick((ngx_cycle_t *) ngx_cycle, fcf, due[i].feed,
                          due[i].order_no, due[i].order_no_len);
    }

    for (i = 0; i < NGX_HTTP_QCC_FEEDS; i++) {
        if (reconcile[i]) {
            args.data = buf;
            args.len = ngx_sprintf(buf, "action=reconcile&feed=%V",
                                   &ngx_http_qcc_feed_names[i])
                       - buf;
            ngx_http_qcc_kick_args((ngx_cycle_t *) ngx_cycle, fcf, &args);
        }
    }

    ngx_add_timer(ev, NGX_HTTP_QCC_TICK);
}


static ngx_uint_t
ngx_http_qcc_lease_live(ngx_http_qcc_order_t *o, time_t now)
{
    if (o->lease_pid == 0 || o->lease_until < now) {
        return 0;
    }

    /* a dead worker's lease is void at once */
    if (o->lease_pid != ngx_pid
        && kill(o->lease_pid, 0) == -1 && ngx_errno == NGX_ESRCH)
    {
        return 0;
    }

    return 1;
}


/* a fresh order: the driver is asked at once, whoever the leader is */

void
ngx_http_qcc_fetch_wake(ngx_uint_t feed, u_char *order_no, size_t len)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->fetch == NULL || ngx_exiting) {
        return;
    }

    ngx_http_qcc_kick((ngx_cycle_t *) ngx_cycle, qmcf->fetch, feed,
                      order_no, len);
}


/* --- the loopback request to the driver ----------------------------------- */

static void
ngx_http_qcc_kick(ngx_cycle_t *cycle, ngx_http_qcc_fetch_conf_t *fcf,
    ngx_uint_t feed, u_char *order_no, size_t len)
{
    u_char     buf[sizeof("feed=&orderNo=") + 32 + QCC_CALLBACK_ORDER_NO_MAX];
    ngx_str_t  args;

    args.data = buf;
    args.len = ngx_sprintf(buf, "feed=%V&orderNo=%*s",
                           &ngx_http_qcc_feed_names[feed], len, order_no)
               - buf;

    ngx_http_qcc_kick_args(cycle, fcf, &args);
}


void
ngx_http_qcc_driver_kick(ngx_cycle_t *cycle, ngx_str_t *args)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf && qmcf->fetch && !ngx_exiting) {
        ngx_http_qcc_kick_args(cycle, qmcf->fetch, args);
    }
}


static void
ngx_http_qcc_kick_args(ngx_cycle_t *cycle, ngx_http_qcc_fetch_conf_t *fcf,
    ngx_str_t *args)
{
    ngx_int_t               rc;
    ngx_pool_t             *pool;
    ngx_connection_t       *c;
    ngx_http_qcc_kick_t    *k;
    ngx_peer_connection_t  *pc;

    pool = ngx_create_pool(1024, cycle->log);
    if (pool == NULL) {
        return;
    }

    k = ngx_pcalloc(pool, sizeof(ngx_http_qcc_kick_t));
    pc = ngx_pcalloc(pool, sizeof(ngx_peer_connection_t));
    if (k == NULL || pc == NULL) {
        goto failed;
    }

    k->pool = pool;

    k->out = ngx_create_temp_buf(pool, fcf->uri.len + args->len + 64);
    if (k->out == NULL) {
        goto failed;
    }

    k->out->last = ngx_sprintf(k->out->last,
                               "GET %V?%V HTTP/1.0" CRLF
                               "Host: qcc-driver" CRLF CRLF,
                               &fcf->uri, args);

    pc->sockaddr = fcf->driver.addrs[0].sockaddr;
    pc->socklen = fcf->driver.addrs[0].socklen;
    pc->name = &fcf->driver.addrs[0].name;
    pc->get = ngx_event_get_peer;
    pc->log = cycle->log;
    pc->log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "qcc: cannot reach the driver at %V",
                      &fcf->driver.url);
        if (pc->connection) {
            ngx_close_connection(pc->connection);
        }
        goto failed;
    }

    c = pc->connection;
    c->data = k;
    c->pool = pool;
    c->log = cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;

    c->write->handler = ngx_http_qcc_kick_write;
    c->read->handler = ngx_http_qcc_kick_read;

    /* the driver answers when the order is done: that can take a while */
    ngx_add_timer(c->read, fcf->timeout + 60000);

    if (rc == NGX_OK) {
        ngx_http_qcc_kick_write(c->write);
    }

    return;

failed:

    ngx_destroy_pool(pool);
}


static void
ngx_http_qcc_kick_write(ngx_event_t *wev)
{
    ssize_t               n;
    ngx_buf_t            *b;
    ngx_connection_t     *c;
    ngx_http_qcc_kick_t  *k;

    c = wev->data;
    k = c->data;
    b = k->out;

    while (b->pos < b->last) {
        n = c->send(c, b->pos, b->last - b->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_qcc_kick_close(c);
            }
            return;
        }

        if (n <= 0) {
            ngx_http_qcc_kick_close(c);
            return;
        }

        b->pos += n;
    }

    wev->handler = ngx_http_empty_handler;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_qcc_kick_close(c);
    }
}


static void
ngx_http_qcc_kick_read(ngx_event_t *rev)
{
    u_char                buf[512];
    ssize_t               n;
    ngx_connection_t     *c;
    ngx_http_qcc_kick_t  *k;

    c = rev->data;
    k = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_WARN, c->log, NGX_ETIMEDOUT,
                      "qcc: the driver did not answer in time");
        ngx_http_qcc_kick_close(c);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_qcc_kick_close(c);
            }
            return;
        }

        if (n <= 0) {
            break;
        }

        if (k->status_len == 0 && n > 12) {
            k->status_len = 3;
            ngx_memcpy(k->status, buf + 9, 3);
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "qcc: driver answered %*s", k->status_len, k->status);

    ngx_http_qcc_kick_close(c);
}


static void
ngx_http_qcc_kick_close(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

    pool = c->pool;
    ngx_close_connection(c);
    ngx_destroy_pool(pool);
}


/* --- the driver ----------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_fetch_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc, feed;
    ngx_str_t                   arg, msg;
    ngx_pool_cleanup_t         *cln;
    ngx_http_qcc_loc_conf_t    *qlcf;
    ngx_http_qcc_fetch_ctx_t   *ctx;

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    qlcf = ngx_http_get_module_loc_conf(r, ngx_http_qcc_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_qcc_fetch_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->kind = NGX_HTTP_QCC_CTX_FETCH;
    ctx->request = r;
    ctx->fcf = qlcf->fetch;

    feed = NGX_HTTP_QCC_FEED_NONE;

    if (ngx_http_arg(r, (u_char *) "feed", 4, &arg) == NGX_OK) {
        feed = ngx_http_qcc_feed_index(arg.data, arg.len);
    }

    if (ngx_http_arg(r, (u_char *) "action", 6, &arg) == NGX_OK
        && arg.len == 9 && ngx_strncmp(arg.data, "reconcile", 9) == 0
        && feed != NGX_HTTP_QCC_FEED_NONE)
    {
        return ngx_http_qcc_reconcile_handler(r, qlcf->fetch, feed);
    }

    if (feed == NGX_HTTP_QCC_FEED_NONE
        || ngx_http_arg(r, (u_char *) "orderNo", 7, &arg) != NGX_OK
        || qcc_callback_check_order_no(arg.data, arg.len) != QCC_CALLBACK_OK)
    {
        ngx_str_set(&msg, "feed and orderNo expected");
        return ngx_http_qcc_fetch_reply(r, NGX_HTTP_BAD_REQUEST, &msg);
    }

    ctx->feed = feed;
    ctx->order_no_len = arg.len;
    ngx_memcpy(ctx->order_no, arg.data, arg.len);

    rc = ngx_http_qcc_fetch_claim(r, ctx);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&msg, "not due, or worked on elsewhere");
        return ngx_http_qcc_fetch_reply(r, NGX_HTTP_CONFLICT, &msg);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY, "no memory");
        ngx_http_qcc_fetch_finish(r, ctx);
        return NGX_DONE;
    }

    cln->handler = ngx_http_qcc_fetch_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_qcc_fetch_filter_module);

    ctx->guard.handler = ngx_http_qcc_fetch_guard_handler;
    ctx->guard.data = ctx;
    ctx->guard.log = r->connection->log;
    ngx_add_timer(&ctx->guard, 1000);

    ctx->step = (ctx->expires <= ngx_time() && ctx->fcf->pull.len)
                ? NGX_HTTP_QCC_STEP_PULL : NGX_HTTP_QCC_STEP_DOWNLOAD;

    r->main->count++;
    r->write_event_handler = ngx_http_qcc_fetch_resume;

    ngx_http_qcc_fetch_run(r, ctx);

    return NGX_DONE;
}


/*
 * The order is this request's while its lease lasts: due, not leased by
 * a live worker, then marked downloading with one more attempt.
 */

static ngx_int_t
ngx_http_qcc_fetch_claim(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
    time_t                 now;
    ngx_http_qcc_queue_t  *q;
    ngx_http_qcc_order_t  *o;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);
    now = ngx_time();

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);

    if (o == NULL || !o->durable || o->next_try > now
        || o->state == NGX_HTTP_QCC_DELIVERED
        || o->state == NGX_HTTP_QCC_FAILED
        || ngx_http_qcc_lease_live(o, now))
    {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return NGX_DECLINED;
    }

    if (ngx_http_qcc_fetch_copy_url(r, ctx, o->url, o->url_len) != NGX_OK) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return NGX_ERROR;
    }

    ctx->password_len = o->password_len;
    ngx_memcpy(ctx->password, o->password, o->password_len);
    ctx->expires = o->expires;

    o->lease_pid = ngx_pid;
    o->lease_until = now + ctx->fcf->lease;
    o->attempts++;
    ngx_http_qcc_order_set_state_locked(q, o, NGX_HTTP_QCC_DOWNLOADING);

    /* a lost STATE record costs nothing: replay requeues the order */
    (void) ngx_http_qcc_journal_state_locked(q, o, r->connection->log);

    ngx_shmtx_unlock(&q->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "qcc: %V order \"%*s\" attempt %uD",
                  &ngx_http_qcc_feed_names[ctx->feed], ctx->order_no_len,
                  ctx->order_no, o->attempts);

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_fetch_copy_url(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx, u_char *url, size_t len)
{
    ctx->url.data = ngx_pnalloc(r->pool, len);
    if (ctx->url.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->url.data, url, len);
    ctx->url.len = len;

    return NGX_OK;
}


static void
ngx_http_qcc_fetch_resume(ngx_http_request_t *r)
{
    ngx_http_qcc_fetch_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_fetch_filter_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_QCC_CTX_FETCH || ctx->waiting) {
        return;
    }

    ngx_http_qcc_fetch_run(r, ctx);
}


/* the state machine: each step starts its work or ends the attempt */

static void
ngx_http_qcc_fetch_run(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_int_t  rc;

    for ( ;; ) {

        if (ctx->step == NGX_HTTP_QCC_STEP_DONE) {
            ngx_http_qcc_fetch_finish(r, ctx);
            return;
        }

        switch (ctx->step) {

        case NGX_HTTP_QCC_STEP_PULL:
            rc = ngx_http_qcc_fetch_pull(r, ctx);
            break;

        case NGX_HTTP_QCC_STEP_DOWNLOAD:
            rc = ngx_http_qcc_fetch_download(r, ctx);
            break;

        case NGX_HTTP_QCC_STEP_UNPACK:
            rc = ngx_http_qcc_fetch_unpack(r, ctx);
            break;

        default: /* NGX_HTTP_QCC_STEP_DELIVER */
            rc = ngx_http_qcc_fetch_deliver(r, ctx);
            break;
        }

        if (rc == NGX_AGAIN) {
            /* a subrequest or a thread task runs; it resumes us */
            ctx->waiting = 1;
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                                   "internal error");
        }
    }
}


/* --- pull: a fresh link through the signed getDownloadUrl call ------------ */

static ngx_int_t
ngx_http_qcc_fetch_pull(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_str_t            uri, args;
    ngx_http_request_t  *sr;

    if (ctx->fcf->pull.len == 0) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                               "link expired and no pull location to "
                               "refresh it");
        return NGX_OK;
    }

    if (ctx->refreshed) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "refreshed link refused too");
        return NGX_OK;
    }

    ctx->refreshed = 1;

    args.len = sizeof("orderNo=") - 1 + ctx->order_no_len;
    args.data = ngx_pnalloc(r->pool, args.len);

    if (args.data == NULL
        || ngx_http_qcc_pull_uri(r->pool, &ctx->fcf->pull,
                                 &ngx_http_qcc_pull_calls[ctx->feed], &uri)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_sprintf(args.data, "orderNo=%*s", ctx->order_no_len, ctx->order_no);

    sr = ngx_http_qcc_subrequest(r, &uri, &args, NGX_HTTP_SUBREQUEST_IN_MEMORY,
                                 ngx_http_qcc_fetch_pull_done, ctx);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    ctx->sr = sr;
    ctx->sr_status = 0;
    ngx_http_set_ctx(sr, ctx, ngx_http_qcc_fetch_filter_module);

    (void) ngx_atomic_fetch_add(
               &ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle)
                   ->sh->refreshes_total[ctx->feed], 1);

    ctx->step = NGX_HTTP_QCC_STEP_DOWNLOAD;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_qcc_fetch_pull_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_qcc_fetch_ctx_t *ctx = data;

    ctx->sr_status = r->headers_out.status;
    ctx->waiting = 0;

    if (ngx_http_qcc_fetch_pulled(r, ctx) != NGX_OK) {
        ctx->step = NGX_HTTP_QCC_STEP_DONE;
    }

    return rc;
}


/*
 * Reads a getDownloadUrl answer, {"status":"200","result":{"downloadUrl",
 * "downloadUrlExpiredTime", "unzipPassword"}}, checking each as the
 * callback does.  The answer's bytes are wiped: they hold a password.
 * Returns NGX_OK, NGX_DECLINED (a QCC status other than 200, in
 * link->status) or NGX_ERROR (a malformed answer).
 */

ngx_int_t
ngx_http_qcc_parse_link(ngx_http_request_t *sr, ngx_pool_t *pool,
    ngx_array_t *hosts, ngx_http_qcc_link_t *link)
{
    cJSON      *root, *status, *result, *url, *exp, *pw;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    ngx_memzero(link, sizeof(ngx_http_qcc_link_t));

    if (sr->out == NULL) {
        return NGX_ERROR;
    }

    b = sr->out->buf;

    root = cJSON_ParseWithLength((char *) b->pos, b->last - b->pos);

    status = cJSON_GetObjectItemCaseSensitive(root, "status");
    result = cJSON_GetObjectItemCaseSensitive(root, "result");
    url = cJSON_GetObjectItemCaseSensitive(result, "downloadUrl");
    exp = cJSON_GetObjectItemCaseSensitive(result, "downloadUrlExpiredTime");
    pw = cJSON_GetObjectItemCaseSensitive(result, "unzipPassword");

    rc = NGX_ERROR;

    if (cJSON_IsString(status)) {
        link->status_len = ngx_min(ngx_strlen(status->valuestring),
                                   sizeof(link->status));
        ngx_memcpy(link->status, status->valuestring, link->status_len);
    }

    if (link->status_len != 3 || ngx_strncmp(link->status, "200", 3) != 0) {
        rc = cJSON_IsString(status) ? NGX_DECLINED : NGX_ERROR;
        goto done;
    }

    if (!cJSON_IsString(url) || !cJSON_IsString(exp) || !cJSON_IsString(pw)
        || qcc_url_host_allowed((u_char *) url->valuestring,
                                ngx_strlen(url->valuestring),
                                hosts->elts, hosts->nelts)
           != QCC_URL_OK
        || qcc_callback_parse_time((u_char *) exp->valuestring,
                                   ngx_strlen(exp->valuestring),
                                   &link->expires)
           != 0
        || qcc_callback_check_password((u_char *) pw->valuestring,
                                       ngx_strlen(pw->valuestring))
           != QCC_CALLBACK_OK)
    {
        goto done;
    }

    link->url.len = ngx_strlen(url->valuestring);
    link->url.data = ngx_pnalloc(pool, link->url.len);
    if (link->url.data == NULL) {
        goto done;
    }

    ngx_memcpy(link->url.data, url->valuestring, link->url.len);

    link->password_len = ngx_strlen(pw->valuestring);
    ngx_memcpy(link->password, pw->valuestring, link->password_len);

    rc = NGX_OK;

done:

    if (cJSON_IsString(pw)) {
        ngx_explicit_memzero(pw->valuestring, ngx_strlen(pw->valuestring));
    }

    ngx_explicit_memzero(b->pos, b->last - b->pos);
    cJSON_Delete(root);

    return rc;
}


static ngx_int_t
ngx_http_qcc_fetch_pulled(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_int_t              rc;
    ngx_http_qcc_link_t    link;
    ngx_http_qcc_queue_t  *q;
    ngx_http_qcc_order_t  *o;

    if (ctx->sr_status != NGX_HTTP_OK || r->out == NULL) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "link refresh: HTTP %ui", ctx->sr_status);
        return NGX_ERROR;
    }

    rc = ngx_http_qcc_parse_link(r, ctx->request->pool,
                                 ctx->fcf->download_hosts, &link);

    if (rc == NGX_DECLINED) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "link refresh: QCC status %*s",
                               link.status_len, link.status);
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                               "link refresh: answer without a valid "
                               "link, expiry and password");
        return NGX_ERROR;
    }

    ctx->url = link.url;
    ctx->password_len = link.password_len;
    ngx_memcpy(ctx->password, link.password, link.password_len);
    ctx->expires = link.expires;
    ngx_explicit_memzero(link.password, sizeof(link.password));

    /* the new link and password replace the old, durably */

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);

    if (o && ngx_http_qcc_order_set_url_locked(q, o, ctx->url.data,
                                               ctx->url.len)
             == NGX_OK)
    {
        o->password_len = (uint8_t) ctx->password_len;
        ngx_memcpy(o->password, ctx->password, ctx->password_len);
        o->expires = ctx->expires;
        o->updated = ngx_time();
        (void) ngx_http_qcc_journal_link_locked(q, o, r->connection->log);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "qcc: %V order \"%*s\": link refreshed",
                  &ngx_http_qcc_feed_names[ctx->feed], ctx->order_no_len,
                  ctx->order_no);

    ctx->redirects = 0;

    return NGX_OK;
}


/* --- download ------------------------------------------------------------- */

static ngx_int_t
ngx_http_qcc_fetch_download(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *sr;

    /* the link is checked again here: a refresh or a redirect changed it */

    rc = qcc_url_host_allowed(ctx->url.data, ctx->url.len,
                              ctx->fcf->download_hosts->elts,
                              ctx->fcf->download_hosts->nelts);

    if (rc != QCC_URL_OK) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                               "download link refused: %s",
                               qcc_url_strerror(rc));
        return NGX_OK;
    }

    if (ctx->download_path.len == 0) {
        ctx->download_path.len = ctx->fcf->temp.len + ctx->order_no_len
                                 + 64;
        ctx->download_path.data = ngx_pnalloc(r->pool,
                                              ctx->download_path.len);
        if (ctx->download_path.data == NULL) {
            return NGX_ERROR;
        }

        ctx->download_path.len = ngx_sprintf(ctx->download_path.data,
                                     "%V/%V.%*s.%P.zip%Z", &ctx->fcf->temp,
                                     &ngx_http_qcc_feed_names[ctx->feed],
                                     ctx->order_no_len, ctx->order_no,
                                     ngx_pid)
                                 - ctx->download_path.data - 1;
    }

    (void) ngx_delete_file(ctx->download_path.data);

    sr = ngx_http_qcc_subrequest(r, &ctx->fcf->download, NULL, 0,
                                 ngx_http_qcc_fetch_download_done, ctx);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    /* the body goes to the proxy_store file, never to a client */
    sr->header_only = 1;

    ctx->sr = sr;
    ctx->sr_status = 0;
    ctx->sr_refused = NULL;
    ngx_str_null(&ctx->sr_location);
    ngx_http_set_ctx(sr, ctx, ngx_http_qcc_fetch_filter_module);

    ctx->step = NGX_HTTP_QCC_STEP_UNPACK;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_qcc_fetch_download_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_qcc_fetch_ctx_t *ctx = data;

    if (ctx->sr_status == 0) {
        ctx->sr_status = r->headers_out.status;
    }

    ctx->waiting = 0;

    if (ngx_http_qcc_fetch_downloaded(r, ctx) != NGX_OK) {
        ctx->step = NGX_HTTP_QCC_STEP_DONE;
    }

    return rc;
}


static ngx_int_t
ngx_http_qcc_fetch_downloaded(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_int_t         rc;
    ngx_file_info_t   fi;

    if (ctx->sr_refused) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL, "download %s",
                               ctx->sr_refused);
        return NGX_ERROR;
    }

    switch (ctx->sr_status) {

    case NGX_HTTP_OK:
        if (ngx_file_info(ctx->download_path.data, &fi) == NGX_FILE_ERROR) {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                                   "download incomplete");
            return NGX_ERROR;
        }

        return NGX_OK;

    case NGX_HTTP_MOVED_PERMANENTLY:
    case NGX_HTTP_MOVED_TEMPORARILY:
    case NGX_HTTP_SEE_OTHER:
    case NGX_HTTP_TEMPORARY_REDIRECT:
    case NGX_HTTP_PERMANENT_REDIRECT:

        if (ctx->sr_location.len == 0
            || ++ctx->redirects > NGX_HTTP_QCC_REDIRECTS)
        {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                                   "download redirected too often or "
                                   "nowhere");
            return NGX_ERROR;
        }

        rc = qcc_url_host_allowed(ctx->sr_location.data,
                                  ctx->sr_location.len,
                                  ctx->fcf->download_hosts->elts,
                                  ctx->fcf->download_hosts->nelts);

        if (rc != QCC_URL_OK) {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                                   "download redirected to a link refused: "
                                   "%s", qcc_url_strerror(rc));
            return NGX_ERROR;
        }

        ctx->url = ctx->sr_location;
        ctx->step = NGX_HTTP_QCC_STEP_DOWNLOAD;
        return NGX_OK;

    case NGX_HTTP_FORBIDDEN:
        /* OSS refuses an expired or revoked link: get a new one */
        if (ctx->fcf->pull.len && !ctx->refreshed) {
            ctx->step = NGX_HTTP_QCC_STEP_PULL;
            return NGX_OK;
        }

        /* fall through */

    default:
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "download: HTTP %ui", ctx->sr_status);
        return NGX_ERROR;
    }
}


/*
 * The download location's answer, before its body: the status, where a
 * redirect points, and the size limit.  OSS always sends Content-Length;
 * an answer without one is refused rather than stored unbounded.
 */

static ngx_int_t
ngx_http_qcc_fetch_header_filter(ngx_http_request_t *r)
{
    u_char                    *p;
    ngx_http_qcc_fetch_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_fetch_filter_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_QCC_CTX_FETCH || ctx->sr != r
        || ctx->step != NGX_HTTP_QCC_STEP_UNPACK)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx->sr_status = r->headers_out.status;

    if (r->headers_out.location && r->headers_out.location->value.len) {
        p = ngx_pnalloc(ctx->request->pool,
                        r->headers_out.location->value.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, r->headers_out.location->value.data,
                   r->headers_out.location->value.len);
        ctx->sr_location.data = p;
        ctx->sr_location.len = r->headers_out.location->value.len;
    }

    if (ctx->sr_status == NGX_HTTP_OK) {

        if (r->headers_out.content_length_n < 0) {
            ctx->sr_refused = (u_char *) "refused: no Content-Length";
            return NGX_ERROR;
        }

        if (r->headers_out.content_length_n > ctx->fcf->max_size) {
            ctx->sr_refused = (u_char *) "refused: larger than max_size";
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}


/* --- unpack, in the thread pool ------------------------------------------- */

static ngx_int_t
ngx_http_qcc_fetch_unpack(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
#if (NGX_THREADS)
    size_t                      n;
    ngx_thread_task_t          *task;
    ngx_http_qcc_fetch_ctx_t  **tctx;
    ngx_http_qcc_main_conf_t   *qmcf;
    ngx_http_qcc_queue_t       *q;
    ngx_http_qcc_order_t       *o;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);
    if (o) {
        ngx_http_qcc_order_set_state_locked(q, o, NGX_HTTP_QCC_UNPACKING);
        (void) ngx_http_qcc_journal_state_locked(q, o, r->connection->log);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    n = ctx->fcf->temp.len + ctx->order_no_len + 64;

    ctx->unpack_path.data = ngx_pnalloc(r->pool, n);
    if (ctx->unpack_path.data == NULL) {
        return NGX_ERROR;
    }

    ctx->unpack_path.len = ngx_sprintf(ctx->unpack_path.data,
                                       "%V/%V.%*s.%P.json%Z",
                                       &ctx->fcf->temp,
                                       &ngx_http_qcc_feed_names[ctx->feed],
                                       ctx->order_no_len, ctx->order_no,
                                       ngx_pid)
                           - ctx->unpack_path.data - 1;

    (void) ngx_delete_file(ctx->unpack_path.data);

    ctx->spool_path = NULL;

    if (ctx->fcf->spool.len) {
        n = ctx->fcf->spool.len + ctx->order_no_len + 64;

        ctx->spool_dir = ngx_pnalloc(r->pool, n);
        ctx->spool_path = ngx_pnalloc(r->pool, n);
        if (ctx->spool_dir == NULL || ctx->spool_path == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf((u_char *) ctx->spool_dir, "%V/%V%Z", &ctx->fcf->spool,
                    &ngx_http_qcc_feed_names[ctx->feed]);
        ngx_sprintf((u_char *) ctx->spool_path, "%s/%*s.json%Z",
                    ctx->spool_dir, ctx->order_no_len, ctx->order_no);
    }

    ngx_memzero(&ctx->job, sizeof(qcc_unpack_job_t));

    ctx->job.zip_path = (char *) ctx->download_path.data;
    ctx->job.out_path = (char *) ctx->unpack_path.data;
    ctx->job.password = ctx->password;
    ctx->job.password_len = ctx->password_len;
    ctx->job.names = ngx_http_qcc_push_names[ctx->feed];
    ctx->job.nnames = ngx_http_qcc_push_names[ctx->feed][1] ? 2 : 1;
    ctx->job.flags = ctx->fcf->cjson ? QCC_UNPACK_CJSON : 0;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_qcc_fetch_ctx_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    tctx = task->ctx;
    *tctx = ctx;

    task->handler = ngx_http_qcc_fetch_unpack_thread;
    task->event.handler = ngx_http_qcc_fetch_unpacked;
    task->event.data = ctx;
    task->event.log = r->connection->log;

    qmcf = ngx_http_get_module_main_conf(r, ngx_http_qcc_module);

    ctx->low_priority = (qmcf->unpack_pool != qmcf->thread_pool);

    if (ngx_thread_task_post(qmcf->unpack_pool, task) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->step = NGX_HTTP_QCC_STEP_DELIVER;

    return NGX_AGAIN;

#else

    ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL,
                           "nginx was built without threads");
    return NGX_OK;

#endif
}


#if (NGX_THREADS)

static void
ngx_http_qcc_fetch_yield_cpu(void)
{
#if (NGX_LINUX) && defined SCHED_IDLE
    struct sched_param  sp;

    ngx_memzero(&sp, sizeof(struct sched_param));

    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0) {
        return;
    }
#endif

    (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 19);
}


/* in a thread: the context's plain fields only */

static void
ngx_http_qcc_fetch_unpack_thread(void *data, ngx_log_t *log)
{
    ngx_http_qcc_fetch_ctx_t  *ctx = *(ngx_http_qcc_fetch_ctx_t **) data;

    int  fd, rc;

    static __thread int  yielding;

    /*
     * The pool is the unpacking's own: its threads yield to the event
     * loop.  SCHED_IDLE rather than nice 19 alone: a waking event loop
     * then preempts an unpacking thread at once instead of waiting for
     * its slice.  The validator thread qcc_unpack() starts inherits it.
     */
    if (ctx->low_priority && !yielding) {
        yielding = 1;
        ngx_http_qcc_fetch_yield_cpu();
    }

    ctx->spool_err = 0;

    rc = qcc_unpack(&ctx->job, &ctx->res);

    /*
     * The thread gives back what libcrypto keeps per thread (the error
     * queue, the handlers run when a thread ends) before it waits for the
     * next task.  nginx does not join its pool's threads at exit: a
     * worker calls exit() as soon as each thread has taken its exit task,
     * so a thread still holding that state would run libcrypto's thread
     * destructor while OPENSSL_cleanup(), an atexit() handler, frees what
     * it walks (t/080 saw workers die on a signal right after "exit").
     */
    OPENSSL_thread_stop();

    if (rc != QCC_UNPACK_OK || ctx->spool_path == NULL) {
        return;
    }

    /* into the spool: renamed complete, then the directory synced */

    if (rename(ctx->job.out_path, ctx->spool_path) == -1) {
        ctx->spool_err = errno;
        (void) unlink(ctx->job.out_path);
        return;
    }

    fd = open(ctx->spool_dir, O_RDONLY | O_DIRECTORY);

    if (fd == -1 || fsync(fd) == -1) {
        ctx->spool_err = errno;
    }

    if (fd != -1) {
        close(fd);
    }
}


static void
ngx_http_qcc_fetch_unpacked(ngx_event_t *ev)
{
    ngx_http_qcc_fetch_ctx_t *ctx = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ctx->waiting = 0;

    (void) ngx_delete_file(ctx->download_path.data);

    if (ctx->res.ignored[0]) {
        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
                      "qcc: %V order \"%*s\": ignored in the ZIP: %s",
                      &ngx_http_qcc_feed_names[ctx->feed],
                      ctx->order_no_len, ctx->order_no, ctx->res.ignored);
    }

    switch (ctx->res.rc) {

    case QCC_UNPACK_OK:
        if (ctx->spool_err) {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                                   "spool: %s", strerror(ctx->spool_err));
            break;
        }

        ctx->spooled = (ctx->spool_path != NULL);
        ctx->payload_path.data = ctx->spooled ? (u_char *) ctx->spool_path
                                              : ctx->unpack_path.data;
        ctx->payload_path.len = ngx_strlen(ctx->payload_path.data);

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "qcc: %V order \"%*s\": %uL records, %uL bytes%s",
                      &ngx_http_qcc_feed_names[ctx->feed],
                      ctx->order_no_len, ctx->order_no, ctx->res.records,
                      ctx->res.bytes, ctx->spooled ? ", spooled" : "");

        if (ctx->fcf->deliver.len == 0) {
            ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_OK, "");
        }

        break;

    case QCC_UNPACK_PASSWORD:
        if (ctx->fcf->pull.len && !ctx->refreshed) {
            ctx->step = NGX_HTTP_QCC_STEP_PULL;
            break;
        }

        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL, "%s",
                               ctx->res.reason);
        break;

    case QCC_UNPACK_IO:
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY, "%s",
                               ctx->res.reason);
        break;

    default:
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_FAIL, "%s",
                               ctx->res.reason);
        break;
    }

    ngx_http_qcc_fetch_run(r, ctx);
    ngx_http_run_posted_requests(c);
}

#endif


/* --- deliver: POST the file to the operator's location -------------------- */

static ngx_int_t
ngx_http_qcc_fetch_deliver(ngx_http_request_t *r,
    ngx_http_qcc_fetch_ctx_t *ctx)
{
    ngx_buf_t                *b;
    ngx_file_t               *file;
    ngx_uint_t                i;
    ngx_list_t                headers;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h, *header;
    ngx_file_info_t           fi;
    ngx_http_request_t       *sr;
    ngx_pool_cleanup_t       *cln;
    ngx_pool_cleanup_file_t  *clnf;
    ngx_http_request_body_t  *rb;

    file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_pool_cleanup_file_t));
    if (file == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    file->fd = ngx_open_file(ctx->payload_path.data, NGX_FILE_RDONLY,
                             NGX_FILE_OPEN, 0);
    if (file->fd == NGX_INVALID_FILE) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "deliver: cannot open the file");
        return NGX_OK;
    }

    file->name = ctx->payload_path;
    file->log = r->connection->log;

    cln->handler = ngx_pool_cleanup_file;
    clnf = cln->data;
    clnf->fd = file->fd;
    clnf->name = file->name.data;
    clnf->log = r->connection->log;

    if (ngx_fd_info(file->fd, &fi) == NGX_FILE_ERROR) {
        return NGX_ERROR;
    }

    sr = ngx_http_qcc_subrequest(r, &ctx->fcf->deliver, NULL, 0,
                                 ngx_http_qcc_fetch_deliver_done, ctx);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    /* the app's answer is not the driver's: only its status counts */
    sr->header_only = 1;

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    b = ngx_calloc_buf(r->pool);
    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (b == NULL || rb == NULL) {
        return NGX_ERROR;
    }

    b->in_file = 1;
    b->file = file;
    b->file_pos = 0;
    b->file_last = ngx_file_size(&fi);
    b->last_buf = 1;

    rb->bufs = ngx_alloc_chain_link(r->pool);
    if (rb->bufs == NULL) {
        return NGX_ERROR;
    }

    rb->bufs->buf = b;
    rb->bufs->next = NULL;
    rb->rest = 0;

    sr->request_body = rb;
    sr->headers_in.content_length_n = ngx_file_size(&fi);
    sr->headers_in.chunked = 0;

    /* the driver's headers, less its length and type, plus ours */

    if (ngx_list_init(&headers, r->pool, 8, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        header = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (header[i].key.len == sizeof("Host") - 1
                && ngx_strncasecmp(header[i].key.data, (u_char *) "Host",
                                   4) == 0)
            {
                h = ngx_list_push(&headers);
                if (h == NULL) {
                    return NGX_ERROR;
                }

                *h = header[i];
            }
        }
    }

    h = ngx_list_push(&headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "Content-Type");
    ngx_str_set(&h->value, "application/json;charset=utf-8");
    h->lowcase_key = (u_char *) "content-type";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);
    sr->headers_in.content_type = h;

    h = ngx_list_push(&headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "X-QCC-Feed");
    h->value = ngx_http_qcc_feed_names[ctx->feed];
    h->lowcase_key = (u_char *) "x-qcc-feed";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);

    h = ngx_list_push(&headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "X-QCC-Order-No");
    h->value.data = ctx->order_no;
    h->value.len = ctx->order_no_len;
    h->lowcase_key = (u_char *) "x-qcc-order-no";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);

    sr->headers_in.headers = headers;
    sr->headers_in.content_length = NULL;

    ctx->sr = sr;
    ctx->sr_status = 0;
    ngx_http_set_ctx(sr, ctx, ngx_http_qcc_fetch_filter_module);

    ctx->step = NGX_HTTP_QCC_STEP_DONE;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_qcc_fetch_deliver_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_qcc_fetch_ctx_t *ctx = data;

    ngx_uint_t  status;

    ctx->waiting = 0;
    status = r->headers_out.status;

    if (status >= 200 && status < 300 && rc != NGX_ERROR) {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_OK, "");

    } else {
        ngx_http_qcc_fetch_end(ctx, NGX_HTTP_QCC_DONE_RETRY,
                               "deliver: HTTP %ui", status);
    }

    return rc;
}


/* --- the end of an attempt ------------------------------------------------ */

static void
ngx_http_qcc_fetch_end(ngx_http_qcc_fetch_ctx_t *ctx, ngx_uint_t done,
    const char *fmt, ...)
{
    va_list  args;

    ctx->done = done;
    ctx->step = NGX_HTTP_QCC_STEP_DONE;

    va_start(args, fmt);
    ctx->reason_len = ngx_vslprintf(ctx->reason,
                                    ctx->reason + sizeof(ctx->reason), fmt,
                                    args)
                      - ctx->reason;
    va_end(args);
}


/*
 * Records the outcome in the zone and the journal, releases the lease,
 * removes temporary files and answers the driver's caller.
 */

static void
ngx_http_qcc_fetch_finish(ngx_http_request_t *r, ngx_http_qcc_fetch_ctx_t *ctx)
{
    time_t                      now, delay;
    ngx_str_t                   msg;
    ngx_uint_t                  state, status, level, i;
    ngx_http_qcc_queue_t       *q;
    ngx_http_qcc_order_t       *o;
    ngx_http_qcc_fetch_conf_t  *fcf;

    fcf = ctx->fcf;
    now = ngx_time();
    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    if (ctx->guard.timer_set) {
        ngx_del_timer(&ctx->guard);
    }

    if (ctx->download_path.len) {
        (void) ngx_delete_file(ctx->download_path.data);
    }

    if (ctx->unpack_path.len) {
        (void) ngx_delete_file(ctx->unpack_path.data);
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);

    state = NGX_HTTP_QCC_FAILED;

    if (o) {
        o->lease_pid = 0;
        o->lease_until = 0;

        if (ctx->done == NGX_HTTP_QCC_DONE_OK) {
            state = NGX_HTTP_QCC_DELIVERED;
            o->error_len = 0;
            q->sh->delivered_total[o->feed]++;
            ngx_http_qcc_metrics_delivered_locked(q->sh, o->feed,
                                                  now - o->received);

        } else {
            ngx_http_qcc_order_set_error(o, ctx->reason, ctx->reason_len);

            if (ctx->done == NGX_HTTP_QCC_DONE_RETRY
                && o->attempts < fcf->attempts
                && now - o->received < fcf->deadline)
            {
                /* exponential backoff with jitter: delay * 2^(n-1) * ~1 */
                delay = fcf->delay;
                for (i = 1; i < o->attempts && delay < fcf->max_delay; i++) {
                    delay *= 2;
                }

                delay = ngx_min(delay, fcf->max_delay);
                delay = delay * 3 / 4 + ngx_random() % (delay / 2 + 1);

                state = NGX_HTTP_QCC_QUEUED;
                o->next_try = now + ngx_max(delay, 1);
                q->sh->retries_total[o->feed]++;

            } else {
                q->sh->failed_total[o->feed]++;
            }
        }

        ngx_http_qcc_order_set_state_locked(q, o, state);
        (void) ngx_http_qcc_journal_state_locked(q, o, r->connection->log);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    if (state == NGX_HTTP_QCC_DELIVERED) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "qcc: %V order \"%*s\" delivered",
                      &ngx_http_qcc_feed_names[ctx->feed],
                      ctx->order_no_len, ctx->order_no);
        ngx_str_set(&msg, "delivered");
        status = NGX_HTTP_OK;

    } else {
        level = (state == NGX_HTTP_QCC_FAILED) ? NGX_LOG_ERR : NGX_LOG_WARN;

        ngx_log_error(level, r->connection->log, 0,
                      "qcc: %V order \"%*s\" %s: %*s",
                      &ngx_http_qcc_feed_names[ctx->feed],
                      ctx->order_no_len, ctx->order_no,
                      state == NGX_HTTP_QCC_FAILED ? "failed"
                                                   : "will be retried",
                      ctx->reason_len, ctx->reason);
        msg.data = ctx->reason;
        msg.len = ctx->reason_len;
        status = NGX_HTTP_BAD_GATEWAY;
    }

    ngx_explicit_memzero(ctx->password, sizeof(ctx->password));

    ngx_http_finalize_request(r, ngx_http_qcc_fetch_reply(r, status, &msg));
}


static void
ngx_http_qcc_fetch_cleanup(void *data)
{
    ngx_http_qcc_fetch_ctx_t *ctx = data;

    if (ctx->guard.timer_set) {
        ngx_del_timer(&ctx->guard);
    }

    ngx_explicit_memzero(ctx->password, sizeof(ctx->password));
}


/*
 * Renews the lease while the attempt lasts; as a timer that is not
 * cancelable, it also keeps a gracefully exiting worker until the
 * attempt is over.
 */

static void
ngx_http_qcc_fetch_guard_handler(ngx_event_t *ev)
{
    ngx_http_qcc_fetch_ctx_t *ctx = ev->data;

    ngx_http_qcc_queue_t  *q;
    ngx_http_qcc_order_t  *o;

    q = ngx_http_qcc_queue_get((ngx_cycle_t *) ngx_cycle);

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, ctx->feed, ctx->order_no,
                                         ctx->order_no_len);
    if (o && o->lease_pid == ngx_pid) {
        o->lease_until = ngx_time() + ctx->fcf->lease;
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    ngx_add_timer(ev, 1000);
}


static ngx_int_t
ngx_http_qcc_fetch_reply(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *msg)
{
    u_char  *body, *p;

    body = ngx_pnalloc(r->pool, msg->len * 6 + 64);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"status\":\"%ui\",\"msg\":\"", status);
    p = (u_char *) ngx_escape_json(p, msg->data, msg->len);
    p = ngx_cpymem(p, "\"}", 2);

    return ngx_http_qcc_send_json(r, status, body, p - body);
}


/* --- variables of the download location ---------------------------------- */

/* data: the offset of the ngx_str_t in the driver's context */

static ngx_int_t
ngx_http_qcc_download_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *value;
    ngx_http_qcc_fetch_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_qcc_fetch_filter_module);

    value = (ctx && ctx->kind == NGX_HTTP_QCC_CTX_FETCH)
            ? (ngx_str_t *) ((u_char *) ctx + data) : NULL;

    if (value == NULL || value->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value->data;
    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
