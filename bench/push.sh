#!/usr/bin/env bash
#
# bench/push.sh: fetching pushed orders, off the event loop.  One gateway
# nginx with the whole push path (callback, driver, download through
# proxy_store, unpack in the thread pool, spool on the local disk under
# build/bench/push/, deliver), against the mock QCC (t/mock/qcc-mock: it
# makes the 7-Zip AES ZIPs, serves them as OSS and pushes the callbacks),
# plus two small nginx instances: the upstream of the signed route
# (`return 200`) and the app that orders are delivered to (a Lua handler
# that reads the whole POST, then answers 200).  Measured in one run:
#
#   (a) the event loop stays free: p99 latency of signed proxy requests
#       (`qcc_sign on`, proxied to the local upstream), idle and then
#       while LARGE_N pushes of ~50 MB of JSON each are downloaded,
#       decrypted, inflated, validated, spooled and delivered, again and
#       again (in waves: the next LARGE_N once the last are delivered, as
#       new orders sharing the same ZIPs) until the busy window is as long
#       as the idle one.  Equal windows weigh a rare stall of the machine
#       equally: in a window of one wave (under 1 s, about 1,000 probe
#       requests) a single 5 ms stall of the VM makes the p99, in 8 s it
#       does not.  The probe
#       is paced (wrk's delay(): PROBE_CONNS connections, each waiting
#       PROBE_DELAY ms between requests) so that it measures how soon the
#       gateway answers, not how much CPU wrk wins from the unpacking
#       threads on a machine of 2 cores.  Goal: busy p99 <= 1.2x idle.
#   (b) orders delivered per second for small pushes: SMALL_N orders of 3
#       records pushed by the mock (push_many, SMALL_CONC at a time); from
#       the first callback (the gateway's access log: $msec - $request_time)
#       to the last order delivered (polling the status endpoint).
#   (c) MB/s for large pushes: JSON bytes delivered per second, from the
#       first large ZIP downloaded (the mock's request record) to the last
#       POST the app finished reading (its access log), the first wave of
#       (a), all at once; also each order's own unpack+deliver time, and
#       the MB/s over all the waves of the busy window.
#
# The large ZIPs take the mock 5-12 s each to make: they are made first,
# once, and pushed again in every round to a fresh gateway (new journal,
# spool and zone).  Each measurement runs BENCH_ROUNDS (5) times; the table
# gives the median and every round.
#
# Prints a markdown table and writes it to build/bench/push.md.
# The gateway has `sendfile on` (as Debian's stock nginx.conf): the
# deliver POST then goes out with sendfile(); with `off` nginx copies the
# 50 MB file in 8 KB pread/writev pairs on the event loop.  The busy line
# also says how long the workers' event-loop threads ran and how long they
# were runnable but waited for a CPU (/proc schedstat): on a shared
# machine of 2 cores the latter, not blocking calls, is what stretches p99.
#
# Knobs: BENCH_ROUNDS (5), BENCH_WORKERS (1, gateway workers),
# BENCH_LARGE_N (4), BENCH_LARGE_BYTES (50000000), BENCH_SMALL_N (200),
# BENCH_SMALL_CONC (16), BENCH_FETCH_CONC (4: qcc_fetch concurrency, its
# default), BENCH_PROBE_CONNS (8), BENCH_PROBE_DELAY (5 ms),
# BENCH_IDLE (8s), BENCH_BUSY (as BENCH_IDLE: the least length of the
# busy window), BENCH_MAX_WAVES (30), BENCH_SENDFILE (on), BENCH_POOL_THREADS (unset: the
# default pool of 32 threads; N: a pool of N threads for qcc),
# BENCH_POOL_NICE (unset; N: an experiment, the workers' threads other
# than the event loop reniced to N: what a lower priority for the unpacking
# would give), BENCH_DELIVER_CONF (unset; directives added to the deliver
# location, e.g. 'aio threads;'), BENCH_GW_CONF (unset; directives added
# to the gateway's main context, e.g. 'worker_priority -5;'),
# BENCH_REMOTE_NICE (unset; N: the mock and the app, which stand for
# machines elsewhere, run at nice N), BENCH_LOOP_CPU and BENCH_OTHER_CPU
# (unset; both or neither: an experiment, the CPUs split with taskset:
# the gateway's event loop, the probe and the signed route's upstream on
# BENCH_LOOP_CPU, the gateway's pool threads, the mock and the app on
# BENCH_OTHER_CPU).
# Everything listens on 127.0.0.1 or a unix socket and
# is stopped by PID at the end.

set -euo pipefail

