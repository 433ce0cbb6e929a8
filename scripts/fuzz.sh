#!/usr/bin/env bash
# Fuzzes Medulla's decoders (the cargo-fuzz project in fuzz/) for a bounded time each.
#
# Usage: scripts/fuzz.sh [--ci] [--seconds N] [--keep-going] [TARGET...]
#   --ci          60 s per target (the default is 300 s)
#   --seconds N   N seconds per target (wins over --ci)
#   --keep-going  don't stop a target at its first crash: libFuzzer's fork mode saves each
#                 crash, OOM and timeout and goes on (for finding more bugs while a known
#                 one is open; the exit status still says whether anything was found)
#   TARGET...     the targets to run; default: every fuzz/fuzz_targets/*.rs
#
# Exit status: 0 when no target crashed; 1 when one did (a panic, abort, out-of-memory or
# timeout: the reproducer's path and the log's first report are printed); 2 on a usage
# or build error.
#
# Each target's corpus grows in fuzz/corpus/<target>/ (git-ignored, kept between runs);
# the committed seeds in fuzz/seeds/<target>/ are read but never written. Reproducers are
# saved in fuzz/artifacts/<target>/ and libFuzzer's full output goes to
# fuzz/artifacts/<target>.log (not inside the folder: cargo-fuzz takes the newest file
# there for the reproducer).
#
# Toolchain: only stable Rust is installed, and cargo-fuzz passes nightly-only rustc flags
# (-Zsanitizer=address and friends). RUSTC_BOOTSTRAP=1 makes stable rustc accept them; the
# stable rust-std ships the ASan runtime (librustc-stable_rt.asan.a), and the AddressSanitizer
# build links and runs here, so it stays cargo-fuzz's default. FUZZ_SANITIZER=none skips it:
# 3-7x the execs/s (validate_batch here: 29k against 4k-9.5k), and our crates have no `unsafe`,
# but libFuzzer then cannot catch one oversized malloc (-malloc_limit_mb works through the
# sanitizer's malloc hooks), which is how decode_request's first bug was found.
# Set CARGO_BUILD_JOBS=1 on a busy machine.
set -euo pipefail

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

seconds=300
explicit_seconds=
keep_going=()
targets=()
while (($#)); do
    case "$1" in
        --ci) seconds=60 ;;
        --seconds)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || usage
            explicit_seconds=$2
            shift
            ;;
        --keep-going) keep_going=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1) ;;
        -h | --help) usage ;;
        -*) usage ;;
        *) targets+=("$1") ;;
    esac
    shift
done
[[ -n $explicit_seconds ]] && seconds=$explicit_seconds

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

if ((${#targets[@]} == 0)); then
    for file in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi
for target in "${targets[@]}"; do
    if [[ ! -f fuzz/fuzz_targets/$target.rs ]]; then
        echo "fuzz.sh: no target '$target' (see fuzz/fuzz_targets/)" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Artifacts libFuzzer may write: crash-, oom-, timeout-, leak-, slow-unit- files.
list_artifacts() {
    find "$1" -maxdepth 1 -type f -printf '%f\n' | sort
}

failed=0
for target in "${targets[@]}"; do
    echo "=== $target: building (sanitizer $sanitizer)"
    if ! cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" "$target"; then
        echo "fuzz.sh: building $target failed" >&2
        exit 2
    fi

    corpus=fuzz/corpus/$target
    seeds=fuzz/seeds/$target
    artifacts=fuzz/artifacts/$target
    log=fuzz/artifacts/$target.log
    mkdir -p "$corpus" "$artifacts"
    corpora=("$corpus")
    [[ -d $seeds ]] && corpora+=("$seeds")
    before=$(list_artifacts "$artifacts")

    echo "=== $target: fuzzing for ${seconds}s (log: $log)"
    status=0
    # -timeout: one input taking 10 s is a hang worth reporting, not a slow machine.
    # -rss_limit_mb: libFuzzer's default, stated because an allocation past it is a finding
    # (a length field from the network must not size an allocation unchecked).
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${keep_going[@]}" >"$log" 2>&1 || status=$?

    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true

    new=$(comm -13 <(printf '%s\n' "$before") <(list_artifacts "$artifacts") | sed '/^$/d')
    if ((status != 0)) || [[ -n $new ]]; then
        failed=1
        echo "=== $target: FAILED (exit $status); the first report in $log:"
        # From the first panic or sanitizer/libFuzzer error to its SUMMARY line.
        awk '/panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)/ { p = 1 }
             p { print; if (++n >= 120 || /^SUMMARY:/) exit }' "$log"
        [[ -z $new ]] && tail -n 40 "$log"
        for artifact in $new; do
            echo "=== $target: reproducer $artifacts/$artifact"
            echo "    rerun: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer $sanitizer $target $artifacts/$artifact"
        done
    else
        echo "=== $target: no crash in ${seconds}s; corpus $(find "$corpus" -type f | wc -l) inputs"
    fi
done
exit "$failed"
