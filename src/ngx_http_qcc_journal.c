/*
 * The journal on disk: replay into a fresh zone and compaction (in the
 * master, before any worker appends), and appends with group commit from
 * the workers.  Each worker collects the records of its event loop into
 * one buffer; a thread task writes and fdatasyncs them, then every
 * waiting callback is answered.  Workers serialize their appends with
 * flock(), which the kernel releases if a worker dies; each finds the end
 * of the records from where it last wrote (qcc_journal_append()), and
 * writes into room zeroed ahead, so that a sync commits no metadata.
 */

#include "ngx_http_qcc_module.h"
#include "qcc_journal.h"

#include <sys/file.h>


typedef struct {
    ngx_http_qcc_journal_done_pt   done;
    void                          *data;
} ngx_http_qcc_journal_waiter_t;


typedef struct ngx_http_qcc_journal_batch_s  ngx_http_qcc_journal_batch_t;

struct ngx_http_qcc_journal_batch_s {
    u_char                        *buf;
    size_t                         len;
    size_t                         size;
    ngx_msec_t                     start;     /* posted, if inflight */
    unsigned                       inflight:1;
    ngx_array_t                   *waiters;
#if (NGX_THREADS)
    ngx_thread_task_t             *task;
#endif
    ngx_http_qcc_journal_batch_t  *next;      /* in the free list */
};


typedef struct {
    ngx_fd_t                       fd;
    ngx_int_t                      err;
    qcc_journal_pos_t             *pos;       /* under the append mutex */
    ngx_http_qcc_journal_batch_t  *batch;
} ngx_http_qcc_journal_task_ctx_t;


typedef struct {
    ngx_http_qcc_queue_t          *queue;
    ngx_http_qcc_main_conf_t      *qmcf;
    ngx_cycle_t                   *cycle;
    ngx_uint_t                     replayed;
    ngx_uint_t                     skipped;
} ngx_http_qcc_replay_ctx_t;


typedef struct {
    ngx_queue_t                   *next;
    ngx_queue_t                   *sentinel;
    time_t                         horizon;
    unsigned                       state_next:1;
    qcc_journal_rec_t              state;
} ngx_http_qcc_compact_ctx_t;


static ngx_int_t ngx_http_qcc_journal_batch_init(ngx_cycle_t *cycle,
    ngx_http_qcc_journal_batch_t *b);
static ngx_int_t ngx_http_qcc_journal_add_locked(ngx_http_qcc_queue_t *q,
    qcc_journal_rec_t *rec, ngx_log_t *log);
static void ngx_http_qcc_journal_kick(ngx_log_t *log);
static void ngx_http_qcc_journal_overlap_handler(ngx_event_t *ev);
static void ngx_http_qcc_journal_write_handler(void *data, ngx_log_t *log);
static void ngx_http_qcc_journal_written(ngx_event_t *ev);
static void ngx_http_qcc_journal_complete(ngx_http_qcc_journal_batch_t *b,
    ngx_int_t err, ngx_log_t *log);
static void ngx_http_qcc_journal_guard_handler(ngx_event_t *ev);
static int ngx_http_qcc_journal_apply(void *data,
    const qcc_journal_rec_t *rec, uint64_t offset);
static int ngx_http_qcc_journal_next(void *data, qcc_journal_rec_t *rec);
static void ngx_http_qcc_journal_order_rec(ngx_http_qcc_order_t *o,
    qcc_journal_rec_t *rec);
static void ngx_http_qcc_journal_state_rec(ngx_http_qcc_order_t *o,
    qcc_journal_rec_t *rec);


/*
 * The worker's journal: its append fd, where it last wrote, the batch
 * filling and the batches being written.  A batch starts as soon as no
 * other is being written: records that arrive during a sync wait for it
 * and go out together in the next, so a busy worker makes few large
 * groups (each costs a thread hand-over, a write and a sync whatever its
 * size).  Only when the oldest sync in flight takes longer than
 * NGX_HTTP_QCC_JOURNAL_OVERLAP ms (a slow disk) may another start beside
 * it, up to NGX_HTTP_QCC_JOURNAL_INFLIGHT at once.
 */
