#!/bin/bash
#
# bench/unzip.sh: the ZIP reader against 7-Zip, libzip and inflate alone.
#
# Makes a realistic QCC push (dd_risk_corp.json, Chinese text, about
# 50 MB; t/zip/gen-qcc-json.pl), zips it with 7-Zip (AES-256 + Deflate,
# and once plain for the bare deflate stream), then extracts it to
# /dev/null, best of RUNS, with:
#   qcc-unzip -c            our reader (bounded memory, streaming), zlib
#   qcc-unzip-isal -c       the same reader built with ISA-L's inflate
#   7z x -so                7-Zip
#   libzip                  build/t/zip-libzip -c
#   zlib inflate alone      bench/inflate-alone zlib: the same deflate
#                           stream, unencrypted, no HMAC: the limit
#   ISA-L inflate alone     the same with ISA-L's igzip (streaming)
#   libdeflate alone        whole-buffer, if libdeflate-dev is installed
# and prints a markdown table: MB/s of output (10^6 bytes) per second of
# wall clock (best run) and per CPU second (user + sys, mean of the runs:
# steadier when the machine is busy), and peak RSS.  Inputs are kept in
# build/bench/unzip/ for the next run.
#
#   UNZIP_BENCH_BYTES=52428800 UNZIP_BENCH_RUNS=15 bash bench/unzip.sh

set -euo pipefail

cd "$(dirname "$0")/.."

B=build
W=$B/bench/unzip
SIZE=${UNZIP_BENCH_BYTES:-52428800}
RUNS=${UNZIP_BENCH_RUNS:-15}
PW='benchpw'

mkdir -p $W

make -s $B/qcc-unzip $B/qcc-unzip-isal $B/t/zip-libzip >/dev/null

flags="" libs="-lz" LIBDEFLATE=0
if [ -f /usr/include/libdeflate.h ]; then
    flags="$flags -DHAVE_LIBDEFLATE" libs="$libs -ldeflate" LIBDEFLATE=1
fi
flags="$flags -DHAVE_ISAL" libs="$libs -lisal"
mkdir -p $B/bench
cc -O2 $flags -o $B/bench/inflate-alone bench/inflate-alone.c $libs

if [ ! -f $W/push-$SIZE.zip ]; then
    echo "unzip bench: making a $SIZE-byte push and zipping it (once)" >&2
    rm -f $W/*.zip $W/dd_risk_corp.json
    perl t/zip/gen-qcc-json.pl risk $SIZE 7 > $W/dd_risk_corp.json
    (cd $W && 7z a -tzip -mem=AES256 -mm=Deflate -p"$PW" plain-tmp.zip \
        dd_risk_corp.json >/dev/null && mv plain-tmp.zip push-$SIZE.zip)
    (cd $W && 7z a -tzip -mm=Deflate plain-$SIZE.zip dd_risk_corp.json \
        >/dev/null)
fi

ZIP=$W/push-$SIZE.zip
PLAIN=$W/plain-$SIZE.zip
USIZE=$(stat -c %s $W/dd_risk_corp.json)
ZSIZE=$(stat -c %s $ZIP)

# the reader must give the right bytes before it is timed
want=$(sha256sum < $W/dd_risk_corp.json)
for u in qcc-unzip qcc-unzip-isal; do
    got=$($B/$u -p "$PW" -c $ZIP | sha256sum)
    [ "$want" = "$got" ] || { echo "unzip bench: $u output differs" >&2;
                              exit 1; }
done

# measure NAME CMD...: best wall time of RUNS, mean CPU time, max RSS
measure() {
    local name=$1 best="" cpu=0 rss=0 t0 t1 wall m u s
    shift

    for _ in $(seq "$RUNS"); do
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%M %U %S' -o $W/time.txt "$@" >/dev/null \
            2>$W/stderr.txt
        t1=$EPOCHREALTIME
        read -r m u s < <(tail -1 $W/time.txt)
        wall=$(awk "BEGIN { print $t1 - $t0 }")
        if [ -z "$best" ] || awk "BEGIN { exit !($wall < $best) }"; then
            best=$wall
        fi
        cpu=$(awk "BEGIN { print $cpu + ($u + $s) / $RUNS }")
        [ "$m" -gt "$rss" ] && rss=$m
    done

    awk "BEGIN { printf \"| %s | %.0f | %.0f | %.3f | %.3f | %.1f |\\n\", \
        \"$name\", $USIZE / $best / 1e6, $USIZE / ($cpu + 0.001) / 1e6, \
        $best, $cpu, $rss / 1024 }"
    LAST=$best
    LASTCPU=$cpu
}

echo
echo "Unzip: $USIZE bytes of JSON, $ZSIZE bytes zipped (AES-256 + Deflate," \
     "7-Zip), to /dev/null, $RUNS runs each; $(nproc) cores," \
     "load $(cut -d' ' -f1 /proc/loadavg) at start"
echo
echo '| reader | MB/s (wall) | MB/s (CPU) | wall s | CPU s | peak RSS MB |'
echo '|---|---|---|---|---|---|'

measure 'qcc-unzip (zlib)' $B/qcc-unzip -p "$PW" -c $ZIP
T_QCC=$LAST C_QCC=$LASTCPU
measure 'qcc-unzip (ISA-L)' $B/qcc-unzip-isal -p "$PW" -c $ZIP
T_QCCI=$LAST C_QCCI=$LASTCPU
measure '7z x' 7z x -so -p"$PW" $ZIP
T_7Z=$LAST C_7Z=$LASTCPU
measure 'libzip 1.7' $B/t/zip-libzip -p "$PW" -c $ZIP
measure 'zlib inflate alone (no AES)' $B/bench/inflate-alone zlib $PLAIN
T_ZLIB=$LAST C_ZLIB=$LASTCPU
measure 'ISA-L inflate alone (no AES)' $B/bench/inflate-alone isal $PLAIN
T_ISAL=$LAST C_ISAL=$LASTCPU
if [ $LIBDEFLATE = 1 ]; then
    measure 'libdeflate alone (whole buffer)' \
        $B/bench/inflate-alone libdeflate $PLAIN
fi

# throughput ratios by wall clock and by CPU time (steadier when busy)
awk "BEGIN {
    printf \"\\n| qcc-unzip throughput | by wall clock | by CPU time | goal |\\n\"
    printf \"|---|---|---|---|\\n\"
    printf \"| zlib build / 7z x | %.2fx | %.2fx | 1.2x |\\n\", \\
           $T_7Z / $T_QCC, $C_7Z / $C_QCC
    printf \"| zlib build / zlib inflate alone | %.2fx | %.2fx | 0.9x |\\n\", \\
           $T_ZLIB / $T_QCC, $C_ZLIB / $C_QCC
    printf \"| ISA-L build / 7z x | %.2fx | %.2fx | |\\n\", \\
           $T_7Z / $T_QCCI, $C_7Z / $C_QCCI
    printf \"| ISA-L build / zlib inflate alone | %.2fx | %.2fx | |\\n\", \\
           $T_ZLIB / $T_QCCI, $C_ZLIB / $C_QCCI
    printf \"| ISA-L build / ISA-L inflate alone | %.2fx | %.2fx | |\\n\\n\", \\
           $T_ISAL / $T_QCCI, $C_ISAL / $C_QCCI
}"
