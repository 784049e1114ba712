#!/bin/bash
#
# bench/large.sh: a push of about 500 MB, unpacked alone and unpacked the
# whole way as the module's thread does it (issue 11's benchmark).
#
# Makes a realistic dd_corp.json (t/bin/gen-push --feed corp, Chinese
# text, ~1.1 million records) and its AES-256 + Deflate ZIP (7-Zip), once,
# kept in build/bench/large/.  Then, over the nginx-free core
# (build/bench/large-driver, from bench/large-driver.c and mk/large.mk),
# RUNS rounds, the paths in a rotating order within each round:
#
#   unpacking alone       qcc_zip_extract() to a sink that does nothing:
#                         decrypt, HMAC, inflate
#   qcc_unpack()          the full path: decrypt, inflate, validate, write
#                         the output (on the build disk, as the spool is)
#                         and fsync it; the default (the pipelined reader
#                         and validator, ids found by the scanner), and
#                         for comparison with cJSON parsing each record
#                         (QCC_UNPACK_CJSON) and in one thread
#                         (QCC_UNPACK_SERIAL)
#
# Each figure is the median of the RUNS: MB/s of output (10^6 bytes) per
# second of wall clock, CPU seconds (user + sys), those of the reading
# thread and of the validator's (the driver reports the reading thread's
# and the process's; the difference is the validator's) and of the
# busiest of the two, and peak RSS (/usr/bin/time).  The goal (issue 11):
# the full path within 0.9x of unpacking alone.  On a shared machine wall
# clock depends on what else runs (the load is printed); the busiest
# thread's CPU time is what the wall time would be with a core per thread,
# so the ratio is given that way too.
#
# Last, unless LARGE_BENCH_E2E=0: `make large` (t/063-large.t with a
# ~500 MB push through a real nginx) and the peak resident set of its
# workers (goal: under 64 MB).
#
# Prints a markdown table and writes it to build/bench/large.md.
#   LARGE_BENCH_BYTES=500000000 LARGE_BENCH_RUNS=5 LARGE_BENCH_E2E=1

set -euo pipefail

cd "$(dirname "$0")/.."

B=build
W=$B/bench/large
SIZE=${LARGE_BENCH_BYTES:-500000000}
RUNS=${LARGE_BENCH_RUNS:-5}
E2E=${LARGE_BENCH_E2E:-1}
PW='benchpw'
NAME=dd_corp.json
DRV=$B/bench/large-driver
MD=$B/bench/large.md

say() { printf 'bench/large: %s\n' "$*" >&2; }

mkdir -p $W
make -s $DRV >/dev/null

JSON=$W/push-$SIZE.json
ZIP=$W/push-$SIZE.zip
OUT=$W/out.json

if [ ! -s $ZIP ]; then
    say "making a $SIZE-byte push and its ZIP (once)"
    rm -f $W/push-*.json $W/push-*.zip $W/$NAME
    t/bin/gen-push --feed corp --size "$SIZE" > $W/$NAME
    (cd $W && 7z a -tzip -mem=AES256 -mm=Deflate -mx=1 -p"$PW" tmp.zip \
        $NAME >/dev/null)
    mv $W/$NAME $JSON
    mv $W/tmp.zip $ZIP
fi

USIZE=$(stat -c %s $JSON)
ZSIZE=$(stat -c %s $ZIP)

# the full path must give the right bytes before it is timed
rm -f $OUT
$DRV unpack $ZIP "$PW" $NAME $OUT >/dev/null
cmp -s $OUT $JSON || { say "qcc_unpack() output differs"; exit 1; }
rm -f $OUT

# the paths: name, then the driver's arguments
PATHS=(
    "unpacking alone (no-op sink)|extract $ZIP $PW $NAME"
    "qcc_unpack(), pipelined (default)|unpack $ZIP $PW $NAME $OUT"
    "qcc_unpack(), one thread|unpack $ZIP $PW $NAME $OUT serial"
    "qcc_unpack(), pipelined, cJSON per record|unpack $ZIP $PW $NAME $OUT cjson"
    "qcc_unpack(), one thread, cJSON per record (before)|unpack $ZIP $PW $NAME $OUT cjson serial"
)
N=${#PATHS[@]}

declare -A WALL CPU MAIN OTHER BUSY RSS

# run I: one run of path I, its figures appended to the lists
run() {
    local i=$1 args t0 t1 bytes main all m
    args=${PATHS[$i]#*|}

    rm -f $OUT
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2086
    /usr/bin/time -f '%M %U %S' -o $W/time.txt $DRV $args > $W/drv.txt
    t1=$EPOCHREALTIME
    rm -f $OUT

    read -r bytes main all < $W/drv.txt
    read -r m _ < <(tail -1 $W/time.txt)
    [ "$bytes" = "$USIZE" ] || { say "path $i: $bytes bytes"; exit 1; }

    WALL[$i]+=" $(awk "BEGIN { print $t1 - $t0 }")"
    CPU[$i]+=" $all"
    MAIN[$i]+=" $main"
    OTHER[$i]+=" $(awk "BEGIN { print $all - $main }")"
    BUSY[$i]+=" $(awk "BEGIN { c = $all - $main;
                               print (c > $main) ? c : $main }")"
    RSS[$i]+=" $m"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 }
    END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "$RUNS rounds of $N paths, $USIZE bytes each"

for r in $(seq "$RUNS"); do
    for k in $(seq 0 $((N - 1))); do
        run $(( (k + r - 1) % N ))
    done
done

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo
    echo "Large push: $USIZE bytes of dd_corp.json (gen-push --feed corp)," \
         "$ZSIZE bytes zipped (7-Zip, AES-256 + Deflate -mx=1);" \
         "median of $RUNS runs; $(nproc) cores, load $LOAD0 at start," \
         "$LOAD1 at end"
    echo
    echo '| path | MB/s (wall) | x alone (wall) | CPU s | reading / validating thread CPU s | busiest thread CPU s | x alone (busiest thread CPU) | peak RSS MB |'
    echo '|---|---|---|---|---|---|---|---|'

    for i in $(seq 0 $((N - 1))); do
        w=$(median <<< "${WALL[$i]}")
        c=$(median <<< "${CPU[$i]}")
        t=$(median <<< "${MAIN[$i]}")
        o=$(median <<< "${OTHER[$i]}")
        b=$(median <<< "${BUSY[$i]}")
        m=$(median <<< "${RSS[$i]}")
        [ "$i" = 0 ] && { W0=$w; B0=$b; }
        awk "BEGIN { printf \"| %s | %.0f | %.2f | %.2f | %.2f / %.2f | %.2f | %.2f | %.1f |\\n\", \
            \"${PATHS[$i]%%|*}\", $USIZE / $w / 1e6, $W0 / $w, $c, $t, $o, \
            $b, $B0 / $b, $m / 1024 }"
    done

    echo
    echo "Goal: the default qcc_unpack() at least 0.9x unpacking alone."

    if [ "$E2E" = 1 ]; then
        say "make large (t/063-large.t, a ~500 MB push through nginx)"
        if make -s large > $W/make-large.log 2>&1; then
            echo "End to end (make large): $(grep -o 'about 500 MB: [0-9]* bytes' \
                $W/make-large.log | head -1), nginx workers' peak resident" \
                "set $(grep -o 'largest worker resident set: [0-9]* kB' \
                $W/make-large.log | grep -o '[0-9]* kB') (goal: under 64 MB)."
        else
            echo "End to end (make large): FAILED, see $W/make-large.log"
        fi
    fi
    echo
} | tee $MD