#define NGX_HTTP_QCC_JOURNAL_INFLIGHT  4
#define NGX_HTTP_QCC_JOURNAL_OVERLAP   2

static ngx_fd_t                       ngx_http_qcc_journal_fd = -1;
static qcc_journal_pos_t              ngx_http_qcc_journal_pos;
static ngx_http_qcc_journal_batch_t   ngx_http_qcc_batches[
                                          NGX_HTTP_QCC_JOURNAL_INFLIGHT + 1];
static ngx_http_qcc_journal_batch_t  *ngx_http_qcc_filling;
static ngx_http_qcc_journal_batch_t  *ngx_http_qcc_free;
static ngx_uint_t                     ngx_http_qcc_inflight;
#if (NGX_THREADS)
/*
 * flock() excludes other workers, not the threads of this one, which
 * share its file descriptor: appends in flight at once take this too.
 */
static ngx_thread_mutex_t             ngx_http_qcc_append_mutex;
#endif
static ngx_http_qcc_main_conf_t      *ngx_http_qcc_journal_qmcf;

/*
 * A timer that is not cancelable keeps a gracefully exiting worker alive
 * while callbacks wait for their records to be written.
 */
static ngx_event_t                    ngx_http_qcc_journal_guard;

/* starts a batch beside a slow one */
static ngx_event_t                    ngx_http_qcc_journal_overlap;

/*
 * Where the records end, as the master last saw it (replay, cut,
 * compaction): the workers it forks walk on from there.
 */
static uint64_t                       ngx_http_qcc_journal_end;


/* --- replay and compaction, in the master -------------------------------- */

