#!/usr/bin/env bash
#
# bench/callback.sh: what acknowledging a push costs.  A gateway nginx,
# measured with wrk in one run, every request a callback of the same
# shape and size (QCC's five arguments, an OSS link percent-encoded, a
# distinct orderNo per request from a counter in wrk's request()):
#
#   ceiling   a location `return 200 '{"status":"200","msg":"成功"}'` with
#             the callback's Content-Type: what nginx does at best
#   refused   `qcc_callback` with a wrong key: the cheap refusal (403, JSON,
#             one warn line in the error log)
#   valid     `qcc_callback`, valid and distinct: each answered only once
#             its journal record is fdatasync'd (group commit in the
#             thread pool); the journal lives on the local disk, under
#             build/bench/callback/
#
# Every round starts a fresh gateway (empty journal and zone), so that
# rounds measure the same conditions and no round inherits the orders of
# the others.  In each it checks each answer (status, body, Content-Type)
# and that a valid callback shows in the status endpoint, warms up, then
# runs the three back to back in a rotating order; the ratios are medians
# of per-round ratios, so that drift of the machine hits all three alike.
# After each round it checks, from the status endpoint, that every valid
# callback wrk counted was queued once (no 503, no duplicate, nothing
# evicted: the zone holds every order of the round) and that every
# wrong-key request was refused; then it stops that gateway and deletes
# its journal.
#
# Prints a markdown table and writes it to build/bench/callback.md.
# Knobs: BENCH_THREADS (1), BENCH_CONNS (32), BENCH_DURATION (5s),
# BENCH_WARMUP (1s, per kind and round), BENCH_ROUNDS (5), BENCH_WORKERS
# (1, gateway workers), BENCH_ZONE (1024m: a round's orders at 100k/s),
# BENCH_LOG_LEVEL (warn: the refusals' warn lines are written).  The
# machine's cores are shared by wrk and nginx, hence one wrk thread and a
# modest number of connections.
# Everything listens on 127.0.0.1 and is stopped by PID at the end.

set -euo pipefail

BENCH_NAME=callback
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${QCC_MODULE:-$ROOT/build/ngx_http_qcc_module.so}
OUT=$ROOT/build/bench
WORK=$OUT/callback
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNS:-32}
DURATION=${BENCH_DURATION:-5s}
WARMUP=${BENCH_WARMUP:-1s}
ROUNDS=${BENCH_ROUNDS:-5}
WORKERS=${BENCH_WORKERS:-1}
ZONE=${BENCH_ZONE:-1024m}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
USER_=${BENCH_USER:-www-data}

KEY=BenchAppKey
BADKEY=BenchAppKez
FEED=dd_corp_monitor


# --- extras ------------------------------------------------------------------

bench_packages wrk curl
[ -f "$MODULE" ] || die "module not built: $MODULE (make)"

# --- the gateway: a fresh one per round --------------------------------------