BENCH_NAME=push
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${QCC_MODULE:-$ROOT/build/ngx_http_qcc_module.so}
MODDIR=/usr/lib/nginx/modules
MOCK=$ROOT/t/mock/qcc-mock
OUT=$ROOT/build/bench
WORK=$OUT/push
ROUNDS=${BENCH_ROUNDS:-5}
WORKERS=${BENCH_WORKERS:-1}
LARGE_N=${BENCH_LARGE_N:-4}
LARGE_BYTES=${BENCH_LARGE_BYTES:-50000000}
SMALL_N=${BENCH_SMALL_N:-200}
SMALL_CONC=${BENCH_SMALL_CONC:-16}
FETCH_CONC=${BENCH_FETCH_CONC:-4}
PROBE_CONNS=${BENCH_PROBE_CONNS:-8}
PROBE_DELAY=${BENCH_PROBE_DELAY:-5}
IDLE=${BENCH_IDLE:-8s}
BUSY=${BENCH_BUSY:-$IDLE}
MAX_WAVES=${BENCH_MAX_WAVES:-30}
SENDFILE=${BENCH_SENDFILE:-on}
POOL_THREADS=${BENCH_POOL_THREADS:-}
POOL_NICE=${BENCH_POOL_NICE:-}
# as conf/qcc.conf: unpacking in a pool of its own at a lower priority
# (BENCH_UNPACK_POOL=N threads; empty: the shared pool)
UNPACK_POOL=${BENCH_UNPACK_POOL-2}
# extra directives for the deliver location (an experiment)
DELIVER_CONF=${BENCH_DELIVER_CONF:-}
# extra directives for the gateway's main context (an experiment)
GW_CONF=${BENCH_GW_CONF:-}
# nice value for the mock and the app, which stand for machines elsewhere
REMOTE_NICE=${BENCH_REMOTE_NICE:-}
# the CPUs split between the event loop's side and the rest (taskset)
LOOP_CPU=${BENCH_LOOP_CPU:-}
OTHER_CPU=${BENCH_OTHER_CPU:-}
USER_=${BENCH_USER:-www-data}

KEY=BenchAppKey
SECRET=BenchSecretKey0123456789abcdef
REQ='api/radar_ext/getReportInfo?orderNo=JKDAY-167660123348194027'


# --- extras ------------------------------------------------------------------

bench_packages wrk curl p7zip-full libnginx-mod-http-lua
[ -f "$MODULE" ] || die "module not built: $MODULE (make)"
for m in ndk_http_module ngx_http_lua_module; do
    [ -f "$MODDIR/$m.so" ] || die "no $MODDIR/$m.so"
done

# --- processes ------------------------------------------------------------------

PIDS=()
stop_pid() {
    local pid=$1
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    [ -n "${WRK_PID:-}" ] && kill "$WRK_PID" 2>/dev/null || true
    [ -n "${GW_PID:-}" ] && stop_pid "$GW_PID"
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    # gigabytes of ZIPs and JSON: not worth keeping
    rm -rf "$WORK/mock/files" "$WORK/gateway/spool" "$WORK/gateway/tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM



if [ -n "$LOOP_CPU$OTHER_CPU" ] && [ -z "$LOOP_CPU" -o -z "$OTHER_CPU" ]; then
    die "BENCH_LOOP_CPU and BENCH_OTHER_CPU go together"
fi

# pin PID CPUS: every thread of PID on CPUS
pin() {
    taskset -a -p -c "$2" "$1" > /dev/null
}

rm -rf "$WORK"
mkdir -p "$WORK/upstream" "$WORK/app" "$WORK/gateway" "$WORK/mock/files"
# A private copy: a rebuild during the run must not touch the loaded code.
cp "$MODULE" "$WORK/gateway/ngx_http_qcc_module.so"
MODULE=$WORK/gateway/ngx_http_qcc_module.so
printf '%s\n' "$SECRET" > "$WORK/secret"
chmod 0600 "$WORK/secret"
cp "$WORK/secret" "$WORK/gateway/secret"

# --- the mock QCC ------------------------------------------------------------

${OTHER_CPU:+taskset -c $OTHER_CPU} \
${REMOTE_NICE:+nice -n $REMOTE_NICE} "$MOCK" --port 0 --port-file "$WORK/mock/port" --pid-file "$WORK/mock/pid" \
    --account "$KEY:$WORK/secret" --files-dir "$WORK/mock/files" \
    --log "$WORK/mock/mock.log" --record-limit 20000 \
    > "$WORK/mock/out.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do [ -s "$WORK/mock/port" ] && break; sleep 0.1; done
[ -s "$WORK/mock/port" ] || die "the mock did not start: $(tail -5 "$WORK/mock/out.log")"
MP=$(cat "$WORK/mock/port")

# mock METHOD PATH [JSON]: the mock's control API
mock() {
    curl -sf -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "http://127.0.0.1:$MP$2"
}

# --- the upstream and the app ----------------------------------------------------

UP=$(free_port); APP=$(free_port); GW=$(free_port)
while [ "$APP" = "$UP" ]; do APP=$(free_port); done
while [ "$GW" = "$UP" ] || [ "$GW" = "$APP" ]; do GW=$(free_port); done

cat > "$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 4096; }
http {
$(temp_paths "$WORK/upstream")
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$UP backlog=4096;
        location / {
            return 200 '{"status":"200","msg":"ok","result":{"reportStatus":"S"}}\n';
        }
    }
}
EOF