ngx_int_t
ngx_http_qcc_journal_replay(ngx_cycle_t *cycle, ngx_http_qcc_queue_t *q,
    ngx_http_qcc_main_conf_t *qmcf)
{
    int                          rc, err;
    u_char                      *buf;
    uid_t                        uid;
    gid_t                        gid;
    ssize_t                      n;
    uint64_t                     off, seq, end;
    ngx_fd_t                     fd;
    ngx_uint_t                   damaged, torn, f, s;
    ngx_queue_t                 *qu;
    ngx_file_info_t              fi;
    ngx_core_conf_t             *ccf;
    ngx_http_qcc_order_t        *o;
    qcc_journal_replay_t         r;
    ngx_http_qcc_replay_ctx_t    ctx;
    ngx_http_qcc_compact_ctx_t   cctx;

    fd = ngx_open_file(qmcf->journal.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "qcc: cannot open journal \"%V\"", &qmcf->journal);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > QCC_JOURNAL_FILE_MAX)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "qcc: cannot read journal \"%V\" (larger than %d "
                      "bytes?)", &qmcf->journal, QCC_JOURNAL_FILE_MAX);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_alloc(ngx_file_size(&fi) + 1, cycle->log);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, ngx_file_size(&fi));

    ngx_close_file(fd);

    if (n == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "qcc: cannot read journal \"%V\"", &qmcf->journal);
        ngx_free(buf);
        return NGX_ERROR;
    }

    ctx.queue = q;
    ctx.qmcf = qmcf;
    ctx.cycle = cycle;
    ctx.replayed = 0;
    ctx.skipped = 0;

    off = 0;
    end = 0;
    damaged = 0;
    torn = 0;
    seq = 0;

    /* a damaged record in the middle is skipped, the rest still counts */

    for ( ;; ) {
        rc = qcc_journal_replay_buf(buf + off, n - off,
                                    ngx_http_qcc_journal_apply, &ctx, &r);

        seq = ngx_max(seq, r.last_seq);
        end = off + r.valid;

        if (rc == QCC_JOURNAL_OK) {
            /* zeros after the records are room made for appends */
            break;
        }

        if (rc == QCC_JOURNAL_NEED_MORE) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "qcc: journal \"%V\" ends with a torn record at "
                          "byte %uL, dropped", &qmcf->journal,
                          off + r.valid);
            torn = off + r.valid;
            break;
        }

        if (rc == QCC_JOURNAL_CORRUPT && r.resync) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "qcc: journal \"%V\" has a damaged record at byte "
                          "%uL, skipped to byte %uL", &qmcf->journal,
                          off + r.valid, off + r.resync);
            off += r.resync;
            damaged = 1;
            continue;
        }

        if (rc == QCC_JOURNAL_CORRUPT) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "qcc: journal \"%V\" ends with a damaged record at "
                          "byte %uL, dropped", &qmcf->journal, off + r.valid);
            torn = off + r.valid;
            break;
        }

        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "qcc: journal \"%V\" has a record this module cannot "
                      "read at byte %uL (written by a newer version?)",
                      &qmcf->journal, off + r.valid);
        ngx_free(buf);
        return NGX_ERROR;
    }

    q->sh->journal_seq = seq;

    /* what was being worked on when the server stopped starts again */

    for (qu = ngx_queue_head(&q->sh->orders);
         qu != ngx_queue_sentinel(&q->sh->orders);
         qu = ngx_queue_next(qu))
    {
        o = ngx_queue_data(qu, ngx_http_qcc_order_t, queue);

        if (o->state == NGX_HTTP_QCC_DOWNLOADING
            || o->state == NGX_HTTP_QCC_UNPACKING)
        {
            ngx_http_qcc_order_set_state_locked(q, o, NGX_HTTP_QCC_QUEUED);
        }
    }

    for (f = 0; f < NGX_HTTP_QCC_FEEDS; f++) {
        for (s = 0; s < NGX_HTTP_QCC_STATES; s++) {
            if (q->sh->count[f][s]) {
                ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                              "qcc: journal: %ui %V orders %V",
                              q->sh->count[f][s],
                              &ngx_http_qcc_feed_names[f],
                              &ngx_http_qcc_state_names[s]);
            }
        }
    }

    ngx_free(buf);

    ngx_http_qcc_journal_end = end;

    if (ctx.skipped) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "qcc: journal \"%V\": %ui orders did not fit in the "
                      "zone", &qmcf->journal, ctx.skipped);
    }

    /* "nginx -t" and reloads never rewrite the journal */

    if (ngx_test_config || !ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)) {
        return NGX_OK;
    }

    /* a torn tail is cut off in place: that needs no space on a full disk */

    if (torn && !damaged) {
        fd = ngx_open_file(qmcf->journal.data, NGX_FILE_WRONLY,
                           NGX_FILE_OPEN, 0);

        if (fd != NGX_INVALID_FILE
            && qcc_journal_truncate(fd, torn, &err) == QCC_JOURNAL_OK)
        {
            torn = 0;
        }

        if (fd != NGX_INVALID_FILE) {
            ngx_close_file(fd);
        }
    }

    /* the records' bytes count, not the room after them */
    if (!torn && !damaged && end <= qmcf->journal_compact) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = (geteuid() == 0) ? ccf->user : (uid_t) -1;
    gid = (geteuid() == 0) ? ccf->group : (gid_t) -1;

    cctx.next = ngx_queue_last(&q->sh->orders);
    cctx.sentinel = ngx_queue_sentinel(&q->sh->orders);
    cctx.horizon = ngx_time() - qmcf->journal_retention;
    cctx.state_next = 0;

    rc = qcc_journal_compact((char *) qmcf->journal.data,
                             ngx_http_qcc_journal_next, &cctx, &seq,
                             uid, gid, &err);

    if (rc != QCC_JOURNAL_OK) {
        /*
         * Not fatal: the journal as it is replays the same orders (a
         * damaged record is skipped), and a full disk must not keep the
         * gateway from starting.
         */
        ngx_log_error(NGX_LOG_ERR, cycle->log, err,
                      "qcc: compacting journal \"%V\" failed, kept as it "
                      "is", &qmcf->journal);
        return NGX_OK;
    }

    q->sh->journal_seq = seq;

    /* no room in a snapshot: its records end where the file does */
    ngx_http_qcc_journal_end = (ngx_file_info(qmcf->journal.data, &fi)
                                != NGX_FILE_ERROR)
                               ? (uint64_t) ngx_file_size(&fi) : 0;

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "qcc: journal \"%V\" compacted from %uL bytes",
                  &qmcf->journal, end);

    return NGX_OK;
}


