#!/usr/bin/env bash
#
# bench/callback.sh: what acknowledging a push costs.  One gateway nginx,
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
# Before measuring it checks each answer (status, body, Content-Type) and
# that a valid callback shows in the status endpoint.  The rounds run the
# three back to back in a rotating order; the ratios are medians of
# per-round ratios, so that drift of the machine hits all three alike.
# After measuring it checks, from the status endpoint, that every valid
# callback wrk counted was queued once (no 503, no duplicate, nothing
# evicted: the zone holds every order of the run) and that every wrong-key
# request was refused.
#
# Prints a markdown table and writes it to build/bench/callback.md.
# Knobs: BENCH_THREADS (1), BENCH_CONNS (32), BENCH_DURATION (5s),
# BENCH_WARMUP (2s), BENCH_ROUNDS (5), BENCH_WORKERS (1, gateway workers),
# BENCH_ZONE (512m), BENCH_LOG_LEVEL (warn: the refusals' warn lines are
# written).  The machine's cores are shared by wrk and nginx, hence one
# wrk thread and a modest number of connections.
# Everything listens on 127.0.0.1 and is stopped by PID at the end.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${QCC_MODULE:-$ROOT/build/ngx_http_qcc_module.so}
OUT=$ROOT/build/bench
WORK=$OUT/callback
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNS:-32}
DURATION=${BENCH_DURATION:-5s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-5}
WORKERS=${BENCH_WORKERS:-1}
ZONE=${BENCH_ZONE:-512m}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
USER_=${BENCH_USER:-www-data}

KEY=BenchAppKey
BADKEY=BenchAppKez
FEED=dd_corp_monitor

say() { printf 'bench/callback: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- extras ------------------------------------------------------------------

missing=""
for p in wrk curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null
fi
[ -f "$MODULE" ] || die "module not built: $MODULE (make)"

# --- the gateway ----------------------------------------------------------------

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
    # hundreds of thousands of records, and as many warn lines: kept
    # only when the run failed
    rm -f "$WORK/journal/qcc.journal"
    [ -z "${DONE:-}" ] || rm -f "$WORK/error.log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rm -rf "$WORK"
mkdir -p "$WORK/journal"
chown "$USER_" "$WORK/journal"
# A private copy: a rebuild during the run must not touch the loaded code.
cp "$MODULE" "$WORK/ngx_http_qcc_module.so"
MODULE=$WORK/ngx_http_qcc_module.so
GW=$(free_port)

temp_paths() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do
        echo "    ${t}_temp_path $1/temp_$t;"
    done
}

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

"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" \
    || die "gateway did not start: $(tail -5 "$WORK/error.log")"
for _ in $(seq 100); do
    [ -s "$WORK/nginx.pid" ] && listening "$GW" && break
    sleep 0.05
done
listening "$GW" || die "gateway does not listen on $GW"
PIDS+=("$(cat "$WORK/nginx.pid")")

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
# counter FIELD: queued orders or callbacks by outcome of the feed
counter() {
    status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)["feeds"]["'"$FEED"'"]
k = sys.argv[1]
print(s["callbacks"][k[3:]] if k.startswith("cb_") else s[k])' "$1"
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
check ceiling 200 '{"status":"200","msg":"成功"}'
check refused 403 '{"status":"403",*}'
check valid 200 '{"status":"200","msg":"成功"}'
[ "$(counter queued)" = 1 ] || die "the valid check callback is not queued"
[ -s "$WORK/journal/qcc.journal" ] || die "no journal written"
say "ceiling, refusal and valid callback answer as they should; measuring"

# --- wrk ----------------------------------------------------------------

# CPU time (clock ticks) used so far by the gateway's workers.
GW_MASTER=$(cat "$WORK/nginx.pid")
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

# run KIND SECS TAG: prints "requests/s p99_ms cpu_us_per_request" of one
# run; TAG (distinct per run) starts its orderNos; the numbers of requests
# wrk saw answered go to valid.count and refused.count.
run() {
    local kind=$1 secs=$2 tag=$3 out t0 t1 path key non2xx n
    read -r path key < <(url_of "$kind")
    t0=$(gw_ticks)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$secs" --latency -s "$WORK/callback.lua" \
        "http://127.0.0.1:$GW" -- "$path" "$key" "B$tag$kind" "$REST" 2>&1) \
        || die "wrk failed: $out"
    t1=$(gw_ticks)
    grep -q 'Socket errors' <<< "$out" && die "$kind: socket errors: $out"
    n=$(awk '/requests in/ { print $1 }' <<< "$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<< "$out")
    case $kind in
        refused)
            [ "${non2xx:-0}" = "$n" ] || die "refused: $non2xx of $n refused: $out"
            echo "$n" >> "$WORK/refused.count" ;;
        *)
            [ -z "$non2xx" ] || die "$kind: errors: $out