# The app reads each delivered JSON to its end (streamed, not kept), then
# answers 200; its access log says when and how much.
cat > "$WORK/app/nginx.conf" <<EOF
load_module $MODDIR/ndk_http_module.so;
load_module $MODDIR/ngx_http_lua_module.so;
worker_processes 1;
pid $WORK/app/nginx.pid;
error_log $WORK/app/error.log warn;
events { worker_connections 1024; }
http {
$(temp_paths "$WORK/app")
    log_format app '\$msec \$request_time \$http_x_qcc_order_no \$content_length \$status';
    access_log $WORK/app/access.log app;
    server {
        listen 127.0.0.1:$APP;
        client_max_body_size 0;
        location = /app/push {
            content_by_lua_block {
                local sock = assert(ngx.req.socket())
                local left = tonumber(ngx.var.content_length) or 0
                while left > 0 do
                    local n = left < 1048576 and left or 1048576
                    local data, err = sock:receive(n)
                    if not data then
                        ngx.log(ngx.ERR, "body: ", err)
                        return ngx.exit(400)
                    end
                    left = left - n
                end
                ngx.say("ok")
            }
        }
    }
}
EOF

start_nginx upstream "$WORK/upstream" "$UP"
PIDS+=("$NGINX_PID")
if [ -n "$LOOP_CPU" ]; then
    for p in $(pgrep -P "${PIDS[-1]}") "${PIDS[-1]}"; do pin "$p" "$LOOP_CPU"; done
fi
start_nginx app "$WORK/app" "$APP"
PIDS+=("$NGINX_PID")
if [ -n "$OTHER_CPU" ]; then
    for p in $(pgrep -P "${PIDS[-1]}") "${PIDS[-1]}"; do pin "$p" "$OTHER_CPU"; done
fi
if [ -n "$REMOTE_NICE" ]; then
    for p in $(pgrep -P "${PIDS[-1]}") "${PIDS[-1]}"; do
        renice -n "$REMOTE_NICE" -p "$p" >/dev/null
    done
fi

# --- the gateway: started fresh for every round -----------------------------------

GWD=$WORK/gateway
cat > "$GWD/nginx.conf" <<EOF
load_module $MODULE;
user $USER_;
worker_processes $WORKERS;
pid $GWD/nginx.pid;
${POOL_THREADS:+thread_pool qcc threads=$POOL_THREADS;}
${UNPACK_POOL:+thread_pool qcc_unpack threads=$UNPACK_POOL;}
error_log $GWD/error.log warn;
$GW_CONF
events { worker_connections 4096; }
http {
$(temp_paths "$GWD")
    access_log off;
    keepalive_requests 1000000;
    log_format cb '\$msec \$request_time \$status';
    sendfile $SENDFILE;
    ${POOL_THREADS:+qcc_thread_pool qcc;}
    ${UNPACK_POOL:+qcc_unpack_thread_pool qcc_unpack;}

    qcc_queue zone=qcc:16m journal=$GWD/journal/qcc.journal;
    qcc_download_hosts 127.0.0.1:$MP;
    qcc_key $KEY;
    qcc_secret_key_file $GWD/secret;

    upstream up {
        server 127.0.0.1:$UP;
        keepalive 128;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:$GW backlog=4096;

        location = /qcc/callback/risk {
            access_log $GWD/callback.log cb;
            qcc_callback dd_risk_mnr;
        }
        location = /qcc/callback/corp {
            access_log $GWD/callback.log cb;
            qcc_callback dd_corp_monitor;
        }
        location = /qcc/status { qcc_status; }

        location /sign/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            qcc_sign on;
            proxy_pass http://up/;
        }
    }

    server {
        listen unix:$GWD/driver.sock;

        location = /driver {
            qcc_fetch unix:$GWD/driver.sock download=/download
                      temp=$GWD/tmp concurrency=$FETCH_CONC;
            qcc_retry attempts=3 delay=1s max_delay=2s;
            qcc_spool $GWD/spool;
            qcc_deliver /deliver;
        }
        location = /download {
            internal;
            proxy_pass \$qcc_download_url;
            proxy_store \$qcc_download_file;
            proxy_store_access user:rw;
        }
        location = /deliver {
            internal;
            client_max_body_size 0;
            $DELIVER_CONF
            proxy_pass http://127.0.0.1:$APP/app/push;
        }
    }
}
EOF