GW_PID=""
stop_gw() {
    local pid=$GW_PID
    GW_PID=""
    [ -n "$pid" ] || return 0
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
cleanup() {
    stop_gw
    # hundreds of thousands of records, and as many warn lines: kept
    # only when the run failed
    rm -f "$WORK/journal/qcc.journal"
    [ -z "${DONE:-}" ] || rm -f "$WORK/error.log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


rm -rf "$WORK"
mkdir -p "$WORK"
# A private copy: a rebuild during the run must not touch the loaded code.
cp "$MODULE" "$WORK/ngx_http_qcc_module.so"
MODULE=$WORK/ngx_http_qcc_module.so
GW=$(free_port)


cat > "$WORK/nginx.conf" <<EOF
load_module $MODULE;
user $USER_;
worker_processes $WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/error.log $LOG_LEVEL;
events { worker_connections 4096; }
http {
$(temp_paths "$WORK")
    access_log off;
    keepalive_requests 1000000;

    qcc_queue zone=qcc:$ZONE journal=$WORK/journal/qcc.journal;
    qcc_key $KEY;

    server {
        listen 127.0.0.1:$GW backlog=4096;

        # the ceiling: the same answer, as cheap as nginx makes it
        location = /qcc/ceiling/corp {
            default_type "application/json;charset=utf-8";
            return 200 '{"status":"200","msg":"成功"}';
        }
        location = /qcc/callback/corp { qcc_callback $FEED; }
        location = /qcc/status { qcc_status; }
    }
}
EOF

# start_gw: a gateway with an empty journal and a fresh zone
start_gw() {
    rm -rf "$WORK/journal"
    mkdir -p "$WORK/journal"
    chown "$USER_" "$WORK/journal"
    start_nginx gateway "$WORK" "$GW"
    GW_PID=$NGINX_PID
}

# --- the callback, as QCC sends it -------------------------------------------

# Everything after orderNo: a realistic OSS link of pro-files.qichacha.com
# (the default qcc_download_hosts), its expiry and a password.
REST='&downloadUrl=http%3A%2F%2Fpro-files.qichacha.com%2FDdMonitor%2FDDMON2021031616145803273367.zip%3FExpires%3D1615897140%26OSSAccessKeyId%3DLTAI4FxfKZ3dcCzbGVUbhCgT%26Signature%3DabcD%252Bef%253D&downloadUrlExpiredTime=2031-03-16%2020%3A19%3A00&unzipPassword=Pw7xQs3cr3tKp9Lm2Zt4'

# wrk: each thread numbers its requests; the prefix (one per run) and the
# thread number keep every orderNo of the whole run distinct.
cat > "$WORK/callback.lua" <<'EOF'
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function init(args)
    path, key, prefix, rest = args[1], args[2], args[3], args[4]
    n = 0
    prefix = prefix .. "-" .. (tid or 1) .. "-"
end
function request()
    n = n + 1
    return wrk.format("GET", path .. "?key=" .. key .. "&orderNo=" .. prefix
                      .. n .. rest)
end
EOF

url_of() {        # KIND -> "path key"
    case $1 in
        ceiling) echo "/qcc/ceiling/corp $KEY" ;;
        refused) echo "/qcc/callback/corp $BADKEY" ;;
        valid)   echo "/qcc/callback/corp $KEY" ;;
    esac
}

status_json() { curl -sf "http://127.0.0.1:$GW/qcc/status?limit=0"; }
# counters: "queued ok duplicate error refused" of the feed
counters() {
    status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)["feeds"]["'"$FEED"'"]
c = s["callbacks"]
print(s["queued"], c["ok"], c["duplicate"], c["error"], c["refused"])'
}