static int
ngx_http_qcc_journal_apply(void *data, const qcc_journal_rec_t *rec,
    uint64_t offset)
{
    ngx_http_qcc_replay_ctx_t *ctx = data;

    ngx_http_qcc_queue_t  *q;
    ngx_http_qcc_order_t  *o;

    q = ctx->queue;

    if (rec->feed >= NGX_HTTP_QCC_FEEDS) {
        return 0;
    }

    o = ngx_http_qcc_order_lookup_locked(q, rec->feed,
                                         (u_char *) rec->order_no,
                                         rec->order_no_len);

    switch (rec->type) {

    case QCC_JOURNAL_ORDER:
        if (o) {
            return 0;
        }

        o = ngx_http_qcc_order_add_locked(q, rec->feed,
                                          (u_char *) rec->order_no,
                                          rec->order_no_len);
        if (o == NULL
            || ngx_http_qcc_order_set_url_locked(q, o, (u_char *) rec->url,
                                                 rec->url_len)
               != NGX_OK)
        {
            if (o) {
                ngx_http_qcc_order_remove_locked(q, o);
            }

            ctx->skipped++;
            return 0;
        }

        o->source = rec->source;
        o->expires = rec->expires;
        o->received = rec->received;
        o->updated = rec->received;
        o->next_try = rec->received;
        o->password_len = (uint8_t) rec->password_len;
        ngx_memcpy(o->password, rec->password, rec->password_len);
        o->durable = 1;

        ctx->replayed++;
        return 0;

    case QCC_JOURNAL_STATE:
        if (o == NULL || rec->state >= NGX_HTTP_QCC_STATES) {
            return 0;
        }

        ngx_http_qcc_order_set_state_locked(q, o, rec->state);
        o->attempts = rec->attempts;
        o->next_try = rec->next_try;
        o->updated = rec->updated;
        ngx_http_qcc_order_set_error(o, (u_char *) rec->error,
                                     rec->error_len);
        return 0;

    case QCC_JOURNAL_LINK:
        if (o == NULL
            || ngx_http_qcc_order_set_url_locked(q, o, (u_char *) rec->url,
                                                 rec->url_len)
               != NGX_OK)
        {
            return 0;
        }

        o->expires = rec->expires;
        o->updated = rec->updated;
        o->password_len = (uint8_t) rec->password_len;
        ngx_memcpy(o->password, rec->password, rec->password_len);
        return 0;
    }

    return 0;
}


/* compaction's source: oldest first, each live order as ORDER + STATE */

static int
ngx_http_qcc_journal_next(void *data, qcc_journal_rec_t *rec)
{
    ngx_http_qcc_compact_ctx_t *ctx = data;

    ngx_http_qcc_order_t  *o;

    if (ctx->state_next) {
        *rec = ctx->state;
        ctx->state_next = 0;
        return 1;
    }

    while (ctx->next != ctx->sentinel) {
        o = ngx_queue_data(ctx->next, ngx_http_qcc_order_t, queue);
        ctx->next = ngx_queue_prev(ctx->next);

        /* delivered orders are forgotten after the retention period */
        if (o->state == NGX_HTTP_QCC_DELIVERED && o->updated < ctx->horizon) {
            continue;
        }

        ngx_http_qcc_journal_order_rec(o, rec);
        ngx_http_qcc_journal_state_rec(o, &ctx->state);

        /* one order the encoder refuses must not stop the compaction */
        if (qcc_journal_size(rec) == 0 || qcc_journal_size(&ctx->state) == 0)
        {
            continue;
        }

        ctx->state_next = 1;
        return 1;
    }

    return 0;
}


