/*
 * The shared-memory order queue of both feeds: the zone, its directive,
 * and the locked operations on orders.  Callers hold shpool->mutex around
 * every *_locked call; nothing here does I/O.
 */

#include "ngx_http_qcc_module.h"


/*
 * Orders are found through a hash table in the zone, a bucket per
 * NGX_HTTP_QCC_BUCKET_BYTES of it: a lookup reads a bucket and the order
 * or two chained to it, where a tree of hundreds of thousands of orders
 * cost a cache miss per level.
 */
#define NGX_HTTP_QCC_BUCKET_BYTES  1024


static ngx_int_t ngx_http_qcc_queue_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static uint32_t ngx_http_qcc_order_hash(ngx_uint_t feed, u_char *order_no,
    size_t len);
static ngx_uint_t ngx_http_qcc_queue_evict_locked(ngx_http_qcc_queue_t *q,
    ngx_uint_t n);
static ngx_int_t ngx_http_qcc_order_cmp(ngx_uint_t feed, u_char *order_no,
    size_t len, ngx_http_qcc_order_t *o);


ngx_str_t  ngx_http_qcc_feed_names[NGX_HTTP_QCC_FEEDS] = {
    ngx_string("dd_risk_mnr"),
    ngx_string("dd_corp_monitor")
};

ngx_str_t  ngx_http_qcc_state_names[NGX_HTTP_QCC_STATES] = {
    ngx_string("queued"),
    ngx_string("downloading"),
    ngx_string("unpacking"),
    ngx_string("delivered"),
    ngx_string("failed")
};


