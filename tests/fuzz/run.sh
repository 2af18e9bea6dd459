#!/usr/bin/env bash
# run.sh - build the libFuzzer harnesses (tests/fuzz/*_fuzz.c) with clang in
# their own build folder and run each for a bounded time. For CI.
#
#   tests/fuzz/run.sh [SECONDS_EACH] [BUILD_DIR]
#
# SECONDS_EACH defaults to 30; BUILD_DIR to build-fuzz at the top of the
# tree. Each harness starts from its corpus folder (BUILD_DIR/corpus/NAME,
# kept between runs so coverage accumulates) and writes any crashing input
# to BUILD_DIR/artifacts/NAME/. The exit status is 0 when every harness ran
# its time without a crash, leak, timeout or sanitizer report, 1 when one
# failed (its log tail and the reproducer path are printed), 2 for a usage
# or build error. Runs the harnesses one after another (2-core machines).
set -euo pipefail

secs=${1:-30}
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-"$here/build-fuzz"}

case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS_EACH] [BUILD_DIR]" >&2; exit 2 ;;
esac
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

echo "== fuzz: building harnesses in $build"
if [ ! -d "$build" ]; then
    CC=clang meson setup "$build" "$here" -Dfuzz=true \
        -Db_lundef=false >/dev/null || exit 2
else
    meson setup --reconfigure "$build" "$here" >/dev/null || exit 2
fi

names=()
for src in "$here"/tests/fuzz/*_fuzz.c; do
    [ -e "$src" ] || continue
    base=$(basename "$src" _fuzz.c)
    names+=("$base")
done
if [ "${#names[@]}" -eq 0 ]; then
    echo "fuzz: no harness found in tests/fuzz" >&2
    exit 2
fi
targets=()
for n in "${names[@]}"; do
    targets+=("tests/fuzz/fuzz_$n")
done
ninja -C "$build" "${targets[@]}" || exit 2

failed=0
for n in "${names[@]}"; do
    exe="$build/tests/fuzz/fuzz_$n"
    corpus="$build/corpus/$n"
    artifacts="$build/artifacts/$n"
    log="$build/fuzz_$n.log"
    mkdir -p "$corpus" "$artifacts"
    echo "== fuzz: $n for ${secs}s"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb bounds memory.
    # ASan/UBSan abort on the first report, which libFuzzer turns into a
    # crash with a reproducer.
    set +e
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "!! fuzz: $n FAILED (exit $rc); last lines of $log:"
        tail -n 40 "$log"
        for f in "$artifacts"/*; do
            [ -e "$f" ] && echo "!! reproducer: $f (run: $exe $f)"
        done
    else
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
               grep -o '[0-9]*$' || true)
        echo "   ok: ${runs:-?} inputs, corpus $(ls "$corpus" | wc -l) files"
    fi
done
exit "$failed"