gw_start() {
    rm -rf "$GWD/journal" "$GWD/spool" "$GWD/tmp" "$GWD/callback.log"
    mkdir -p "$GWD/journal" "$GWD/spool" "$GWD/tmp"
    chown "$USER_" "$GWD/journal" "$GWD/spool" "$GWD/tmp"
    start_nginx gateway "$GWD" "$GW"
    GW_PID=$NGINX_PID
    if [ -n "$LOOP_CPU" ]; then
        # an experiment: the event loop on its own side, its pool's
        # threads with the mock and the app
        local w t
        for w in $(pgrep -P "$GW_PID"); do
            for t in /proc/"$w"/task/*; do
                t=${t##*/}
                if [ "$t" = "$w" ]; then
                    taskset -p -c "$LOOP_CPU" "$t" > /dev/null
                else
                    taskset -p -c "$OTHER_CPU" "$t" > /dev/null
                fi
            done
        done
    fi
    if [ -n "$POOL_NICE" ]; then
        # an experiment: the workers' threads but the event loop niced
        local w t
        for w in $(pgrep -P "$GW_PID"); do
            for t in /proc/"$w"/task/*; do
                t=${t##*/}
                [ "$t" = "$w" ] || renice -n "$POOL_NICE" -p "$t" > /dev/null
            done
        done
    fi
}
gw_stop() {
    stop_pid "$GW_PID"
    GW_PID=""
}

# counts FEED: "delivered failed" from the status endpoint
counts() {
    curl -sf "http://127.0.0.1:$GW/qcc/status?limit=0" | python3 -c '
import json, sys
f = json.load(sys.stdin)["feeds"][sys.argv[1]]
print(f["delivered"], f["failed"])' "$1"
}

# wait_done FEED N TIMEOUT: waits (polling the status endpoint every 20 ms)
# until N orders of FEED are delivered or failed; prints the time then.
wait_done() {
    python3 - "$GW" "$1" "$2" "$3" <<'EOF'
import http.client, json, sys, time
port, feed, n, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.time() + timeout
c = http.client.HTTPConnection("127.0.0.1", int(port))
while time.time() < deadline:
    c.request("GET", "/qcc/status?limit=0")
    f = json.loads(c.getresponse().read())["feeds"][feed]
    if f["delivered"] + f["failed"] >= n:
        print("%.3f" % time.time())
        sys.exit(0)
    time.sleep(0.02)
sys.exit("timeout: %d of %d done" % (f["delivered"] + f["failed"], n))
EOF
}

