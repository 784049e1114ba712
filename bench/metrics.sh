#!/usr/bin/env bash
#
# bench/metrics.sh: what qcc_metrics costs per request.  A gateway nginx
# with two signed locations in front of a local upstream nginx answering a
# small QCC-like JSON body:
#
#   sign     qcc_sign on
#   metrics  qcc_sign on; qcc_metrics on   (counters, business status
#            scan of the answer, latency histogram, clock offset)
#
# The gateway runs single-process under callgrind, once with N1 and once
# with N2 requests on one keep-alive connection; (Ir(N2) - Ir(N1)) /
# (N2 - N1) is the user-space instructions of one request, which the rest
# of a shared machine does not disturb.  Prints a markdown table and
# writes it to build/bench/metrics.md.  Knobs: BENCH_CG_N1 (300),
# BENCH_CG_N2 (1300).  Everything listens on 127.0.0.1 and is stopped by
# PID at the end.

set -euo pipefail

BENCH_NAME=metrics
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${QCC_MODULE:-$ROOT/build/ngx_http_qcc_module.so}
OUT=$ROOT/build/bench
WORK=$OUT/metrics
N1=${BENCH_CG_N1:-300}
N2=${BENCH_CG_N2:-1300}
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done
    [ -s "$WORK/upstream/nginx.pid" ] \
        && kill -QUIT "$(cat "$WORK/upstream/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

command -v valgrind > /dev/null || die "no valgrind"
[ -f "$MODULE" ] || die "module not built: $MODULE (make)"

rm -rf "$WORK"
mkdir -p "$WORK/upstream" "$WORK/gateway"
cp "$MODULE" "$WORK/gateway/ngx_http_qcc_module.so"
printf 'SecretKey\n' > "$WORK/gateway/secret"
chmod 0600 "$WORK/gateway/secret"
UP=$(free_port)
GW=$(free_port)


cat > "$WORK/upstream/nginx.conf" <<EOC
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 256; }
http {
$(temp_paths "$WORK/upstream")
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UP;
        default_type application/json;
        location / {
            return 200 '{"status":"200","msg":"ok","result":{"orderNo":"JKDAY-1"}}\n';
        }
    }
}
EOC

cat > "$WORK/gateway/nginx.conf" <<EOC
load_module $WORK/gateway/ngx_http_qcc_module.so;
pid $WORK/gateway/nginx.pid;
error_log $WORK/gateway/error.log warn;
events { worker_connections 256; }
http {
$(temp_paths "$WORK/gateway")
    access_log off;
    keepalive_requests 1000000;
    qcc_key AppKey;
    qcc_secret_key_file $WORK/gateway/secret;
    upstream up { server 127.0.0.1:$UP; keepalive 8; }
    server {
        listen 127.0.0.1:$GW;
        location /sign/ {
            qcc_sign on;
            proxy_pass http://up/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /metrics/ {
            qcc_sign on;
            qcc_metrics on;
            proxy_pass http://up/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /status { qcc_status; }
    }
}
EOC

"$NGINX" -p "$WORK/upstream/" -c "$WORK/upstream/nginx.conf" \
    || die "upstream did not start"
for _ in $(seq 50); do listening "$UP" && break; sleep 0.1; done

REQ=api/radar_ext/createReport?reportType=day

# instructions LOC N (bench/lib.sh): a callgrind run serving N requests.
declare -A IR
for loc in sign metrics; do
    a=$(instructions "$loc" "$N1")
    b=$(instructions "$loc" "$N2")
    [ -n "$a" ] && [ -n "$b" ] || die "$loc: no callgrind totals"
    IR[$loc]=$(( (b - a) / (N2 - N1) ))
    say "$loc: ${IR[$loc]} instructions/request in the gateway process"
done

mkdir -p "$OUT"
{
    echo "| gateway location | instructions per request (user space) |"
    echo "|---|---:|"
    printf '| `qcc_sign on` | %d |\n' "${IR[sign]}"
    printf '| `qcc_sign on; qcc_metrics on` | %d (+%d, %s%%) |\n' \
        "${IR[metrics]}" $(( IR[metrics] - IR[sign] )) \
        "$(awk -v a="${IR[metrics]}" -v b="${IR[sign]}" \
               'BEGIN { printf "%.1f", (a - b) * 100 / b }')"
    echo
    echo "callgrind, the gateway single-process, ($N2 - $N1) requests of"
    echo "/<location>/$REQ on one keep-alive connection; the upstream a"
    echo "separate nginx answering a 60-byte QCC JSON body."
} | tee "$OUT/metrics.md"
