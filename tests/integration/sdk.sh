#!/bin/bash
# What a third-party plugin author gets: the conformance checker accepts the
# example plugin and every real plugin (a sink with a real upload), refuses
# broken and hanging ones with the reason, and the example builds out of
# tree from an installed SDK with nothing but pkg-config.
. "$top_srcdir/tests/integration/lib.sh"

CHECK="$top_builddir/voxray-plugin-check"
EXAMPLE="$top_builddir/sdk/examples/.libs/tts_tone.so"
STT_EXAMPLE="$top_builddir/sdk/examples/.libs/stt_level.so"

# conforms DESCRIPTION [checker args...]: the checker exits 0 and reports no
# failed check.
conforms() {
    local d=$1 out rc; shift
    out=$("$CHECK" "$@" 2>"$WORK/stderr"); rc=$?
    if [ $rc -eq 0 ] && ! grep -q '^not ok' <<<"$out" && grep -q 'the plugin conforms' <<<"$out"; then
        ok "$d"
    else
        not_ok "$d" "exit $rc: $CHECK $*"; diag "$out" "$(tail -5 "$WORK/stderr")"
    fi
}

# refused DESCRIPTION PATTERN [checker args...]: the checker exits non-zero
# and prints a "not ok" line matching PATTERN.
refused() {
    local d=$1 pat=$2 out rc; shift 2
    out=$("$CHECK" "$@" 2>"$WORK/stderr"); rc=$?
    if [ $rc -ne 0 ] && grep -E "^not ok [0-9]+ - .*$pat" <<<"$out" >/dev/null; then
        ok "$d"
    else
        not_ok "$d" "exit $rc, wanted non-zero and a 'not ok' line matching /$pat/"; diag "$out"
    fi
}

# --- the in-tree example and the real plugins
conforms "the example plugin conforms" "$EXAMPLE"
conforms "the example plugin conforms as fast as possible (realtime = false)" \
    --config realtime=false --config ms_per_char=10ms "$EXAMPLE"
conforms "the STT example plugin conforms (streaming partials and finals)" "$STT_EXAMPLE"
out=$("$CHECK" --config partial_every=100ms "$STT_EXAMPLE" 2>&1)
check "... its final describes the utterance, and its init read the typed getters" \
    bash -c 'grep -q "final \"heard 1.0 s of audio" <<<"$1" && grep -q "partial every 100 ms" <<<"$1"' _ "$out"
conforms "sim conforms (STT, LLM and TTS)" "$PLUGIN_DIR/sim.so"
conforms "store_memory conforms" "$PLUGIN_DIR/store_memory.so"
conforms "llm_eliza conforms" "$PLUGIN_DIR/llm_eliza.so"
conforms "tts_flite conforms" "$PLUGIN_DIR/tts_flite.so"
conforms "stt_pocketsphinx conforms" --config pool_size=1 "$PLUGIN_DIR/stt_pocketsphinx.so"

# --- a real sink, uploading a real file into a folder of this test
rec="$WORK/recording.wav"
head -c 100000 /dev/urandom >"$rec"
mkdir -p "$WORK/sink"
conforms "rec_file conforms, uploading a recording" \
    --recording "$rec" --config dir="$WORK/sink" "$PLUGIN_DIR/rec_file.so"
up=$(find "$WORK/sink" -path '*/[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/vx-plugin-check.wav')
check "... the file is at <dir>/YYYY/MM/DD/<session>.wav, byte for byte" \
    bash -c '[ -n "$1" ] && cmp -s "$1" "$2"' _ "$up" "$rec"
check "... and nothing else is left in the folder (no temporary file)" \
    test "$(find "$WORK/sink" -type f | wc -l)" -eq 1
conforms "rec_file conforms without a recording (the checks that need none)" \
    --config dir="$WORK/sink" "$PLUGIN_DIR/rec_file.so"
refused "a sink that reports VX_OK for a file that does not exist is refused" \
    'sink: upload of a path that does not exist.*returned VX_OK' \
    --recording "$rec" "$TEST_PLUGIN_DIR/sink_accepts_all.so"

out=$("$CHECK" "$EXAMPLE" 2>/dev/null)
check "the checker prints the plugin's kinds, version, ABI and schema" \
    grep -q -e '^# kinds: tts$' <<<"$out"
check "... and every schema key with its default" \
    grep -q -e '^#   ms_per_char .*default 60ms' <<<"$out"

