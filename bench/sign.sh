#!/usr/bin/env bash
#
# bench/sign.sh: what signing costs.  One gateway nginx with three
# locations in front of one local upstream (a separate nginx answering
# `return 200` with a small JSON body), measured with wrk in one run:
#
#   plain  proxy_pass only (the ceiling)
#   sign   qcc_sign on
#   lua    the same signing in Lua (libnginx-mod-http-lua): key argument,
#          Timespan, Token = string.upper(ngx.md5(key..ts..secret))
#
# Before measuring it checks that sign and lua send the upstream the same
# thing (key argument first, Timespan, a Token it recomputes).  The rounds
# run the three back to back in a rotating order; the ratios are medians
# of per-round ratios, so that drift of the machine hits all three alike.
#
# Also counts the instructions the gateway executes per request (valgrind's
# callgrind), which the rest of the machine does not disturb.
#
# Prints a markdown table and writes it to build/bench/sign.md.
# Knobs: BENCH_THREADS (2), BENCH_CONNS (50), BENCH_DURATION (3s),
# BENCH_WARMUP (3s), BENCH_ROUNDS (15: many short rounds, since what else
# runs on the machine moves a single round by tens of percent), BENCH_WORKERS (1, gateway workers),
# BENCH_CG_N1 / BENCH_CG_N2 (500 / 2500 requests under callgrind).
# Everything listens on 127.0.0.1 and is stopped by PID at the end.

set -euo pipefail

BENCH_NAME=sign
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${QCC_MODULE:-$ROOT/build/ngx_http_qcc_module.so}
MODDIR=/usr/lib/nginx/modules
OUT=$ROOT/build/bench
WORK=$OUT/sign
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-50}
DURATION=${BENCH_DURATION:-3s}
WARMUP=${BENCH_WARMUP:-3s}
ROUNDS=${BENCH_ROUNDS:-15}
WORKERS=${BENCH_WORKERS:-1}

KEY=BenchAppKey
SECRET=BenchSecretKey0123456789abcdef
REQ='api/radar_ext/getReportInfo?orderNo=JKDAY-167660123348194027'


# --- extras ------------------------------------------------------------------

bench_packages wrk libnginx-mod-http-lua valgrind
[ -f "$MODULE" ] || die "module not built: $MODULE (make)"
for m in ndk_http_module ngx_http_lua_module; do
    [ -f "$MODDIR/$m.so" ] || die "no $MODDIR/$m.so"
done

# --- two nginx instances -------------------------------------------------------

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -QUIT "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# start NAME PORT: runs $WORK/NAME/nginx.conf, records the master's PID.
start() {
    start_nginx "$1" "$WORK/$1" "$2"
    PIDS+=("$NGINX_PID")
}

rm -rf "$WORK"
mkdir -p "$WORK/upstream" "$WORK/gateway"
# A private copy: a rebuild during the run must not touch the loaded code.
cp "$MODULE" "$WORK/gateway/ngx_http_qcc_module.so"
MODULE=$WORK/gateway/ngx_http_qcc_module.so
UP=$(free_port)
GW=$(free_port)
while [ "$GW" = "$UP" ]; do GW=$(free_port); done


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
        # what the gateway sent, for the check before measuring
        location /check {
            return 200 'args=\$args token=\$http_token timespan=\$http_timespan\n';
        }
        location / {
            return 200 '{"status":"200","msg":"ok","result":{"reportStatus":"S"}}\n';
        }
    }
}
EOF

printf '%s\n' "$SECRET" > "$WORK/gateway/secret"
chmod 0600 "$WORK/gateway/secret"

