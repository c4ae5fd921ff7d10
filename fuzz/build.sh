#!/usr/bin/env bash
# Builds and runs pycnn's libFuzzer targets (clang, ASan + UBSan, -fno-wrapv).
#
#   fuzz/build.sh build              build every target into $FUZZ_OUT
#   fuzz/build.sh run [SECONDS]      build, then fuzz each target SECONDS (default 25)
#                                    from fuzz/corpus/<target>; new inputs go to a temp
#                                    dir, so the repository corpus is never modified
#   fuzz/build.sh merge [SECONDS]    fuzz longer and merge new coverage into fuzz/corpus/
#   fuzz/build.sh replay             run every corpus file and regression input once
#
# fuzz/regressions/<target>/ holds past crashers: `run` and `replay` feed them too,
# so a regression fails the run.  FUZZ_CSRC=dir builds the engine from another
# copy of csrc/ (e.g. to keep fuzzing past a known, not yet fixed finding).
#
# Needs clang with the compiler-rt runtimes (Debian: apt-get install -y clang
# libclang-rt-14-dev).  The engine is built serial (no OpenMP) here; the thread
# paths are covered by tests/test_interrupts_threads.py.  Exit status is non-zero
# on any crash, sanitizer report or failed property (the harness aborts).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS="conv2d conv2d_transpose pool2d im2col warp conv2d_winograd"
FUZZ_OUT=${FUZZ_OUT:-${TMPDIR:-/tmp}/pycnn-fuzz}
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CSRC=${FUZZ_CSRC:-csrc}
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fno-wrapv -UNDEBUG -I$CSRC -Ifuzz"
# Portable engine sources; the ISA files are compiled apart with setup.py's flags.
ENGINE="common.c conv.c conv_low_channel.c conv_winograd.c pool.c gemm.c gemm_ukernel_ref.c augment.c activation.c"
# file:flags pairs, as setup.py's ISA_KERNELS (each ISA file gets only its own flags).
ISA_FILES="gemm_ukernel_avx2.c:-mavx2,-mfma gemm_ukernel_avx512.c:-mavx512f,-mavx512vl,-mfma activation_avx2.c:-mavx2"

# Compiles $1 into object $2 with the remaining flags, unless $2 is newer than the
# source and every header and was built by the same command (the sanitized engine
# takes minutes, so re-running `run` or `replay` reuses it).
compile() {
    local src=$1 obj=$2; shift 2
    local cmd="$CC $CFLAGS $* -c $src -o $obj"
    if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$(cat "$obj.cmd" 2>/dev/null)" = "$cmd" ] &&
        [ -z "$(find "$CSRC" -name '*.h' -newer "$obj" | head -1)" ]; then
        return 0
    fi
    rm -f "$obj.cmd"
    $cmd && echo "$cmd" > "$obj.cmd"
}

build() {
    mkdir -p "$FUZZ_OUT/obj"
    # The engine is compiled once and linked into every target; the SIMD kernels get
    # only their own ISA flags (and setup.py's -ffp-contract=fast), no coverage hooks.
    local objs=() pids=() pid src flags
    for src in $ENGINE; do
        compile "$CSRC/$src" "$FUZZ_OUT/obj/${src%.c}.o" \
            -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
            -DPYCNN_HAVE_X86_KERNELS=1 &
        pids+=($!)
        objs+=("$FUZZ_OUT/obj/${src%.c}.o")
    done
    for pair in $ISA_FILES; do
        src=${pair%%:*} flags=${pair#*:}
        compile "$CSRC/$src" "$FUZZ_OUT/obj/${src%.c}.o" -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined -ffp-contract=fast ${flags//,/ } &
        pids+=($!)
        objs+=("$FUZZ_OUT/obj/${src%.c}.o")
    done
    for pid in "${pids[@]}"; do wait "$pid"; done   # each wait fails the script if its compile failed
    for t in $TARGETS; do
        $CC $CFLAGS $SAN -DPYCNN_HAVE_X86_KERNELS=1 "fuzz/fuzz_$t.c" "${objs[@]}" -lm -o "$FUZZ_OUT/fuzz_$t"
    done
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
LIBFUZZER_OPTS="-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -max_len=256"

case "${1:-run}" in
build)
    build ;;
run)
    build
    seconds=${2:-25}
    for t in $TARGETS; do
        new=$(mktemp -d)
        mkdir -p "fuzz/corpus/$t"
        echo "== fuzz_$t: ${seconds}s"
        rc=0
        "$FUZZ_OUT/fuzz_$t" $LIBFUZZER_OPTS -max_total_time="$seconds" -artifact_prefix="$FUZZ_OUT/crash-$t-" \
            "$new" "fuzz/corpus/$t" $(ls -d "fuzz/regressions/$t" 2>/dev/null) > "$FUZZ_OUT/$t.log" 2>&1 || rc=$?
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|runtime error|fuzz finding" \
            "$FUZZ_OUT/$t.log" || true
        if [ "$rc" -ne 0 ]; then
            tail -30 "$FUZZ_OUT/$t.log" >&2
            echo "fuzz_$t failed (exit $rc); reproducer: $FUZZ_OUT/crash-$t-*" >&2
            exit 1
        fi
        rm -rf "$new"
    done ;;
merge)
    build
    seconds=${2:-300}
    for t in $TARGETS; do
        new=$(mktemp -d)
        mkdir -p "fuzz/corpus/$t"
        "$FUZZ_OUT/fuzz_$t" $LIBFUZZER_OPTS -max_total_time="$seconds" -artifact_prefix="$FUZZ_OUT/crash-$t-" \
            "$new" "fuzz/corpus/$t"
        "$FUZZ_OUT/fuzz_$t" -merge=1 "fuzz/corpus/$t" "$new"
        rm -rf "$new"
    done ;;
replay)
    build
    for t in $TARGETS; do
        files=$(find "fuzz/corpus/$t" "fuzz/regressions/$t" -type f 2>/dev/null | sort || true)
        [ -n "$files" ] || continue
        rc=0
        # shellcheck disable=SC2086
        "$FUZZ_OUT/fuzz_$t" $files > "$FUZZ_OUT/$t-replay.log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            grep -E "Running:|runtime error|fuzz finding|ERROR" "$FUZZ_OUT/$t-replay.log" | tail -5 >&2
            echo "fuzz_$t: a corpus or regression input fails (exit $rc)" >&2
            exit 1
        fi
        echo "fuzz_$t: replayed $(echo "$files" | wc -l) inputs"
    done ;;
*)
    sed -n '2,16p' "$0"; exit 2 ;;
esac