# --- the checker under valgrind, as sdk/README.md tells authors to run it:
# both examples, no memory error, nothing leaked. (A sanitizer build of the
# checker cannot run under valgrind; its own reports cover that build.)
if nm "$CHECK" 2>/dev/null | grep -q __asan_init; then
    ok "the examples conform under valgrind # SKIP sanitizer build"
elif ! command -v valgrind >/dev/null; then
    not_ok "the examples conform under valgrind" "valgrind is not installed (quickstart.sh TEST_PACKAGES)"
else
    for ex in "--config realtime=false $EXAMPLE" "$STT_EXAMPLE"; do
        d="${ex##*/} conforms under valgrind, without a memory error or leak"
        # shellcheck disable=SC2086 # ex is the checker's word list
        out=$(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=99 "$CHECK" $ex 2>"$WORK/vg.err"); rc=$?
        if [ $rc -eq 0 ] && grep -q 'the plugin conforms' <<<"$out"; then ok "$d"
        else not_ok "$d" "exit $rc"; diag "$(grep -v '^#' <<<"$out" | grep -v '^ok')" "$(tail -20 "$WORK/vg.err")"; fi
    done
fi

# --- plugins that must be refused
refused "a plugin missing a mandatory method fails to load, with the reason" \
    'load: .*missing_method.*(cancel|close|method)' "$TEST_PLUGIN_DIR/missing_method.so"
refused "a plugin whose init fails is reported" 'init' "$TEST_PLUGIN_DIR/init_fails.so"
refused "a plugin that never answers is reported as timed out, not waited for" \
    'timed out' --config hang=silent --timeout 1 "$PLUGIN_DIR/sim.so"
refused "a plugin that sleeps out its delay before it notices cancel fails, with the time it took" \
    "tts: terminal event within 100 ms of cancel: took [0-9]+ ms \\(VX_CANCEL_MS is 100\\)" \
    --config delay=500ms "$TEST_PLUGIN_DIR/slow_cancel.so"
conforms "the same plugin conforms when its delay is 0 (cancel is noticed at once)" \
    --config delay=0 "$TEST_PLUGIN_DIR/slow_cancel.so"
out=$("$CHECK" --config delay=0 "$TEST_PLUGIN_DIR/slow_cancel.so" 2>/dev/null)
check "... and it refused the empty text with a code and a message, no event" \
    grep -q 'tts: synthesize of an empty text: .* # refused: invalid: slow_cancel: nothing to say' <<<"$out"
refused "an error return without a message (and an event besides) is refused" \
    'tts: synthesize of an empty text: .*returned invalid \(-1\) without a message' \
    --config delay=0 --config bad_error=true "$TEST_PLUGIN_DIR/slow_cancel.so"
refused "a metric name the host refuses is refused by the checker too, with the reason" \
    "metrics: every name registered follows the rule: 2 refused, the first: metric name 'calls_total' is the host's own" \
    "$TEST_PLUGIN_DIR/bad_metric.so"
refused "an entry that refuses to load is reported with the reason it logged" \
    'load: .*entry_logs.so: vx_plugin_entry returned NULL: the plugin refused to load: entry_logs: needs the frobnicator' \
    "$TEST_PLUGIN_DIR/entry_logs.so"
refused "a partial hypothesis after the final (no audio since) is refused" \
    'stt: finish -> exactly one on_final or on_error: 1 on_partial after on_final with no audio fed since' \
    "$TEST_PLUGIN_DIR/late_partial.so"
# --speech: a recording of speech; the recogniser must give words, and
# partials before them when its caps say so.
flite -voice slt -t "hello how are you" -o "$WORK/speech16.wav"
flite -t "hello how are you" -o "$WORK/speech8.wav"
conforms "with --speech the offline recogniser conforms" --speech "$WORK/speech16.wav" "$PLUGIN_DIR/stt_pocketsphinx.so"
out=$("$CHECK" --speech "$WORK/speech16.wav" "$PLUGIN_DIR/stt_pocketsphinx.so" 2>/dev/null)
check "... it heard the words, with partials before the final" \
    grep -qE 'ok [0-9]+ - stt: speech -> exactly one on_final # final "hello how are you"' <<<"$out"