# CPU time (clock ticks) used so far by the gateway's workers and threads.
gw_ticks() {
    local f sum=0 st
    for f in /proc/[0-9]*/stat; do
        read -r -a st 2>/dev/null < "$f" || continue
        [ "${st[3]:-}" = "$GW_PID" ] || continue
        sum=$((sum + st[13] + st[14]))
    done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

# Of the workers' event-loop threads (the thread whose id is the worker's
# PID): "ns on a CPU, ns runnable but waiting for one" so far.
ev_sched() {
    local w sum_run=0 sum_wait=0 run wait _
    for w in $(pgrep -P "$GW_PID"); do
        read -r run wait _ < "/proc/$w/task/$w/schedstat" || continue
        sum_run=$((sum_run + run)); sum_wait=$((sum_wait + wait))
    done
    echo "$sum_run $sum_wait"
}

# pusher.py MOCK_PORT GW_PORT FEED WAVES BUSY TIMEOUT: prints "ready",
# then on SIGUSR1 has the mock push the orders of the first line of WAVES,
# polls the status endpoint every 20 ms until all are delivered or failed,
# then the next line's, and so on until BUSY seconds have passed since
# the first push; prints " PUSHED DONE WAVES" (Unix times) after it.
cat > "$WORK/pusher.py" <<'EOF'
import http.client, json, signal, sys, time
mp, gw, feed, waves, busy, timeout = sys.argv[1:7]
waves = [l.split() for l in open(waves) if l.strip()]
signal.signal(signal.SIGUSR1, lambda *_: None)
sys.stdout.write("ready"); sys.stdout.flush()
signal.pause()
pushed = time.time()
m = http.client.HTTPConnection("127.0.0.1", int(mp))
g = http.client.HTTPConnection("127.0.0.1", int(gw))
deadline = pushed + float(timeout)
n = done = 0
for k, wave in enumerate(waves):
    for no in wave:
        m.request("POST", "/__mock/push", json.dumps({
            "feed": feed, "orderNo": no, "async": True,
            "callback": "http://127.0.0.1:%s/qcc/callback/%s"
                        % (gw, "risk" if feed == "dd_risk_mnr" else "corp")}),
            {"Content-Type": "application/json"})
        r = m.getresponse(); r.read()
        if r.status // 100 != 2:
            sys.exit("push of %s: %d" % (no, r.status))
    n += len(wave)
    while done < n:
        if time.time() > deadline:
            sys.exit("timeout: %d of %d done" % (done, n))
        time.sleep(0.02)
        g.request("GET", "/qcc/status?limit=0")
        f = json.loads(g.getresponse().read())["feeds"][feed]
        done = f["delivered"] + f["failed"]
    if time.time() - pushed >= float(busy):
        break
sys.stdout.write(" %.3f %.3f %d\n" % (pushed, time.time(), k + 1))
EOF

# --- the large orders, made once --------------------------------------------------

say "making $LARGE_N pushes of $LARGE_BYTES bytes of JSON (the mock, 7-Zip)"
t0=$(date +%s)
MAKERS=()
for i in $(seq "$LARGE_N"); do
    mock POST /__mock/order "{\"feed\":\"dd_risk_mnr\",\"orderNo\":\"BENCHBIG$i\",\"min_bytes\":$LARGE_BYTES}" \
        | python3 -c 'import json, sys; o = json.load(sys.stdin); print(o["orderNo"], o["json_size"], o["zip_size"])' \
        > "$WORK/large.$i" &
    MAKERS+=("$!")
    # two at a time: two cores
    if [ "${#MAKERS[@]}" = 2 ]; then wait "${MAKERS[@]}"; MAKERS=(); fi
done
[ "${#MAKERS[@]}" = 0 ] || wait "${MAKERS[@]}"
cat "$WORK"/large.* > "$WORK/large.orders"
[ "$(wc -l < "$WORK/large.orders")" = "$LARGE_N" ] || die "the mock did not make the large orders"
LARGE_JSON=$(awk '{ s += $2 } END { print s }' "$WORK/large.orders")
LARGE_ZIP=$(awk '{ s += $3 } END { print s }' "$WORK/large.orders")
say "made in $(( $(date +%s) - t0 )) s: $LARGE_JSON bytes of JSON in $LARGE_ZIP bytes of ZIP"

# the waves of the busy window: the large orders, then new orders sharing
# their ZIPs (made once too; every round's gateway is a fresh one)
cut -d' ' -f1 "$WORK/large.orders" | paste -sd' ' > "$WORK/waves"
for w in $(seq 2 "$MAX_WAVES"); do
    line=""
    for i in $(seq "$LARGE_N"); do
        no=$(mock POST /__mock/order "{\"feed\":\"dd_risk_mnr\",\"orderNo\":\"BENCHBIG${i}W$w\",\"same_as\":\"BENCHBIG$i\"}" \
             | python3 -c 'import json, sys; print(json.load(sys.stdin)["orderNo"])') \
            || die "the mock did not make the orders of wave $w"
        line+="$no "
    done
    echo "$line" >> "$WORK/waves"
done

# --- the probe ------------------------------------------------------------------------

cat > "$WORK/probe.lua" <<'EOF'
function init(args)
    pause = tonumber(args[1])
end
function delay()
    return pause
end
EOF

# probe SECS: starts wrk in the background (WRK_PID), output to probe.out
probe_start() {
    ${LOOP_CPU:+taskset -c $LOOP_CPU} \
    wrk -t1 -c"$PROBE_CONNS" -d"$1" --latency -s "$WORK/probe.lua" \
        "http://127.0.0.1:$GW/sign/$REQ" -- "$PROBE_DELAY" \
        > "$WORK/probe.out" 2>&1 &
    WRK_PID=$!
}
# probe_result: waits for wrk; sets P_RPS (requests/s) and P_P99 (ms)
probe_result() {
    wait "$WRK_PID" || true
    WRK_PID=""
    grep -q 'Non-2xx\|Socket errors' "$WORK/probe.out" \
        && die "probe: errors: $(cat "$WORK/probe.out")"
    read -r P_RPS P_P99 < <(awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
            ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v
        }
        END { if (rps == "" || ms == "") exit 1; printf "%s %.3f\n", rps, ms }
    ' "$WORK/probe.out") || die "probe: cannot read wrk output: $(cat "$WORK/probe.out")"
}

# --- (a) and (c): idle, then the large pushes -----------------------------------------

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
IDLE_P99=""; BUSY_P99=""; RATIO=""; IDLE_RPS=""; BUSY_RPS=""
LARGE_MBS=""; LARGE_ONE=""; LARGE_WALL=""; LARGE_CPU=""; EV_RUN=""; EV_WAIT=""; EV_IDLE=""
SUST_MBS=""; BUSY_WIN=""; WAVES=""
for r in $(seq "$ROUNDS"); do
    gw_start
    curl -sf -o /dev/null "http://127.0.0.1:$GW/sign/$REQ" || die "the signed route does not answer"
    probe_start 2s; probe_result                          # warm-up
    read -r ev_run0 ev_wait0 < <(ev_sched); w0=$(date +%s%N)
    probe_start "$IDLE"
    probe_result; irps=$P_RPS; ip99=$P_P99
    read -r ev_run1 ev_wait1 < <(ev_sched); w1=$(date +%s%N)
    ev_idle=$(( (ev_wait1 - ev_wait0) * 1000 / (w1 - w0) ))

    app_before=$(wc -l < "$WORK/app/access.log" 2>/dev/null || echo 0)
    since=$(mock GET '/__mock/requests?kind=files' | python3 -c 'import json, sys; r = json.load(sys.stdin); print(max([x["id"] for x in r] or [0]))')
    tk0=$(gw_ticks)
    read -r ev_run0 ev_wait0 < <(ev_sched); w0=$(date +%s%N)
    # The pusher is started before the window and only signalled in it,
    # so that no interpreter starts and no curl forks while the probe
    # measures: the window holds the gateway's work, not the rig's.
    rm -f "$WORK/pusher.out"
    python3 "$WORK/pusher.py" "$MP" "$GW" dd_risk_mnr "$WORK/waves" \
        "${BUSY%s}" 600 > "$WORK/pusher.out" 2>&1 &
    pusher=$!
    for _ in $(seq 100); do [ -s "$WORK/pusher.out" ] && break; sleep 0.05; done
    probe_start 600s
    kill -USR1 "$pusher"
    wait "$pusher" || die "large pushes: $(cat "$WORK/pusher.out")"
    read -r _ tp tdone waves < "$WORK/pusher.out"
    kill -INT "$WRK_PID"
    probe_result; brps=$P_RPS; bp99=$P_P99
    tk1=$(gw_ticks)
    read -r ev_run1 ev_wait1 < <(ev_sched); w1=$(date +%s%N)
    # per second of the window: ms on a CPU, ms runnable but waiting
    ev_run=$(( (ev_run1 - ev_run0) * 1000 / (w1 - w0) ))
    ev_wait=$(( (ev_wait1 - ev_wait0) * 1000 / (w1 - w0) ))
    read -r delivered failed < <(counts dd_risk_mnr)
    [ "$failed" = 0 ] && [ "$delivered" = "$((LARGE_N * waves))" ] \
        || die "large pushes: $delivered delivered, $failed failed: $(tail -5 "$GWD/error.log")"

    # (c): from the first ZIP downloaded to the last JSON the app read
    mock GET "/__mock/requests?kind=files&since=$since" > "$WORK/downloads.json"
    tail -n +"$((app_before + 1))" "$WORK/app/access.log" > "$WORK/app.round"
    read -r mbs one wall < <(python3 - "$WORK/downloads.json" "$WORK/app.round" "$WORK/large.orders" "$tp" <<'EOF'
import json, statistics, sys
downloads = json.load(open(sys.argv[1]))
orders = {l.split()[0]: int(l.split()[1]) for l in open(sys.argv[3])}
pushed = float(sys.argv[4])
got = {}
for x in downloads:
    no = x["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    # the first wave's: later waves download the same files
    if no in orders and x.get("end_time") and x["status"] == 200 \
            and x["end_time"] < got.get(no, float("inf")):
        got[no] = x["end_time"]
done, size = {}, {}
for l in open(sys.argv[2]):
    msec, rt, no, clen, status = l.split()
    if no in orders and status == "200":
        done[no] = float(msec)
        size[no] = int(clen)
assert set(done) == set(orders) == set(got), (sorted(done), sorted(got))
assert all(size[no] == orders[no] for no in orders), "delivered sizes differ"
window = max(done.values()) - min(got.values())
one = statistics.median(size[no] / 1e6 / (done[no] - got[no]) for no in orders)
print("%.1f %.1f %.2f" % (sum(size.values()) / 1e6 / window, one,
                          max(done.values()) - pushed))
EOF
    ) || die "large pushes: cannot time them"
    cpu=$(awk -v t=$((tk1 - tk0)) -v hz="$HZ" -v n="$((LARGE_N * waves))" 'BEGIN { printf "%.2f", t / hz / n }')
    # over the whole window: every wave's JSON, first push to last delivered
    read -r smbs bwin < <(awk -v b="$LARGE_JSON" -v w="$waves" -v a="$tp" -v z="$tdone" \
        'BEGIN { printf "%.1f %.1f\n", b * w / 1e6 / (z - a), z - a }')
    ratio=$(awk -v a="$bp99" -v b="$ip99" 'BEGIN { printf "%.3f", a / b }')
    say "round $r: idle p99 $ip99 ms ($irps req/s), busy p99 $bp99 ms ($brps req/s): ${ratio}x;" \
        "busy window $bwin s, $waves waves of $LARGE_N, $smbs MB/s over it;" \
        "first wave: $mbs MB/s together, $one MB/s each, all done $wall s after the first push; gateway CPU $cpu s/order;" \
        "event loop, per second: $ev_run ms on a CPU, $ev_wait ms waiting for one ($ev_idle idle)"
    IDLE_P99+="$ip99 "; BUSY_P99+="$bp99 "; RATIO+="$ratio "
    IDLE_RPS+="$irps "; BUSY_RPS+="$brps "
    LARGE_MBS+="$mbs "; LARGE_ONE+="$one "; LARGE_WALL+="$wall "; LARGE_CPU+="$cpu "
    SUST_MBS+="$smbs "; BUSY_WIN+="$bwin "; WAVES+="$waves "
    EV_RUN+="$ev_run "; EV_WAIT+="$ev_wait "; EV_IDLE+="$ev_idle "
    [ -s "$GWD/spool/dd_risk_mnr/$(head -1 "$WORK/large.orders" | cut -d' ' -f1).json" ] \
        || die "no spool file"
    gw_stop
done

# --- (b): small pushes ------------------------------------------------------------------

SMALL_RATE=""; SMALL_WALL=""; SMALL_CPU=""
for r in $(seq "$ROUNDS"); do
    gw_start
    tk0=$(gw_ticks)
    # the mock makes all the orders first, then pushes them
    mock POST /__mock/push_many "{\"feed\":\"dd_corp_monitor\",\"count\":$SMALL_N,\"concurrency\":$SMALL_CONC,\"order\":{\"records\":3},\"callback\":\"http://127.0.0.1:$GW/qcc/callback/corp\"}" \
        > "$WORK/push_many.json" &
    mpid=$!
    tdone=$(wait_done dd_corp_monitor "$SMALL_N" 300) || die "small pushes: $tdone"
    wait "$mpid" || die "push_many failed"
    tk1=$(gw_ticks)
    ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$WORK/push_many.json")
    [ "$ok" = "$SMALL_N" ] || die "small pushes: $ok of $SMALL_N acknowledged"
    read -r delivered failed < <(counts dd_corp_monitor)
    [ "$failed" = 0 ] && [ "$delivered" = "$SMALL_N" ] \
        || die "small pushes: $delivered delivered, $failed failed: $(tail -5 "$GWD/error.log")"
    [ "$(find "$GWD/spool/dd_corp_monitor" -name '*.json' | wc -l)" = "$SMALL_N" ] \
        || die "small pushes: not every order spooled"
    tfirst=$(awk '$3 == 200 { t = $1 - $2; if (m == "" || t < m) m = t } END { printf "%.3f", m }' "$GWD/callback.log")
    read -r rate wall < <(awk -v a="$tfirst" -v b="$tdone" -v n="$SMALL_N" \
        'BEGIN { printf "%.1f %.2f\n", n / (b - a), b - a }')
    cpu=$(awk -v t=$((tk1 - tk0)) -v hz="$HZ" -v n="$SMALL_N" 'BEGIN { printf "%.2f", t / hz * 1000 / n }')
    say "round $r: $SMALL_N small orders delivered in $wall s: $rate orders/s (gateway CPU $cpu ms/order)"
    SMALL_RATE+="$rate "; SMALL_WALL+="$wall "; SMALL_CPU+="$cpu "
    gw_stop
done

# --- the table -----------------------------------------------------------------------

each() { tr ' ' '\n' | grep . | paste -sd/ | sed 's|/| / |g'; }
f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }

m_idle=$(median <<< "$IDLE_P99"); m_busy=$(median <<< "$BUSY_P99")
m_ratio=$(median <<< "$RATIO")
verdict=$(awk -v a="$m_ratio" 'BEGIN { print (a <= 1.2) ? "met" : "NOT met" }')
LARGE_MB=$(awk -v b="$LARGE_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')

mkdir -p "$OUT"
{
    echo "| measurement | result (median of $ROUNDS) | each round |"
    echo "|---|---:|---:|"
    echo "| signed proxy p99, idle | $(f2 "$m_idle") ms | $(each <<< "$IDLE_P99") |"
    echo "| signed proxy p99, while $LARGE_N × $LARGE_MB MB pushes are fetched, wave after wave | $(f2 "$m_busy") ms | $(each <<< "$BUSY_P99") |"
    echo "| the busy window: seconds (waves of $LARGE_N) | $(median <<< "$BUSY_WIN") | $(paste -d' ' <(tr ' ' '\n' <<< "$BUSY_WIN" | grep .) <(tr ' ' '\n' <<< "$WAVES" | grep . | sed 's/.*/(&)/') | paste -sd/ | sed 's|/| / |g') |"
    echo "| busy / idle p99 (goal ≤ 1.2) | **$(f2 "$m_ratio")×** ($verdict) | $(each <<< "$RATIO") |"
    echo "| the event-loop thread runnable but waiting for a CPU, ms per second: idle | $(median <<< "$EV_IDLE") | $(each <<< "$EV_IDLE") |"
    echo "| the same, busy (and ms per second it ran) | $(median <<< "$EV_WAIT") ($(median <<< "$EV_RUN")) | $(each <<< "$EV_WAIT") |"
    echo "| probe requests/s, idle / busy | $(median <<< "$IDLE_RPS" | xargs printf '%.0f') / $(median <<< "$BUSY_RPS" | xargs printf '%.0f') | |"
    echo "| small pushes ($SMALL_N × 3 records): orders delivered/s | **$(median <<< "$SMALL_RATE")** | $(each <<< "$SMALL_RATE") |"
    echo "| small pushes: first callback to last delivered | $(median <<< "$SMALL_WALL") s | $(each <<< "$SMALL_WALL") |"
    echo "| small pushes: gateway CPU per order | $(median <<< "$SMALL_CPU") ms | $(each <<< "$SMALL_CPU") |"
    echo "| large pushes ($LARGE_N × $LARGE_MB MB at once): JSON MB/s, unpack + spool + deliver | **$(median <<< "$LARGE_MBS")** | $(each <<< "$LARGE_MBS") |"
    echo "| large pushes: each order's own MB/s, download end to delivered | $(median <<< "$LARGE_ONE") | $(each <<< "$LARGE_ONE") |"
    echo "| large pushes: first push to last delivered | $(median <<< "$LARGE_WALL") s | $(each <<< "$LARGE_WALL") |"
    echo "| large pushes: gateway CPU per order (workers + threads) | $(median <<< "$LARGE_CPU") s | $(each <<< "$LARGE_CPU") |"
    echo "| large pushes, wave after wave for the busy window: JSON MB/s | $(median <<< "$SUST_MBS") | $(each <<< "$SUST_MBS") |"
    echo
    echo "Probe: wrk -t1 -c$PROBE_CONNS --latency with a ${PROBE_DELAY} ms delay() between"
    echo "requests on each connection, against a \`qcc_sign on\` location proxying to a"
    echo "local \`return 200\` (keepalive): $IDLE idle, then from the first large push"
    echo "to the last delivered, the pushes in waves (the next $LARGE_N once the last"
    echo "are delivered) for at least $BUSY. Large pushes: $LARGE_N orders of $LARGE_JSON bytes of"
    echo "JSON in all ($LARGE_ZIP bytes of 7-Zip AES-256 ZIP), pushed at once by the"
    echo "mock QCC, downloaded from it through proxy_store, unpacked in nginx's"
    echo "thread pool, spooled (fsync, rename, directory fsync) and POSTed to a local"
    echo "app that reads every byte. Small pushes: the mock's push_many, $SMALL_CONC at a"
    echo "time; the mock (Python) serves every download. Gateway worker_processes"
    echo "$WORKERS, sendfile $SENDFILE, thread pool ${POOL_THREADS:-default (32 threads)}, unpack pool ${UNPACK_POOL:-shared}${POOL_NICE:+ reniced to $POOL_NICE}, qcc_fetch concurrency=$FETCH_CONC,"
    [ -z "$LOOP_CPU" ] || echo "CPUs split: the event loop, the probe and the upstream on $LOOP_CPU; the pool's threads, the mock and the app on $OTHER_CPU;"
    echo "spool and journal on"
    echo "$(df -PT "$GWD" | awk 'NR == 2 { print $2 }') ($(df -P "$GWD" | awk 'NR == 2 { print $1 }')); a fresh gateway (journal, zone, spool) per round;"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
    echo "shared with wrk, the mock and other users; nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'),"
    echo "$(uname -sr); load average $LOAD0 before, $(cut -d' ' -f1-3 /proc/loadavg) after."
} > "$OUT/push.md"
cat "$OUT/push.md"