static void
ngx_http_qcc_journal_order_rec(ngx_http_qcc_order_t *o,
    qcc_journal_rec_t *rec)
{
    ngx_memzero(rec, sizeof(qcc_journal_rec_t));

    rec->type = QCC_JOURNAL_ORDER;
    rec->feed = o->feed;
    rec->source = o->source;
    rec->order_no = o->order_no;
    rec->order_no_len = o->order_no_len;
    rec->url = o->url;
    rec->url_len = o->url_len;
    rec->password = o->password;
    rec->password_len = o->password_len;
    rec->expires = o->expires;
    rec->received = o->received;
}


static void
ngx_http_qcc_journal_state_rec(ngx_http_qcc_order_t *o,
    qcc_journal_rec_t *rec)
{
    ngx_memzero(rec, sizeof(qcc_journal_rec_t));

    rec->type = QCC_JOURNAL_STATE;
    rec->feed = o->feed;
    rec->state = o->state;
    rec->order_no = o->order_no;
    rec->order_no_len = o->order_no_len;
    rec->attempts = o->attempts;
    rec->next_try = o->next_try;
    rec->updated = o->updated;
    rec->error = o->error;
    rec->error_len = o->error_len;
}


/* --- the file, created by the master for the workers --------------------- */

ngx_int_t
ngx_http_qcc_journal_init_module(ngx_cycle_t *cycle)
{
    int                        fd, err;
    uid_t                      uid;
    gid_t                      gid;
    ngx_core_conf_t           *ccf;
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->queue_zone == NULL || ngx_test_config) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = (geteuid() == 0) ? ccf->user : (uid_t) -1;
    gid = (geteuid() == 0) ? ccf->group : (gid_t) -1;

    fd = qcc_journal_open((char *) qmcf->journal.data, uid, gid, &err);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, err,
                      "qcc: cannot open journal \"%V\"", &qmcf->journal);
        return NGX_ERROR;
    }

    close(fd);

    return NGX_OK;
}