check "... and the partials check ran" grep -q 'ok [0-9]* - stt: partials before the final (caps say partials)$' <<<"$out"
"$CHECK" --speech "$WORK/speech8.wav" "$EXAMPLE" >/dev/null 2>"$WORK/speech8.err"; rc=$?
check "--speech refuses a WAV that is not 16 kHz, exit 2, saying how to make one" \
    test $rc -eq 2 -a -n "$(grep '8000 Hz.*16000 Hz.*flite' "$WORK/speech8.err")"
refused "an unknown --config key is refused" "unknown key 'no_such_key'" \
    --config no_such_key=1 "$EXAMPLE"
refused "a --config value outside the schema is refused with what is allowed" \
    'sample_rate = "1": .*8000' --config sample_rate=1 "$EXAMPLE"

# --- the out-of-tree author flow against an installed SDK
inst="$WORK/inst"
if make -s -C "$top_builddir" install DESTDIR="$inst" >"$WORK/install.log" 2>&1; then
    ok "make install DESTDIR=... succeeds"
else
    not_ok "make install DESTDIR=... succeeds" "$(tail -5 "$WORK/install.log")"
fi
pc=$(find "$inst" -name voxray-plugin.pc -path '*/pkgconfig/*' | head -1)
icheck=$(find "$inst" -name voxray-plugin-check -type f | head -1)
check "the SDK installs voxray-plugin.pc, voxray/plugin.h and the checker" \
    test -n "$pc" -a -n "$icheck" -a -n "$(find "$inst" -path '*/include/voxray/plugin.h')"
check "the examples are installed with the documentation" \
    test -n "$(find "$inst" -path '*/examples/tts_tone.c')" -a -n "$(find "$inst" -path '*/examples/stt_level.c')" -a -n "$(find "$inst" -path '*/examples/Makefile')"
check "the first-plugin guide is installed with the headers" \
    test -n "$(find "$inst" -path '*/include/voxray/README.md')"

export PKG_CONFIG_PATH="${pc%/*}" PKG_CONFIG_SYSROOT_DIR="$inst"
cflags=$(pkg-config --cflags voxray-plugin 2>&1)
check "pkg-config gives the installed include directory and hidden visibility" \
    bash -c '[[ "$1" == *"-I$2"*"/include"* && "$1" == *-fvisibility=hidden* ]]' _ "$cflags" "$inst"

author="$WORK/author"
mkdir -p "$author"
cp "$top_srcdir/sdk/examples/tts_tone.c" "$top_srcdir/sdk/examples/stt_level.c" \
    "$top_srcdir/sdk/examples/Makefile" "$author/"
if make -s -C "$author" CFLAGS='-O2 -Wall -Wextra -Werror' >"$WORK/author.log" 2>&1 &&
    [ -f "$author/tts_tone.so" ] && [ -f "$author/stt_level.so" ]; then
    ok "both examples (TTS and STT) build out of tree with the author Makefile, warning-free"
else
    not_ok "both examples (TTS and STT) build out of tree with the author Makefile, warning-free" \
        "$(cat "$WORK/author.log")"
fi
rm -f "$author/tts_tone.so"
# The exact command the documentation gives.
if (cd "$author" && cc $(pkg-config --cflags voxray-plugin) -shared -fPIC -o tts_tone.so \
        tts_tone.c -lpthread) >"$WORK/cc.log" 2>&1; then
    ok "the example builds with cc \$(pkg-config --cflags voxray-plugin) -shared -fPIC"
else
    not_ok "the example builds with cc \$(pkg-config --cflags voxray-plugin) -shared -fPIC" \
        "$(cat "$WORK/cc.log")"
fi
CHECK="${icheck:-$CHECK}" conforms "the installed checker accepts the out-of-tree build" \
    "$author/tts_tone.so"
CHECK="${icheck:-$CHECK}" conforms "the installed checker accepts the out-of-tree STT build" \
    "$author/stt_level.so"
ssyms=$(nm -D --defined-only "$author/stt_level.so" 2>&1 | awk '{ print $NF }')
check "the out-of-tree STT build exports only vx_plugin_entry" test "$ssyms" = vx_plugin_entry
syms=$(nm -D --defined-only "$author/tts_tone.so" 2>&1 | awk '{ print $NF }')
check "the out-of-tree build exports only vx_plugin_entry" test "$syms" = vx_plugin_entry
[ "$syms" = vx_plugin_entry ] || diag "$syms"

done_testing
