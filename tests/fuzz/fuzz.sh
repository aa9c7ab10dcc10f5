#!/bin/sh
# tests/fuzz/fuzz.sh: build one libFuzzer target with clang and run it (the
# recipe of `make fuzz`, see tests/fuzz/local.mk).
#
#   fuzz.sh check CC                      can CC build -fsanitize=fuzzer? (exit 1 if not)
#   fuzz.sh run NAME MAXLEN SECONDS SRCDIR OUTDIR CC ARGS...
#
# `run` compiles CC ARGS... into OUTDIR/NAME/fuzz_NAME, copies the committed
# inputs (SRCDIR/tests/fuzz/corpus/NAME and regressions/NAME) into the
# scratch folder OUTDIR/NAME/corpus, where libFuzzer adds what it finds (the
# committed corpus is never written to), runs for SECONDS with -max_len
# MAXLEN, and prints one summary line, also appended to OUTDIR/summary.txt:
# runs, runs per second, edges covered, features, corpus units and size, and
# findings (crash/leak/timeout/oom reproducers left in OUTDIR/NAME/findings).
set -u

if [ "${1:-}" = check ]; then
    cc=$2
    tmp=$(mktemp -d) || exit 1
    cat >"$tmp/t.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
    if ! $cc -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >"$tmp/log" 2>&1; then
        echo "make fuzz: '$cc' cannot build libFuzzer targets (-fsanitize=fuzzer):" >&2
        sed 's/^/  /' "$tmp/log" | head -5 >&2
        echo "make fuzz: install clang (with libFuzzer, e.g. Debian's clang-14) or pass FUZZ_CC=..." >&2
        rm -rf "$tmp"
        exit 1
    fi
    rm -rf "$tmp"
    exit 0
fi

[ "${1:-}" = run ] || { echo "usage: fuzz.sh check CC | run NAME MAXLEN SECONDS SRCDIR OUTDIR CC ARGS..." >&2; exit 2; }
name=$2 maxlen=$3 seconds=$4 srcdir=$5 out=$6
shift 6
dir=$out/$name
bin=$dir/fuzz_$name
rm -rf "$dir"
mkdir -p "$dir/corpus" "$dir/findings" || exit 1

echo "== fuzz_$name: building"
if ! "$@" -o "$bin" >"$dir/build.log" 2>&1; then
    cat "$dir/build.log" >&2
    echo "fuzz_$name: build failed" >&2
    exit 1
fi
for d in "$srcdir/tests/fuzz/corpus/$name" "$srcdir/tests/fuzz/regressions/$name"; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name 'README' ! -name '.*' -exec cp {} "$dir/corpus/" \;
done
seeds=$(ls "$dir/corpus" | wc -l)

echo "== fuzz_$name: running ${seconds}s from $seeds seeds (-max_len=$maxlen), log in $dir/log.txt"
"$bin" -max_total_time="$seconds" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/findings/" "$dir/corpus" >"$dir/log.txt" 2>&1
status=$?

# The last status line ("#123 DONE cov: 1 ft: 2 corp: 3/4Kb ...") and the
# final stats ("stat::number_of_executed_units: N").
last=$(grep -E '^#[0-9]+' "$dir/log.txt" | tail -1)
field() { echo "$last" | sed -n "s/.* $1: \([^ ]*\).*/\1/p"; }
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt" | tail -1)
[ -n "$runs" ] || runs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$dir/log.txt" | tail -1)
[ -n "$secs" ] && [ "$secs" -gt 0 ] && rate=$((runs / secs)) || rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log.txt" | tail -1)
found=$(ls "$dir/findings" | wc -l)
line=$(printf '%-14s runs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-12s findings %s' \
    "$name" "${runs:-?}" "${rate:-?}" "$(field cov)" "$(field ft)" "$(field corp)" "$found")
[ "$found" -gt 0 ] && line="$line: $(ls "$dir/findings" | tr '\n' ' ')"
[ "$status" -ne 0 ] && [ "$found" -eq 0 ] && line="$line (fuzzer exited with $status, see $dir/log.txt)"
echo "$line" | tee -a "$out/summary.txt"
exit 0
