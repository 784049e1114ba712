/*
 * ngx_http_qcc_module: directives, configuration create/merge, and
 * registration of the phase handler and variables.
 */

#include "ngx_http_qcc_module.h"


static void *ngx_http_qcc_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_qcc_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_qcc_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_qcc_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_qcc_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_qcc_postconfiguration(ngx_conf_t *cf);

static char *ngx_http_qcc_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_secret_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_secret_key_env(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_sign(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_callback(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_download_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_qcc_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_qcc_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_qcc_init_process(ngx_cycle_t *cycle);
static void ngx_http_qcc_exit(ngx_cycle_t *cycle);
static char *ngx_http_qcc_set_secret(ngx_conf_t *cf,
    ngx_http_qcc_loc_conf_t *qlcf, u_char *data, size_t len);
static void ngx_http_qcc_wipe_secret(void *data);


static ngx_command_t  ngx_http_qcc_commands[] = {

    { ngx_string("qcc_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_secret_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_secret_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_secret_key_env"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_secret_key_env,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_sign"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_qcc_sign,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_loc_conf_t, sign),
      NULL },

    { ngx_string("qcc_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_queue_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_qcc_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("qcc_unpack_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_qcc_main_conf_t, unpack_pool_name),
      NULL },

    { ngx_string("qcc_journal_compact"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_qcc_main_conf_t, journal_compact),
      NULL },

    { ngx_string("qcc_journal_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_qcc_main_conf_t, journal_retention),
      NULL },

    { ngx_string("qcc_callback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_callback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_callback_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_loc_conf_t, callback_max_body),
      NULL },

    { ngx_string("qcc_download_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_download_hosts,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_fetch"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_fetch_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_retry"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_qcc_retry_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_reconcile"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_reconcile_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_spool"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_qcc_spool,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("qcc_deliver"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_qcc_loc_conf_t, deliver),
      NULL },

    { ngx_string("qcc_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_qcc_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_qcc_module_ctx = {
    ngx_http_qcc_preconfiguration,         /* preconfiguration */
    ngx_http_qcc_postconfiguration,        /* postconfiguration */

    ngx_http_qcc_create_main_conf,         /* create main configuration */
    ngx_http_qcc_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_qcc_create_loc_conf,          /* create location configuration */
    ngx_http_qcc_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_qcc_module = {
    NGX_MODULE_V1,
    &ngx_http_qcc_module_ctx,              /* module context */
    ngx_http_qcc_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_qcc_init_module,              /* init module */
    ngx_http_qcc_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_qcc_exit,                     /* exit process */
    ngx_http_qcc_exit,                     /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_qcc_default_download_host =
    ngx_string("pro-files.qichacha.com");


static void *
ngx_http_qcc_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_main_conf_t));
    if (qmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     qmcf->queue_zone = NULL;
     *     qmcf->journal = { 0, NULL };
     *     qmcf->thread_pool_name = { 0, NULL };
     *     qmcf->thread_pool = NULL;
     *     qmcf->unpack_pool_name = { 0, NULL };
     *     qmcf->unpack_pool = NULL;
     */

    qmcf->protected_logs = ngx_array_create(cf->pool, 4, sizeof(ngx_log_t *));
    if (qmcf->protected_logs == NULL) {
        return NULL;
    }

    qmcf->journal_compact = NGX_CONF_UNSET_SIZE;
    qmcf->journal_retention = NGX_CONF_UNSET;

    return qmcf;
}


static char *
ngx_http_qcc_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_qcc_main_conf_t *qmcf = conf;

    ngx_conf_init_size_value(qmcf->journal_compact, 64 * 1024 * 1024);
    ngx_conf_init_value(qmcf->journal_retention, 90 * 86400);

    if (qmcf->queue_zone == NULL) {
        return NGX_CONF_OK;
    }

#if (NGX_THREADS)
    /* journal syncs run here, off the event loop */
    qmcf->thread_pool = ngx_thread_pool_add(cf,
                                            qmcf->thread_pool_name.len
                                            ? &qmcf->thread_pool_name
                                            : NULL);
    if (qmcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * Unpacking is long and CPU-bound: in a pool of its own, whose threads
     * lower their priority, it never takes the CPU from the event loop.
     */
    qmcf->unpack_pool = qmcf->thread_pool;

    if (qmcf->unpack_pool_name.len) {
        qmcf->unpack_pool = ngx_thread_pool_add(cf, &qmcf->unpack_pool_name);
        if (qmcf->unpack_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

    return NGX_CONF_OK;
}


static void *
ngx_http_qcc_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_qcc_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->key = { 0, NULL };
     *     conf->key_arg = { 0, NULL };
     *     conf->secret = { 0, NULL };
     *     conf->sign_file = NULL;
     *     conf->sign_line = 0;
     *     conf->status = 0;
     */

    conf->sign = NGX_CONF_UNSET;
    conf->callback = NGX_CONF_UNSET;
    conf->download_hosts = NGX_CONF_UNSET_PTR;
    conf->callback_max_body = NGX_CONF_UNSET_SIZE;

    return conf;
}


static char *
ngx_http_qcc_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_qcc_loc_conf_t *prev = parent;
    ngx_http_qcc_loc_conf_t *conf = child;

    qcc_url_host_t            *h;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_qcc_main_conf_t  *qmcf;

    /* the core module's merge ran first: its error_log is final here */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);

    if (ngx_http_qcc_log_protect(qmcf->protected_logs, clcf->error_log)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->key.data == NULL) {
        conf->key = prev->key;
        conf->key_arg = prev->key_arg;
    }

    if (conf->secret.data == NULL) {
        conf->secret = prev->secret;
    }

    if (conf->sign == NGX_CONF_UNSET) {
        conf->sign = prev->sign;
        conf->sign_file = prev->sign_file;
        conf->sign_line = prev->sign_line;
    }

    ngx_conf_merge_value(conf->sign, prev->sign, 0);

    if (conf->sign && (conf->key.data == NULL || conf->secret.data == NULL)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"qcc_sign on\" needs %s in effect in %s:%ui",
                      conf->key.data == NULL
                      ? "\"qcc_key\""
                      : "\"qcc_secret_key_file\" or \"qcc_secret_key_env\"",
                      conf->sign_file, conf->sign_line);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_size_value(conf->callback_max_body,
                              prev->callback_max_body, 16384);

    ngx_conf_merge_ptr_value(conf->download_hosts, prev->download_hosts,
                             NULL);

    if (conf->download_hosts == NULL) {
        conf->download_hosts = ngx_array_create(cf->pool, 1,
                                                sizeof(qcc_url_host_t));
        if (conf->download_hosts == NULL) {
            return NGX_CONF_ERROR;
        }

        h = ngx_array_push(conf->download_hosts);
        if (h == NULL) {
            return NGX_CONF_ERROR;
        }

        h->data = ngx_http_qcc_default_download_host.data;
        h->len = ngx_http_qcc_default_download_host.len;
    }

    if (ngx_http_qcc_fetch_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->callback == NGX_CONF_UNSET) {
        conf->callback = NGX_HTTP_QCC_FEED_NONE;
    }

    if (conf->callback != NGX_HTTP_QCC_FEED_NONE) {
        qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);

        if (qmcf->queue_zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"qcc_callback %V\" needs a \"qcc_queue\" in the "
                          "http block",
                          &ngx_http_qcc_feed_names[conf->callback]);
            return NGX_CONF_ERROR;
        }

        if (conf->key.data == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"qcc_callback %V\" needs \"qcc_key\" in effect: "
                          "the callback checks QCC's key argument",
                          &ngx_http_qcc_feed_names[conf->callback]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_preconfiguration(ngx_conf_t *cf)
{
    if (qcc_sign_init() != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: OpenSSL has no MD5 to sign with");
        return NGX_ERROR;
    }

    if (ngx_http_qcc_sign_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_qcc_fetch_add_variables(cf);
}


static ngx_int_t
ngx_http_qcc_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                  f;
    ngx_http_handler_pt        *h;
    ngx_http_qcc_main_conf_t   *qmcf;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        if (qmcf->callbacks[f]) {
            if (ngx_http_qcc_log_init(cf) != NGX_OK) {
                return NGX_ERROR;
            }

            break;
        }
    }

    /*
     * Signing runs in the precontent phase, after every access check, so
     * that "satisfy", auth_basic, auth_request and allow/deny decide
     * exactly as they would without this module.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_qcc_sign_handler;

    return NGX_OK;
}


static char *
ngx_http_qcc_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (qlcf->key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes an empty AppKey";
    }

    qlcf->key = value[1];

    p = ngx_pnalloc(cf->pool, sizeof("key=") - 1 + 3 * value[1].len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    qlcf->key_arg.data = p;
    p = ngx_cpymem(p, "key=", sizeof("key=") - 1);
    p += qcc_sign_escape_key(value[1].data, value[1].len, p);
    qlcf->key_arg.len = p - qlcf->key_arg.data;

    return NGX_CONF_OK;
}


static char *
ngx_http_qcc_secret_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    char             *rv;
    u_char            buf[NGX_HTTP_QCC_SECRET_MAX + 2];
    size_t            len;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value, name;
    ngx_file_info_t   fi;

    if (qlcf->secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "qcc: cannot open secret key file \"%s\"",
                           name.data);
        return NGX_CONF_ERROR;
    }

    rv = NGX_CONF_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "qcc: cannot stat secret key file \"%s\"",
                           name.data);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: secret key file \"%s\" is not a file",
                           name.data);
        goto done;
    }

    if (fi.st_mode & (S_IRGRP|S_IROTH)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "qcc: secret key file \"%s\" is readable by "
                           "group or others; chmod 0600 it", name.data);
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "qcc: cannot read secret key file \"%s\"",
                           name.data);
        goto done;
    }

    len = n;

    /* one trailing newline is the editor's, not the secret's */

    if (len && buf[len - 1] == LF) {
        len--;
        if (len && buf[len - 1] == CR) {
            len--;
        }
    }

    if (len > NGX_HTTP_QCC_SECRET_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: secret key file \"%s\" is larger than %d "
                           "bytes", name.data, NGX_HTTP_QCC_SECRET_MAX);
        goto done;
    }

    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: secret key file \"%s\" is empty", name.data);
        goto done;
    }

    rv = ngx_http_qcc_set_secret(cf, qlcf, buf, len);

done:

    ngx_explicit_memzero(buf, sizeof(buf));

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return rv;
}


static char *
ngx_http_qcc_secret_key_env(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    char       *env;
    size_t      len;
    ngx_str_t  *value;

    if (qlcf->secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    env = getenv((char *) value[1].data);
    len = env ? ngx_strlen(env) : 0;

    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: environment variable \"%V\" is unset or "
                           "empty", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (len > NGX_HTTP_QCC_SECRET_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "qcc: environment variable \"%V\" is longer than "
                           "%d bytes", &value[1], NGX_HTTP_QCC_SECRET_MAX);
        return NGX_CONF_ERROR;
    }

    return ngx_http_qcc_set_secret(cf, qlcf, (u_char *) env, len);
}


/* the secret is kept only in configuration memory, wiped with it */

static char *
ngx_http_qcc_set_secret(ngx_conf_t *cf, ngx_http_qcc_loc_conf_t *qlcf,
    u_char *data, size_t len)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_str_t));
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    qlcf->secret.data = ngx_pnalloc(cf->pool, len);
    if (qlcf->secret.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(qlcf->secret.data, data, len);
    qlcf->secret.len = len;

    *(ngx_str_t *) cln->data = qlcf->secret;
    cln->handler = ngx_http_qcc_wipe_secret;

    return NGX_CONF_OK;
}


static void
ngx_http_qcc_wipe_secret(void *data)
{
    ngx_str_t  *secret = data;

    ngx_explicit_memzero(secret->data, secret->len);
}


static char *
ngx_http_qcc_sign(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    qlcf->sign_file = cf->conf_file->file.name.data;
    qlcf->sign_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_qcc_callback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    ngx_int_t                  feed;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_qcc_main_conf_t  *qmcf;

    if (qlcf->callback != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    feed = ngx_http_qcc_feed_index(value[1].data, value[1].len);

    if (feed == NGX_HTTP_QCC_FEED_NONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown feed \"%V\", it must be \"dd_risk_mnr\" "
                           "or \"dd_corp_monitor\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    qlcf->callback = feed;

    qmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_qcc_module);
    qmcf->callbacks[feed] = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_qcc_callback_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_qcc_download_hosts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    ngx_str_t       *value;
    ngx_uint_t       i;
    qcc_url_host_t  *h;

    if (qlcf->download_hosts != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    qlcf->download_hosts = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                            sizeof(qcc_url_host_t));
    if (qlcf->download_hosts == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (!qcc_url_host_valid(value[i].data, value[i].len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid download host \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        h = ngx_array_push(qlcf->download_hosts);
        if (h == NULL) {
            return NGX_CONF_ERROR;
        }

        /* matched without regard to case */
        ngx_strlow(value[i].data, value[i].data, value[i].len);

        h->data = value[i].data;
        h->len = value[i].len;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_qcc_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (qlcf->status) {
        return "is duplicate";
    }

    qlcf->status = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_qcc_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_init_module(ngx_cycle_t *cycle)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf
        && ngx_http_qcc_log_protect(qmcf->protected_logs, &cycle->new_log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_qcc_journal_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_qcc_fetch_init_module(cycle);
}


static ngx_int_t
ngx_http_qcc_init_process(ngx_cycle_t *cycle)
{
    ngx_http_qcc_log_init_process();

    if (ngx_http_qcc_journal_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_qcc_fetch_init_process(cycle);
}


static char *
ngx_http_qcc_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_loc_conf_t *qlcf = conf;

    ngx_str_t  *value;

    if (qlcf->spool.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    qlcf->spool = value[1];

    if (qlcf->spool.len > 1 && qlcf->spool.data[qlcf->spool.len - 1] == '/')
    {
        qlcf->spool.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &qlcf->spool, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_qcc_exit(ngx_cycle_t *cycle)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    ngx_http_qcc_log_flush();

    if (qmcf) {
        ngx_http_qcc_log_unprotect(qmcf->protected_logs);
    }
}


/* registers a module's table of variables, ended by a null variable */

ngx_int_t
ngx_http_qcc_add_variables(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * A waited subrequest to uri?args whose answer goes to handler(data), as
 * the driver and the reconciler make them; NULL on failure.
 */

ngx_http_request_t *
ngx_http_qcc_subrequest(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_str_t *args, ngx_uint_t flags, ngx_http_post_subrequest_pt handler,
    void *data)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NULL;
    }

    ps->handler = handler;
    ps->data = data;

    if (ngx_http_subrequest(r, uri, args, &sr, ps,
                            flags | NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NULL;
    }

    return sr;
}


/* a QCC call through the pull location: its prefix without '/', the call */

ngx_int_t
ngx_http_qcc_pull_uri(ngx_pool_t *pool, ngx_str_t *pull, ngx_str_t *call,
    ngx_str_t *uri)
{
    u_char  *p;

    uri->data = ngx_pnalloc(pool, pull->len + call->len);
    if (uri->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(uri->data, pull->data,
                   pull->len - (pull->data[pull->len - 1] == '/'));
    p = ngx_cpymem(p, call->data, call->len);
    uri->len = p - uri->data;

    return NGX_OK;
}


/*
 * "zone=NAME:SIZE" as limit_req_zone parses it: the name, and a size of
 * at least 8 pages.  Logs and returns NGX_ERROR on a bad one.
 */

ngx_int_t
ngx_http_qcc_parse_zone(ngx_conf_t *cf, ngx_str_t *value, ngx_str_t *name,
    ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    name->data = value->data + 5;

    p = (u_char *) ngx_strlchr(name->data, value->data + value->len, ':');

    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_ERROR;
    }

    name->len = p - name->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", value);
        return NGX_ERROR;
    }

    return NGX_OK;
}