cat > "$WORK/gateway/nginx.conf" <<EOF
load_module $MODULE;
load_module $MODDIR/ndk_http_module.so;
load_module $MODDIR/ngx_http_lua_module.so;
worker_processes $WORKERS;
pid $WORK/gateway/nginx.pid;
error_log $WORK/gateway/error.log warn;
events { worker_connections 4096; }
http {
$(temp_paths "$WORK/gateway")
    access_log off;
    keepalive_requests 1000000;

    upstream up {
        server 127.0.0.1:$UP;
        keepalive 128;
        keepalive_requests 1000000;
    }

    qcc_key $KEY;
    qcc_secret_key_file $WORK/gateway/secret;

    # The Lua signer's account, read once like the module does.
    init_by_lua_block {
        local f = assert(io.open("$WORK/gateway/secret"))
        QCC_SECRET = f:read("*l")
        f:close()
        QCC_KEY = "$KEY"
        QCC_KEY_ARG = "key=" .. ngx.escape_uri(QCC_KEY)
    }

    server {
        listen 127.0.0.1:$GW backlog=4096;

        proxy_http_version 1.1;
        proxy_set_header Connection "";

        location /plain/ {
            proxy_pass http://up/;
        }

        location /sign/ {
            qcc_sign on;
            proxy_pass http://up/;
        }

        location /lua/ {
            set \$lua_timespan "";
            set \$lua_token "";
            access_by_lua_block {
                -- the key argument first, any client "key" dropped,
                -- every other argument kept in order
                local args = ngx.var.args
                local out = { QCC_KEY_ARG }
                if args and args ~= "" then
                    local i, n = 1, #args
                    while i <= n do
                        local j = string.find(args, "&", i, true) or n + 1
                        local seg = string.sub(args, i, j - 1)
                        if string.lower(string.match(seg, "^[^=]*")) ~= "key" then
                            out[#out + 1] = seg
                        end
                        i = j + 1
                    end
                end
                ngx.var.args = table.concat(out, "&")
                local ts = tostring(ngx.time())
                ngx.var.lua_timespan = ts
                ngx.var.lua_token =
                    string.upper(ngx.md5(QCC_KEY .. ts .. QCC_SECRET))
            }
            # proxy_set_header also drops the client's own Token/Timespan;
            # it replaces the server level's list, so Connection again
            proxy_set_header Connection "";
            proxy_set_header Timespan \$lua_timespan;
            proxy_set_header Token \$lua_token;
            proxy_pass http://up/;
        }
    }
}
EOF

start upstream "$UP"
start gateway "$GW"

# --- the same work in sign and lua ----------------------------------------

check() {
    local loc=$1 body args token ts want
    body=$(curl -sf -H 'Token: forged' -H 'tImEsPaN: 1' \
        "http://127.0.0.1:$GW/$loc/check?x=1&key=forged&y=%E4%B8%AD") \
        || die "$loc: no answer"
    args=$(sed -n 's/^args=\(\S*\) .*/\1/p' <<< "$body")
    token=$(sed -n 's/.* token=\(\S*\) .*/\1/p' <<< "$body")
    ts=$(sed -n 's/.* timespan=\(\S*\)$/\1/p' <<< "$body")
    [ "$args" = "key=$KEY&x=1&y=%E4%B8%AD" ] || die "$loc: upstream got args '$args'"
    [[ $ts =~ ^[0-9]+$ ]] || die "$loc: upstream got Timespan '$ts'"
    want=$(printf '%s' "$KEY$ts$SECRET" | md5sum | cut -c1-32 | tr a-f A-F)
    [ "$token" = "$want" ] || die "$loc: upstream got Token '$token', want $want"
}
check sign
check lua
plain=$(curl -sf "http://127.0.0.1:$GW/plain/check?x=1")
[ "$plain" = "args=x=1 token= timespan=" ] || die "plain: upstream got '$plain'"
say "sign and lua send the same key argument and headers; measuring"

# --- wrk ----------------------------------------------------------------

# CPU time (clock ticks) used so far by the gateway's workers.
GW_MASTER=$(cat "$WORK/gateway/nginx.pid")
gw_ticks() {
    local f sum=0 st
    for f in /proc/[0-9]*/stat; do
        read -r -a st 2>/dev/null < "$f" || continue
        [ "${st[3]:-}" = "$GW_MASTER" ] || continue
        sum=$((sum + st[13] + st[14]))
    done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

# run LOC SECS: prints "requests/s p99_ms cpu_us_per_request" of one run.
run() {
    local loc=$1 secs=$2 out t0 t1
    t0=$(gw_ticks)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$secs" --latency \
        "http://127.0.0.1:$GW/$loc/$REQ" 2>&1) || die "wrk failed: $out"
    t1=$(gw_ticks)
    if grep -q 'Non-2xx\|Socket errors' <<< "$out"; then
        die "$loc: errors: $out
gateway error log: $(tail -5 "$WORK/gateway/error.log")
upstream error log: $(tail -5 "$WORK/upstream/error.log")"
    fi
    awk -v ticks=$((t1 - t0)) -v hz="$HZ" '
        /requests in/ { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
            ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v
        }
        END {
            if (rps == "" || ms == "" || n == 0) exit 1
            printf "%s %.3f %.2f\n", rps, ms, ticks / hz * 1e6 / n
        }
    ' <<< "$out" || die "$loc: cannot read wrk output: $out"
}

LOCS=(plain sign lua)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS P99 CPU
for loc in "${LOCS[@]}"; do
    run "$loc" "$WARMUP" > /dev/null
done
# Each round runs the three back to back, starting with a different one
# each time; the ratios are taken within a round, where the rest of the
# machine was about the same for all three.
R_SP=""; R_SL=""; R_LP=""
for r in $(seq "$ROUNDS"); do
    declare -A NOW=()
    for k in 0 1 2; do
        loc=${LOCS[$(( (r + k) % 3 ))]}
        read -r rps p99 cpu < <(run "$loc" "$DURATION")
        say "round $r $loc: $rps req/s, p99 $p99 ms, gateway CPU $cpu us/request"
        RPS[$loc]+="$rps "
        P99[$loc]+="$p99 "
        CPU[$loc]+="$cpu "
        NOW[$loc]=$rps
    done
    R_SP+="$(awk -v a="${NOW[sign]}" -v b="${NOW[plain]}" 'BEGIN { print a / b }') "
    R_SL+="$(awk -v a="${NOW[sign]}" -v b="${NOW[lua]}" 'BEGIN { print a / b }') "
    R_LP+="$(awk -v a="${NOW[lua]}" -v b="${NOW[plain]}" 'BEGIN { print a / b }') "
done

for loc in "${LOCS[@]}"; do
    eval "M_$loc=$(median <<< "${RPS[$loc]}")"
    eval "L_$loc=$(median <<< "${P99[$loc]}")"
    eval "C_$loc=$(median <<< "${CPU[$loc]}")"
done

r3() { awk -v a="$1" 'BEGIN { printf "%.3f", a }'; }
r_plain=$(r3 "$(median <<< "$R_SP")")
r_lua=$(r3 "$(median <<< "$R_SL")")
lua_plain=$(r3 "$(median <<< "$R_LP")")

# --- instructions per request (callgrind) -------------------------------
#
# Throughput on a shared machine moves with everything else that runs;
# the instructions the gateway process executes per request do not.  The
# gateway runs single-process under callgrind, once with N1 and once with
# N2 requests on one keep-alive connection; the difference divided by
# N2 - N1 is the user-space cost of one request (the kernel's share, most
# of a proxied request, is not counted, so these ratios are an upper bound
# of the throughput ratios).

N1=${BENCH_CG_N1:-500}
N2=${BENCH_CG_N2:-2500}
GW_PID=$(cat "$WORK/gateway/nginx.pid")
kill -QUIT "$GW_PID"
for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done

# instructions LOC N (bench/lib.sh): a callgrind run serving N requests.
declare -A IR
for loc in "${LOCS[@]}"; do
    a=$(instructions "$loc" "$N1")
    b=$(instructions "$loc" "$N2")
    [ -n "$a" ] && [ -n "$b" ] || die "$loc: no callgrind totals"
    IR[$loc]=$(( (b - a) / (N2 - N1) ))
    say "$loc: ${IR[$loc]} instructions/request in the gateway process"
done

mkdir -p "$OUT"
{
    echo "| gateway location | requests/s | p99 latency | vs plain | gateway CPU per request | instructions per request (user space) |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '| plain `proxy_pass` (ceiling) | %.0f | %.2f ms | 1.000 | %.1f µs | %d |\n' "$M_plain" "$L_plain" "$C_plain" "${IR[plain]}"
    printf '| `qcc_sign on` | %.0f | %.2f ms | %s | %.1f µs | %d (+%d) |\n' "$M_sign" "$L_sign" "$r_plain" "$C_sign" "${IR[sign]}" $(( IR[sign] - IR[plain] ))
    printf '| Lua (`access_by_lua_block`, `ngx.md5`) | %.0f | %.2f ms | %s | %.1f µs | %d (+%d) |\n' "$M_lua" "$L_lua" "$lua_plain" "$C_lua" "${IR[lua]}" $(( IR[lua] - IR[plain] ))
    echo
    echo "sign/plain = **$r_plain** (per round: middle half $(quartiles <<< "$R_SP"), all $(range <<< "$R_SP"); goal >= 0.97: $(verdict "$r_plain" 0.97)),"
    echo "sign/lua = **$r_lua** (per round: middle half $(quartiles <<< "$R_SL"), all $(range <<< "$R_SL"); goal > 1: $(verdict "$r_lua" 1.0000001))."
    echo
    echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency against /<location>/$REQ;"
    echo "medians of $ROUNDS rounds (ratios: median of the per-round ratios), after a"
    echo "$WARMUP warm-up each; gateway worker_processes $WORKERS, upstream 1 worker,"
    echo "keepalive to the upstream. Instructions: callgrind, the gateway"
    echo "single-process, ($N2 - $N1) requests on one keep-alive connection."
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)),"
    echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(uname -sr); load average"
    echo "$LOAD0 before, $(cut -d' ' -f1-3 /proc/loadavg) after."
} > "$OUT/sign.md"
cat "$OUT/sign.md"