gateway error log: $(tail -5 "$WORK/error.log")"
            [ "$kind" = valid ] && echo "$n" >> "$WORK/valid.count" ;;
    esac
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
    ' <<< "$out" || die "$kind: cannot read wrk output: $out"
}

KINDS=(ceiling refused valid)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS P99 CPU
: > "$WORK/valid.count"; : > "$WORK/refused.count"
for kind in "${KINDS[@]}"; do
    run "$kind" "$WARMUP" w > /dev/null
done
R_RC=""; R_VC=""
for r in $(seq "$ROUNDS"); do
    declare -A NOW=()
    for k in 0 1 2; do
        kind=${KINDS[$(( (r + k) % 3 ))]}
        read -r rps p99 cpu < <(run "$kind" "$DURATION" "$r")
        say "round $r $kind: $rps req/s, p99 $p99 ms, gateway CPU $cpu us/request"
        RPS[$kind]+="$rps "
        P99[$kind]+="$p99 "
        CPU[$kind]+="$cpu "
        NOW[$kind]=$rps
    done
    R_RC+="$(awk -v a="${NOW[refused]}" -v b="${NOW[ceiling]}" 'BEGIN { print a / b }') "
    R_VC+="$(awk -v a="${NOW[valid]}" -v b="${NOW[ceiling]}" 'BEGIN { print a / b }') "
done

# --- every valid callback queued once, every wrong key refused ------------

sum() { awk '{ s += $1 } END { print s + 0 }' "$1"; }
valid_done=$(sum "$WORK/valid.count")
refused_done=$(sum "$WORK/refused.count")
queued=$(counter queued)
cb_ok=$(counter cb_ok)
cb_dup=$(counter cb_duplicate)
cb_err=$(counter cb_error)
cb_refused=$(counter cb_refused)
# wrk stops with requests in flight: those are queued but not counted
[ "$cb_err" = 0 ] || die "$cb_err callbacks answered 503 (zone $ZONE full? journal?)"
[ "$cb_dup" = 0 ] || die "$cb_dup duplicate callbacks: orderNos not distinct"
[ "$queued" = "$cb_ok" ] || die "queued $queued != acknowledged $cb_ok"
[ "$cb_ok" -ge $((valid_done + 1)) ] \
    && [ "$cb_ok" -le $((valid_done + 1 + (ROUNDS + 1) * CONNS)) ] \
    || die "acknowledged $cb_ok, wrk counted $valid_done"
[ "$cb_refused" -ge $((refused_done + 1)) ] \
    || die "refused $cb_refused, wrk counted $refused_done"
JOURNAL_MB=$(awk -v b="$(stat -c %s "$WORK/journal/qcc.journal")" 'BEGIN { printf "%.0f", b / 1e6 }')
say "all $queued valid callbacks queued once (journal $JOURNAL_MB MB), $cb_refused refused"

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
    END { printf "%.2f-%.2f", lo, hi }'; }

for kind in "${KINDS[@]}"; do
    eval "M_$kind=$(median <<< "${RPS[$kind]}")"
    eval "L_$kind=$(median <<< "${P99[$kind]}")"
    eval "C_$kind=$(median <<< "${CPU[$kind]}")"
done

r3() { awk -v a="$1" 'BEGIN { printf "%.3f", a }'; }
r_ref=$(r3 "$(median <<< "$R_RC")")
r_val=$(r3 "$(median <<< "$R_VC")")
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "met" : "NOT met" }'; }
p99_verdict=$(awk -v a="$L_valid" 'BEGIN { print (a < 10) ? "met" : "NOT met" }')
DISK=$(df -P "$WORK/journal" | awk 'NR == 2 { print $1 }')
FSTYPE=$(df -PT "$WORK/journal" | awk 'NR == 2 { print $2 }')

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
    echo "valid p99 = **$(printf '%.2f' "$L_valid") ms** (goal < 10 ms: $p99_verdict)."
    echo
    echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, a distinct orderNo per request"
    echo "(the callback's five arguments, $(( ${#REST} + 60 )) bytes of query);"
    echo "medians of $ROUNDS rounds (ratios: median of the per-round ratios), after a"
    echo "$WARMUP warm-up each; gateway worker_processes $WORKERS, access_log off,"
    echo "error_log $LOG_LEVEL (each refusal writes its warn line); zone $ZONE, never"
    echo "full: all $queued orders of the run queued once, none evicted; journal"
    echo "on $FSTYPE ($DISK), $JOURNAL_MB MB at the end; $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)) shared with wrk,"
    echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(uname -sr); load average"
    echo "$LOAD0 before, $(cut -d' ' -f1-3 /proc/loadavg) after."
} > "$OUT/callback.md"
cat "$OUT/callback.md"
DONE=1