ngx_int_t
ngx_http_qcc_feed_index(u_char *name, size_t len)
{
    ngx_int_t  i;

    for (i = 0; i < NGX_HTTP_QCC_FEEDS; i++) {
        if (ngx_http_qcc_feed_names[i].len == len
            && ngx_strncmp(ngx_http_qcc_feed_names[i].data, name, len) == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_QCC_FEED_NONE;
}


/* qcc_queue zone=NAME:SIZE journal=PATH; */

char *
ngx_http_qcc_queue_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_qcc_main_conf_t *qmcf = conf;

    ssize_t                size;
    ngx_str_t             *value, name;
    ngx_uint_t             i;
    ngx_shm_zone_t        *shm_zone;
    ngx_http_qcc_queue_t  *q;

    if (qmcf->queue_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

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

        if (ngx_strncmp(value[i].data, "journal=", 8) == 0) {

            qmcf->journal.data = value[i].data + 8;
            qmcf->journal.len = value[i].len - 8;

            if (qmcf->journal.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty journal path in \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (ngx_conf_full_name(cf->cycle, &qmcf->journal, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

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

    if (qmcf->journal.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"journal\" parameter: an "
                           "acknowledged order must survive a restart",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    q = ngx_pcalloc(cf->pool, sizeof(ngx_http_qcc_queue_t));
    if (q == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_qcc_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    q->cycle = cf->cycle;
    q->qmcf = qmcf;

    shm_zone->init = ngx_http_qcc_queue_init_zone;
    shm_zone->data = q;

    qmcf->queue_zone = shm_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_qcc_queue_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_qcc_queue_t *octx = data;

    size_t                 len, n;
    ngx_http_qcc_queue_t  *q;

    q = shm_zone->data;

    if (octx) {
        /* a reload with the same zone: the queue in it is authoritative */
        q->sh = octx->sh;
        q->shpool = octx->shpool;
        return NGX_OK;
    }

    q->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        q->sh = q->shpool->data;
        return NGX_OK;
    }

    q->sh = ngx_slab_calloc(q->shpool, sizeof(ngx_http_qcc_shctx_t));
    if (q->sh == NULL) {
        return NGX_ERROR;
    }

    q->shpool->data = q->sh;

    ngx_queue_init(&q->sh->orders);

    for (n = 16; n < shm_zone->shm.size / NGX_HTTP_QCC_BUCKET_BYTES; n *= 2) {
        /* void */
    }

    q->sh->buckets = ngx_slab_calloc(q->shpool,
                                     n * sizeof(ngx_http_qcc_order_t *));
    if (q->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    q->sh->bucket_mask = n - 1;

    len = sizeof(" in qcc_queue zone \"\"") + shm_zone->shm.name.len;

    q->shpool->log_ctx = ngx_slab_alloc(q->shpool, len);
    if (q->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(q->shpool->log_ctx, " in qcc_queue zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* exhaustion is handled: old delivered orders are evicted */
    q->shpool->log_nomem = 0;

    /* a fresh zone: what was acknowledged before comes from the journal */

    return ngx_http_qcc_journal_replay(q->cycle, q, q->qmcf);
}


static uint32_t
ngx_http_qcc_order_hash(ngx_uint_t feed, u_char *order_no, size_t len)
{
    uint32_t  hash;
    u_char    f;

    f = (u_char) feed;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, &f, 1);
    ngx_crc32_update(&hash, order_no, len);
    ngx_crc32_final(hash);

    return hash;
}


/* 0 if the order is o */

static ngx_int_t
ngx_http_qcc_order_cmp(ngx_uint_t feed, u_char *order_no, size_t len,
    ngx_http_qcc_order_t *o)
{
    if (feed != o->feed) {
        return (feed < o->feed) ? -1 : 1;
    }

    return ngx_memn2cmp(order_no, o->order_no, len, o->order_no_len);
}


ngx_http_qcc_order_t *
ngx_http_qcc_order_lookup_locked(ngx_http_qcc_queue_t *q, ngx_uint_t feed,
    u_char *order_no, size_t len)
{
    uint32_t               hash;
    ngx_http_qcc_order_t  *o;

    hash = ngx_http_qcc_order_hash(feed, order_no, len);

    for (o = q->sh->buckets[hash & q->sh->bucket_mask]; o; o = o->next) {

        if (o->hash == hash
            && ngx_http_qcc_order_cmp(feed, order_no, len, o) == 0)
        {
            return o;
        }
    }

    return NULL;
}


ngx_http_qcc_order_t *
ngx_http_qcc_order_add_locked(ngx_http_qcc_queue_t *q, ngx_uint_t feed,
    u_char *order_no, size_t order_no_len)
{
    ngx_http_qcc_order_t  **bucket, *o;

    o = ngx_slab_calloc_locked(q->shpool, sizeof(ngx_http_qcc_order_t));

    if (o == NULL && ngx_http_qcc_queue_evict_locked(q, 16)) {
        o = ngx_slab_calloc_locked(q->shpool, sizeof(ngx_http_qcc_order_t));
    }

    if (o == NULL) {
        return NULL;
    }

    o->feed = (uint8_t) feed;
    o->state = NGX_HTTP_QCC_QUEUED;
    o->order_no_len = (uint8_t) order_no_len;
    ngx_memcpy(o->order_no, order_no, order_no_len);

    o->hash = ngx_http_qcc_order_hash(feed, order_no, order_no_len);

    bucket = &q->sh->buckets[o->hash & q->sh->bucket_mask];
    o->next = *bucket;
    *bucket = o;

    ngx_queue_insert_head(&q->sh->orders, &o->queue);

    q->sh->count[feed][o->state]++;

    return o;
}


void
ngx_http_qcc_order_remove_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o)
{
    ngx_http_qcc_order_t  **p;

    q->sh->count[o->feed][o->state]--;

    for (p = &q->sh->buckets[o->hash & q->sh->bucket_mask]; *p;
         p = &(*p)->next)
    {
        if (*p == o) {
            *p = o->next;
            break;
        }
    }

    ngx_queue_remove(&o->queue);

    if (o->url) {
        ngx_slab_free_locked(q->shpool, o->url);
    }

    ngx_explicit_memzero(o->password, sizeof(o->password));
    ngx_slab_free_locked(q->shpool, o);
}


/* Drops up to n of the oldest delivered orders; returns how many. */

static ngx_uint_t
ngx_http_qcc_queue_evict_locked(ngx_http_qcc_queue_t *q, ngx_uint_t n)
{
    ngx_uint_t             evicted, f, delivered;
    ngx_queue_t           *qu, *prev;
    ngx_http_qcc_order_t  *o;

    delivered = 0;

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        delivered += q->sh->count[f][NGX_HTTP_QCC_DELIVERED];
    }

    /*
     * Nothing to evict: a full zone of orders not yet delivered is not
     * walked through on every push that finds it full.
     */
    if (delivered == 0) {
        return 0;
    }

    evicted = 0;

    for (qu = ngx_queue_last(&q->sh->orders);
         qu != ngx_queue_sentinel(&q->sh->orders)
         && evicted < ngx_min(n, delivered);
         qu = prev)
    {
        prev = ngx_queue_prev(qu);
        o = ngx_queue_data(qu, ngx_http_qcc_order_t, queue);

        if (o->state != NGX_HTTP_QCC_DELIVERED) {
            continue;
        }

        ngx_http_qcc_order_remove_locked(q, o);
        evicted++;
    }

    q->sh->evicted += evicted;

    return evicted;
}


ngx_int_t
ngx_http_qcc_order_set_url_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, u_char *url, size_t len)
{
    u_char  *p;

    p = ngx_slab_alloc_locked(q->shpool, len);

    if (p == NULL && ngx_http_qcc_queue_evict_locked(q, 16)) {
        p = ngx_slab_alloc_locked(q->shpool, len);
    }

    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, url, len);

    if (o->url) {
        ngx_slab_free_locked(q->shpool, o->url);
    }

    o->url = p;
    o->url_len = (uint16_t) len;

    return NGX_OK;
}


void
ngx_http_qcc_order_set_state_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_uint_t state)
{
    q->sh->count[o->feed][o->state]--;
    o->state = (uint8_t) state;
    q->sh->count[o->feed][o->state]++;
    o->updated = ngx_time();
}


void
ngx_http_qcc_order_set_error(ngx_http_qcc_order_t *o, u_char *text,
    size_t len)
{
    o->error_len = (uint16_t) ngx_min(len, NGX_HTTP_QCC_ERROR_MAX);
    ngx_memcpy(o->error, text, o->error_len);
}


ngx_http_qcc_queue_t *
ngx_http_qcc_queue_get(ngx_cycle_t *cycle)
{
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->queue_zone == NULL) {
        return NULL;
    }

    return qmcf->queue_zone->data;
}
