# bench/lib.sh: what the benchmark scripts share; sourced, after the script
# has set BENCH_NAME (the prefix of its messages).

say() { printf 'bench/%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { say "$*"; exit 1; }

# bench_packages PKG...: installs those of the Debian packages not installed
bench_packages() {
    local p missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        say "installing$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends $missing >/dev/null
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_nginx NAME DIR PORT: runs $NGINX with prefix DIR and DIR/nginx.conf,
# waits until its PID file is written and PORT listens; NGINX_PID is then
# the master's PID.  Dies (the script, not a subshell) if it does not start.
start_nginx() {
    local name=$1 dir=$2 port=$3
    rm -f "$dir/nginx.pid"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" \
        || die "$name did not start: $(tail -5 "$dir/error.log")"
    for _ in $(seq 100); do
        [ -s "$dir/nginx.pid" ] && listening "$port" && break
        sleep 0.05
    done
    listening "$port" || die "$name does not listen on $port"
    NGINX_PID=$(cat "$dir/nginx.pid")
}

# temp_paths DIR: the *_temp_path directives of an nginx under DIR
temp_paths() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do
        echo "    ${t}_temp_path $1/temp_$t;"
    done
}

# Statistics of the numbers on standard input, separated by spaces.
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
    END { printf "%.2f-%.2f", lo, hi }'; }
# the middle half of the values: from the first to the third quartile
quartiles() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 }
    END { printf "%.2f-%.2f", a[int((NR + 3) / 4)], a[int((3 * NR + 3) / 4)] }'; }

# verdict VALUE GOAL: "met" when VALUE >= GOAL
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "met" : "NOT met" }'; }

# instructions LOC N: the total Ir of a callgrind run of the gateway
# ($WORK/gateway, single-process, listening on $GW) serving N requests of
# /LOC/$REQ on one keep-alive connection.
instructions() {
    local loc=$1 n=$2 cg=$WORK/gateway/callgrind.out vp
    rm -f "$cg"
    valgrind --tool=callgrind --callgrind-out-file="$cg" \
        "$NGINX" -p "$WORK/gateway/" -c "$WORK/gateway/nginx.conf" \
        -g 'daemon off; master_process off;' \
        2> "$WORK/gateway/valgrind.log" &
    vp=$!
    PIDS+=("$vp")
    for _ in $(seq 300); do listening "$GW" && break; sleep 0.1; done
    python3 - "$GW" "/$loc/$REQ" "$n" <<'PY' || die "$loc: requests under callgrind failed"
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("status %d" % r.status)
PY
    kill -QUIT "$vp"
    wait "$vp" || true
    sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$cg" | head -1
}