check() {
    local kind=$1 want_code=$2 want_body=$3 path key out code ctype body
    read -r path key < <(url_of "$kind")
    out=$(curl -s -D - -o "$WORK/check.body" -w '%{http_code}' \
        "http://127.0.0.1:$GW$path?key=$key&orderNo=CHECK-$kind$REST")
    code=${out##*$'\n'}
    ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *\(.*\)\r$/\1/p' <<< "$out")
    body=$(cat "$WORK/check.body")
    [ "$code" = "$want_code" ] || die "$kind: HTTP $code, want $want_code: $body"
    [ "$ctype" = "application/json;charset=utf-8" ] \
        || die "$kind: Content-Type '$ctype'"
    [[ $body == $want_body ]] || die "$kind: body '$body'"
}

# --- wrk ----------------------------------------------------------------

# CPU time (clock ticks) used so far by the gateway's workers, threads
# included.
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

# run KIND SECS TAG: one wrk run; sets RUN ("requests/s p99_ms
# cpu_us_per_request"); TAG (distinct per run) starts its orderNos; the
# number of requests wrk saw answered goes to $WORK/run.count.
run() {
    local kind=$1 secs=$2 tag=$3 out t0 t1 path key non2xx n
    read -r path key < <(url_of "$kind")
    t0=$(gw_ticks)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$secs" --latency -s "$WORK/callback.lua" \
        "http://127.0.0.1:$GW" -- "$path" "$key" "B$tag$kind" "$REST" 2>&1) \
        || die "wrk failed: $out"
    t1=$(gw_ticks)
    ! grep -q 'Socket errors' <<< "$out" || die "$kind: socket errors: $out"
    n=$(awk '/requests in/ { print $1 }' <<< "$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<< "$out")
    case $kind in
        refused)
            [ "${non2xx:-0}" = "$n" ] || die "refused: $non2xx of $n refused: $out" ;;
        *)
            [ -z "$non2xx" ] || die "$kind: errors: $out
gateway error log: $(tail -5 "$WORK/error.log")" ;;
    esac
    echo "$kind $n" >> "$WORK/run.count"
    RUN=$(awk -v ticks=$((t1 - t0)) -v hz="$HZ" '
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
    ' <<< "$out") || die "$kind: cannot read wrk output: $out"
}

# round_check R: every valid callback of round R queued once, every
# wrong key refused (wrk stops with requests in flight: those are queued
# or refused but not counted, at most CONNS per wrk run)
round_check() {
    local r=$1 valid_n refused_n queued ok dup err refused
    valid_n=$(awk '$1 == "valid" { s += $2 } END { print s + 0 }' "$WORK/run.count")
    refused_n=$(awk '$1 == "refused" { s += $2 } END { print s + 0 }' "$WORK/run.count")
    read -r queued ok dup err refused < <(counters) \
        || die "round $r: no status"
    [ "$err" = 0 ] || die "round $r: $err callbacks answered 503 (zone $ZONE full? journal?)"
    [ "$dup" = 0 ] || die "round $r: $dup duplicate callbacks: orderNos not distinct"
    [ "$queued" = "$ok" ] || die "round $r: queued $queued != acknowledged $ok"
    [ "$ok" -ge $((valid_n + 1)) ] && [ "$ok" -le $((valid_n + 1 + 2 * CONNS)) ] \
        || die "round $r: acknowledged $ok, wrk counted $valid_n"
    [ "$refused" -ge $((refused_n + 1)) ] \
        && [ "$refused" -le $((refused_n + 1 + 2 * CONNS)) ] \
        || die "round $r: refused $refused, wrk counted $refused_n"
    QUEUED_ALL=$((QUEUED_ALL + queued))
    REFUSED_ALL=$((REFUSED_ALL + refused))
    say "round $r: all $queued valid callbacks queued once (journal" \
        "$(stat -c %s "$WORK/journal/qcc.journal") bytes), $refused refused"
}

KINDS=(ceiling refused valid)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS P99 CPU
R_RC=""; R_VC=""
QUEUED_ALL=0; REFUSED_ALL=0
for r in $(seq "$ROUNDS"); do
    start_gw
    check ceiling 200 '{"status":"200","msg":"成功"}'
    check refused 403 '{"status":"403",*}'
    check valid 200 '{"status":"200","msg":"成功"}'
    [ "$(counters | cut -d' ' -f1)" = 1 ] \
        || die "the valid check callback is not queued"
    [ -s "$WORK/journal/qcc.journal" ] || die "no journal written"
    : > "$WORK/run.count"
    for k in 0 1 2; do
        run "${KINDS[$(( (r + k) % 3 ))]}" "$WARMUP" "w$r"
    done
    declare -A NOW=()
    for k in 0 1 2; do
        kind=${KINDS[$(( (r + k) % 3 ))]}
        run "$kind" "$DURATION" "$r"
        read -r rps p99 cpu <<< "$RUN"
        say "round $r $kind: $rps req/s, p99 $p99 ms, gateway CPU $cpu us/request"
        RPS[$kind]+="$rps "
        P99[$kind]+="$p99 "
        CPU[$kind]+="$cpu "
        NOW[$kind]=$rps
    done
    R_RC+="$(awk -v a="${NOW[refused]}" -v b="${NOW[ceiling]}" 'BEGIN { print a / b }') "
    R_VC+="$(awk -v a="${NOW[valid]}" -v b="${NOW[ceiling]}" 'BEGIN { print a / b }') "
    round_check "$r"
    JOURNAL_MB=$(awk -v b="$(stat -c %s "$WORK/journal/qcc.journal")" 'BEGIN { printf "%.0f", b / 1e6 }')
    stop_gw
    rm -f "$WORK/journal/qcc.journal"
done
say "every round: all valid callbacks queued once, every wrong key refused"

# --- the table ------------------------------------------------------------


for kind in "${KINDS[@]}"; do
    eval "M_$kind=$(median <<< "${RPS[$kind]}")"
    eval "L_$kind=$(median <<< "${P99[$kind]}")"
    eval "C_$kind=$(median <<< "${CPU[$kind]}")"
done

r3() { awk -v a="$1" 'BEGIN { printf "%.3f", a }'; }
r_ref=$(r3 "$(median <<< "$R_RC")")
r_val=$(r3 "$(median <<< "$R_VC")")
p99_verdict=$(awk -v a="$L_valid" 'BEGIN { print (a < 10) ? "met" : "NOT met" }')
DISK=$(df -P "$WORK" | awk 'NR == 2 { print $1 }')
FSTYPE=$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')

mkdir -p "$OUT"
{
    echo "| callback | requests/s | p99 latency | vs ceiling | gateway CPU per request |"
    echo "|---|---:|---:|---:|---:|"
    printf '| `return 200` with the same JSON (ceiling) | %.0f | %.2f ms | 1.000 | %.1f µs |\n' "$M_ceiling" "$L_ceiling" "$C_ceiling"
    printf '| wrong key: 403 (the cheap refusal) | %.0f | %.2f ms | %s | %.1f µs |\n' "$M_refused" "$L_refused" "$r_ref" "$C_refused"
    printf '| valid, distinct, journaled (fdatasync) | %.0f | %.2f ms | %s | %.1f µs |\n' "$M_valid" "$L_valid" "$r_val" "$C_valid"
    echo
    echo "refusals/ceiling = **$r_ref** (per round $(range <<< "$R_RC"); goal >= 0.9: $(verdict "$r_ref" 0.9)),"
    echo "valid/ceiling = **$r_val** (per round $(range <<< "$R_VC"); goal >= 0.5: $(verdict "$r_val" 0.5)),"
    echo "valid p99 = **$(printf '%.2f' "$L_valid") ms** (per round $(range <<< "${P99[valid]}") ms; goal < 10 ms: $p99_verdict)."
    echo "Gateway CPU per request, per round: ceiling $(range <<< "${CPU[ceiling]}"),"
    echo "refused $(range <<< "${CPU[refused]}"), valid $(range <<< "${CPU[valid]}") µs."
    echo
    echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, a distinct orderNo per request"
    echo "(the callback's five arguments, $(( ${#REST} + 60 )) bytes of query);"
    echo "medians of $ROUNDS rounds (ratios: median of the per-round ratios), each"
    echo "against a fresh gateway (empty journal, fresh zone) after a $WARMUP warm-up"
    echo "per kind; gateway worker_processes $WORKERS, access_log off, error_log"
    echo "$LOG_LEVEL (each refusal writes its warn line); zone $ZONE, never full:"
    echo "all $QUEUED_ALL orders of the rounds queued once, none evicted; journal on"
    echo "$FSTYPE ($DISK), $JOURNAL_MB MB at the end of the last round; $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)) shared with wrk,"
    echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(uname -sr); load average"
    echo "$LOAD0 before, $(cut -d' ' -f1-3 /proc/loadavg) after."
} > "$OUT/callback.md"
cat "$OUT/callback.md"
DONE=1