ngx_int_t
ngx_http_qcc_journal_init_process(ngx_cycle_t *cycle)
{
    int                        err;
    ngx_uint_t                 i;
    ngx_http_qcc_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_qcc_module);

    if (qmcf == NULL || qmcf->queue_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_qcc_journal_qmcf = qmcf;

    ngx_http_qcc_journal_fd = qcc_journal_open((char *) qmcf->journal.data,
                                               (uid_t) -1, (gid_t) -1, &err);

    if (ngx_http_qcc_journal_fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, err,
                      "qcc: cannot open journal \"%V\"", &qmcf->journal);
        return NGX_ERROR;
    }

    /*
     * From where the master left the records to where they end now
     * (other workers may append meanwhile: appends walk on from here).
     */
    ngx_http_qcc_journal_pos.end = ngx_http_qcc_journal_end;
    ngx_http_qcc_journal_pos.size = 0;

    if (qcc_journal_find_end(ngx_http_qcc_journal_fd,
                             &ngx_http_qcc_journal_pos, &err)
        != QCC_JOURNAL_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, err,
                      "qcc: cannot read journal \"%V\"", &qmcf->journal);
        return NGX_ERROR;
    }

    ngx_http_qcc_free = NULL;
    ngx_http_qcc_inflight = 0;

    for (i = 0; i <= NGX_HTTP_QCC_JOURNAL_INFLIGHT; i++) {
        if (ngx_http_qcc_journal_batch_init(cycle, &ngx_http_qcc_batches[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_qcc_batches[i].next = ngx_http_qcc_free;
        ngx_http_qcc_free = &ngx_http_qcc_batches[i];
    }

    ngx_http_qcc_filling = ngx_http_qcc_free;
    ngx_http_qcc_free = ngx_http_qcc_free->next;

#if (NGX_THREADS)
    if (ngx_thread_mutex_create(&ngx_http_qcc_append_mutex, cycle->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }
#endif

    ngx_http_qcc_journal_guard.handler = ngx_http_qcc_journal_guard_handler;
    ngx_http_qcc_journal_guard.log = cycle->log;
    ngx_http_qcc_journal_guard.data = &ngx_http_qcc_journal_guard;

    ngx_http_qcc_journal_overlap.handler =
                                        ngx_http_qcc_journal_overlap_handler;
    ngx_http_qcc_journal_overlap.log = cycle->log;
    ngx_http_qcc_journal_overlap.data = &ngx_http_qcc_journal_overlap;
    ngx_http_qcc_journal_overlap.cancelable = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_journal_batch_init(ngx_cycle_t *cycle,
    ngx_http_qcc_journal_batch_t *b)
{
    b->size = 4 * QCC_JOURNAL_RECORD_MAX;
    b->len = 0;

    b->buf = ngx_palloc(cycle->pool, b->size);
    if (b->buf == NULL) {
        return NGX_ERROR;
    }

    b->waiters = ngx_array_create(cycle->pool, 16,
                                  sizeof(ngx_http_qcc_journal_waiter_t));
    if (b->waiters == NULL) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    b->task = ngx_thread_task_alloc(cycle->pool,
                                    sizeof(ngx_http_qcc_journal_task_ctx_t));
    if (b->task == NULL) {
        return NGX_ERROR;
    }

    b->task->handler = ngx_http_qcc_journal_write_handler;
    b->task->event.handler = ngx_http_qcc_journal_written;
    b->task->event.data = b;
    b->task->event.log = cycle->log;
#endif

    return NGX_OK;
}


/* --- appends, in the workers ---------------------------------------------- */

ngx_int_t
ngx_http_qcc_journal_order(ngx_http_qcc_queue_t *q, ngx_uint_t feed,
    u_char *order_no, size_t len, ngx_log_t *log,
    ngx_http_qcc_journal_done_pt done, void *data)
{
    ngx_int_t                       rc;
    qcc_journal_rec_t               rec;
    ngx_http_qcc_order_t           *o;
    ngx_http_qcc_journal_waiter_t  *w;

    if (ngx_http_qcc_journal_fd == -1) {
        return NGX_ERROR;
    }

    w = ngx_array_push(ngx_http_qcc_filling->waiters);
    if (w == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    o = ngx_http_qcc_order_lookup_locked(q, feed, order_no, len);

    if (o == NULL) {
        rc = NGX_ERROR;

    } else {
        ngx_http_qcc_journal_order_rec(o, &rec);
        rc = ngx_http_qcc_journal_add_locked(q, &rec, log);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_http_qcc_filling->waiters->nelts--;
        return NGX_ERROR;
    }

    w->done = done;
    w->data = data;

    ngx_http_qcc_journal_kick(log);

    return NGX_OK;
}


ngx_int_t
ngx_http_qcc_journal_state_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_log_t *log)
{
    qcc_journal_rec_t  rec;

    if (ngx_http_qcc_journal_fd == -1) {
        return NGX_ERROR;
    }

    ngx_http_qcc_journal_state_rec(o, &rec);

    if (ngx_http_qcc_journal_add_locked(q, &rec, log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_qcc_journal_kick(log);

    return NGX_OK;
}


ngx_int_t
ngx_http_qcc_journal_link_locked(ngx_http_qcc_queue_t *q,
    ngx_http_qcc_order_t *o, ngx_log_t *log)
{
    qcc_journal_rec_t  rec;

    if (ngx_http_qcc_journal_fd == -1) {
        return NGX_ERROR;
    }

    ngx_memzero(&rec, sizeof(qcc_journal_rec_t));

    rec.type = QCC_JOURNAL_LINK;
    rec.feed = o->feed;
    rec.order_no = o->order_no;
    rec.order_no_len = o->order_no_len;
    rec.url = o->url;
    rec.url_len = o->url_len;
    rec.password = o->password;
    rec.password_len = o->password_len;
    rec.expires = o->expires;
    rec.updated = o->updated;

    if (ngx_http_qcc_journal_add_locked(q, &rec, log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_qcc_journal_kick(log);

    return NGX_OK;
}


static ngx_int_t
ngx_http_qcc_journal_add_locked(ngx_http_qcc_queue_t *q,
    qcc_journal_rec_t *rec, ngx_log_t *log)
{
    u_char                        *p;
    size_t                         len;
    ngx_http_qcc_journal_batch_t  *b;

    b = ngx_http_qcc_filling;

    if (b->size - b->len < QCC_JOURNAL_RECORD_MAX) {
        p = ngx_alloc(2 * b->size, log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, b->buf, b->len);

        /* the first buffer is the cycle pool's, later ones are ours */
        if (b->size > 4 * QCC_JOURNAL_RECORD_MAX) {
            ngx_free(b->buf);
        }

        b->buf = p;
        b->size *= 2;
    }

    rec->seq = ++q->sh->journal_seq;

    if (qcc_journal_encode(rec, b->buf + b->len, b->size - b->len, &len)
        != QCC_JOURNAL_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "qcc: a journal record could not be encoded");
        return NGX_ERROR;
    }

    b->len += len;

    return NGX_OK;
}


/*
 * Starts writing the filling batch, unless it is empty, or another batch
 * is being written and the oldest of them not for long (see
 * NGX_HTTP_QCC_JOURNAL_OVERLAP), or as many as allowed are.
 */

static void
ngx_http_qcc_journal_kick(ngx_log_t *log)
{
    ngx_uint_t                        i;
    ngx_msec_t                        oldest, now;
    ngx_msec_int_t                    wait;
    ngx_http_qcc_journal_batch_t     *b;
#if (NGX_THREADS)
    ngx_http_qcc_journal_task_ctx_t  *ctx;
#else
    int                               err;
#endif

    b = ngx_http_qcc_filling;

    if (b->len == 0 || ngx_http_qcc_free == NULL) {
        return;
    }

    if (ngx_http_qcc_inflight) {
        now = ngx_current_msec;
        oldest = now;

        for (i = 0; i <= NGX_HTTP_QCC_JOURNAL_INFLIGHT; i++) {
            if (ngx_http_qcc_batches[i].inflight
                && (ngx_msec_int_t) (ngx_http_qcc_batches[i].start - oldest)
                   < 0)
            {
                oldest = ngx_http_qcc_batches[i].start;
            }
        }

        wait = (ngx_msec_int_t) (oldest + NGX_HTTP_QCC_JOURNAL_OVERLAP
                                 - now);

        if (wait > 0) {
            /* the sync in flight is answered first, unless it is slow */
            if (!ngx_http_qcc_journal_overlap.timer_set) {
                ngx_add_timer(&ngx_http_qcc_journal_overlap, wait);
            }

            return;
        }
    }

    ngx_http_qcc_filling = ngx_http_qcc_free;
    ngx_http_qcc_free = ngx_http_qcc_free->next;

    ngx_http_qcc_inflight++;
    b->inflight = 1;
    b->start = ngx_current_msec;

    if (!ngx_http_qcc_journal_guard.timer_set) {
        ngx_add_timer(&ngx_http_qcc_journal_guard, 1000);
    }

#if (NGX_THREADS)

    ctx = b->task->ctx;
    ctx->fd = ngx_http_qcc_journal_fd;
    ctx->err = 0;
    ctx->pos = &ngx_http_qcc_journal_pos;
    ctx->batch = b;

    if (ngx_thread_task_post(ngx_http_qcc_journal_qmcf->thread_pool, b->task)
        == NGX_OK)
    {
        return;
    }

    ngx_http_qcc_journal_complete(b, NGX_EAGAIN, log);

#else

    err = 0;

    if (qcc_journal_write(ngx_http_qcc_journal_fd, &ngx_http_qcc_journal_pos,
                          b->buf, b->len, &err)
        != QCC_JOURNAL_OK)
    {
        err = err ? err : NGX_EIO;
    }

    ngx_http_qcc_journal_complete(b, err, log);

#endif
}


static void
ngx_http_qcc_journal_overlap_handler(ngx_event_t *ev)
{
    ngx_http_qcc_journal_kick(ev->log);
}


#if (NGX_THREADS)

/*
 * In a thread: nothing of nginx's but the plain context.  The append is
 * serialized across workers by flock(), which the kernel releases if a
 * worker dies; the sync runs outside it, beside other batches' syncs.
 */

static void
ngx_http_qcc_journal_write_handler(void *data, ngx_log_t *log)
{
    ngx_http_qcc_journal_task_ctx_t *ctx = data;

    int  err, rc;

    err = 0;

    if (ngx_thread_mutex_lock(&ngx_http_qcc_append_mutex, log) != NGX_OK) {
        ctx->err = EAGAIN;
        return;
    }

    if (flock(ctx->fd, LOCK_EX) == -1) {
        ctx->err = errno;
        (void) ngx_thread_mutex_unlock(&ngx_http_qcc_append_mutex, log);
        return;
    }

    rc = qcc_journal_append(ctx->fd, ctx->pos, ctx->batch->buf,
                            ctx->batch->len, &err);

    (void) flock(ctx->fd, LOCK_UN);
    (void) ngx_thread_mutex_unlock(&ngx_http_qcc_append_mutex, log);

    if (rc != QCC_JOURNAL_OK) {
        ctx->err = err ? err : EIO;
        return;
    }

    if (fdatasync(ctx->fd) == -1) {
        ctx->err = errno;
    }
}


static void
ngx_http_qcc_journal_written(ngx_event_t *ev)
{
    ngx_http_qcc_journal_batch_t     *b;
    ngx_http_qcc_journal_task_ctx_t  *ctx;

    b = ev->data;
    ctx = b->task->ctx;

    ngx_http_qcc_journal_complete(b, ctx->err, ev->log);
}

#endif


static void
ngx_http_qcc_journal_complete(ngx_http_qcc_journal_batch_t *b,
    ngx_int_t err, ngx_log_t *log)
{
    ngx_uint_t                      i, n;
    ngx_http_qcc_journal_waiter_t  *w;

    if (err) {
        ngx_log_error(NGX_LOG_ERR, log, err,
                      "qcc: writing %uz bytes to journal \"%V\" failed",
                      b->len, &ngx_http_qcc_journal_qmcf->journal);
    }

    w = b->waiters->elts;
    n = b->waiters->nelts;

    /*
     * The batch is not free while its waiters run: what they append goes
     * to the filling batch, and w is not overwritten.
     */

    for (i = 0; i < n; i++) {
        w[i].done(w[i].data, err ? NGX_ERROR : NGX_OK);
    }

    b->len = 0;
    b->waiters->nelts = 0;
    b->inflight = 0;
    b->next = ngx_http_qcc_free;
    ngx_http_qcc_free = b;
    ngx_http_qcc_inflight--;

    /* what was added meanwhile goes out in the next group */
    ngx_http_qcc_journal_kick(log);

    if (ngx_http_qcc_inflight == 0 && ngx_http_qcc_journal_guard.timer_set) {
        ngx_del_timer(&ngx_http_qcc_journal_guard);
    }
}


static void
ngx_http_qcc_journal_guard_handler(ngx_event_t *ev)
{
    if (ngx_http_qcc_inflight) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "qcc: a journal write has taken more than a second");
        ngx_add_timer(ev, 1000);
    }
}
