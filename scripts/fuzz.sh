#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each; exits non-zero when a target
# crashes, hangs or breaks one of its invariants.
#
#   scripts/fuzz.sh                  every target, 60 s each
#   scripts/fuzz.sh parse_page       one target
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS    fuzzing time per target, in seconds (default 60)
#   FUZZ_MAX_LEN    largest input tried, in bytes (default 16384)
#   FUZZ_TIMEOUT    seconds one input may run before it counts as a hang (default 10)
#   FUZZ_TOOLCHAIN  rustup toolchain to build with (default: nightly when installed, else stable
#                   with RUSTC_BOOTSTRAP=1, since cargo-fuzz needs unstable compiler flags)
#   FUZZ_SANITIZER  address | none (default: address, falling back to none when the address
#                   sanitizer cannot be built with the chosen toolchain)
#   FUZZ_MERGE=1    afterwards, add the inputs that found new coverage to fuzz/corpus/<target>
#   FUZZ_CMIN=1     afterwards, minimize fuzz/corpus/<target> (cargo fuzz cmin)
#
# New inputs found during a run go to fuzz/target/new-corpus/<target> (not committed); the
# committed corpus fuzz/corpus/<target> only changes with FUZZ_MERGE=1 or FUZZ_CMIN=1.
# Crashing inputs are saved under fuzz/artifacts/<target>/.

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-60}
max_len=${FUZZ_MAX_LEN:-16384}
timeout=${FUZZ_TIMEOUT:-10}

log() { printf 'fuzz: %s\n' "$*" >&2; }

# --- toolchain -------------------------------------------------------------------------------
cargo_cmd=(cargo)
if command -v rustup >/dev/null 2>&1; then
    toolchain=${FUZZ_TOOLCHAIN:-}
    if [[ -z $toolchain ]]; then
        if rustup toolchain list | grep -q '^nightly'; then
            toolchain=nightly
        else
            toolchain=stable
        fi
    fi
    cargo_cmd=(cargo "+$toolchain")
    rustc_version=$(rustup run "$toolchain" rustc --version)
else
    rustc_version=$(rustc --version)
fi
if [[ $rustc_version == *nightly* ]]; then
    log "toolchain: $rustc_version"
else
    # cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation) to rustc.
    export RUSTC_BOOTSTRAP=1
    log "toolchain: $rustc_version (no nightly toolchain: stable with RUSTC_BOOTSTRAP=1)"
fi

# --- cargo-fuzz ------------------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz not found: installing it from crates.io"
    cargo install cargo-fuzz --locked
fi
log "$(cargo fuzz --version)"

# --- targets ---------------------------------------------------------------------------------
if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for file in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi
for target in "${targets[@]}"; do
    if [[ ! -f fuzz/fuzz_targets/$target.rs ]]; then
        log "no such target: $target (see fuzz/fuzz_targets/)"
        exit 2
    fi
done

# --- build -----------------------------------------------------------------------------------
sanitizer=${FUZZ_SANITIZER:-}
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
if [[ -n $sanitizer ]]; then
    log "building with sanitizer '$sanitizer'"
    if ! "${cargo_cmd[@]}" fuzz build --sanitizer "$sanitizer" >"$build_log" 2>&1; then
        tail -n 40 "$build_log" >&2
        log "build failed"
        exit 2
    fi
else
    log "building with the address sanitizer"
    if "${cargo_cmd[@]}" fuzz build --sanitizer address >"$build_log" 2>&1; then
        sanitizer=address
    else
        log "build with the address sanitizer failed:"
        tail -n 15 "$build_log" >&2
        log "retrying without a sanitizer (panics and invariant checks still fail the run)"
        if "${cargo_cmd[@]}" fuzz build --sanitizer none >"$build_log" 2>&1; then
            sanitizer=none
        else
            tail -n 40 "$build_log" >&2
            log "build failed"
            exit 2
        fi
    fi
fi
log "sanitizer: $sanitizer"

# --- seeds from the test fixtures --------------------------------------------------------------
# Written fresh on every run, so new fixtures seed the fuzzer even before they reach the
# committed corpus. The first byte of a parse_page input selects text (0x00) or HTML (0x01).
seeds=fuzz/target/seeds
rm -rf "$seeds"
mkdir -p "$seeds/parse_page" "$seeds/decode_message"
shopt -s nullglob
for file in tests/fixtures/pages/*.txt tests/fixtures/pages/*/*.txt; do
    { printf '\x00'; cat "$file"; } >"$seeds/parse_page/text-$(basename "$file")"
done
for file in tests/fixtures/html/*.html; do
    { printf '\x01'; cat "$file"; } >"$seeds/parse_page/html-$(basename "$file")"
done
shopt -u nullglob

# --- run -------------------------------------------------------------------------------------
# Progress lines, new-function notes and the recommended dictionary stay in the run log only.
noise='^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)|^[[:space:]]+NEW_FUNC|^"|Recommended dictionary|^    Finished'
failed=()
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    new=fuzz/target/new-corpus/$target
    mkdir -p "$corpus" "$new" "$seeds/$target"
    args=(-max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout" -print_final_stats=1)
    if [[ -f fuzz/dict/$target.dict ]]; then
        args+=(-dict="fuzz/dict/$target.dict")
    fi
    log "running $target for ${seconds}s (corpus $corpus: $(find "$corpus" -type f | wc -l) inputs)"
    run_log=fuzz/target/$target.log
    set +e
    "${cargo_cmd[@]}" fuzz run --sanitizer "$sanitizer" "$target" "$new" "$corpus" "$seeds/$target" \
        -- "${args[@]}" 2>&1 | tee "$run_log" | grep -v -E "$noise"
    status=${PIPESTATUS[0]}
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run_log" | tail -n 1) || true
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run_log" | tail -n 1) || true
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$run_log" | tail -n 1) || true
    if ((status != 0)); then
        log "$target FAILED (exit $status); reproduce with:"
        sed -n "s|.*Test unit written to \(.*\)|  ${cargo_cmd[*]} fuzz run --sanitizer $sanitizer $target \1|p" "$run_log" >&2
        failed+=("$target")
    else
        log "$target ok: ${execs:-?} runs, ${rate:-?} execs/s, ${cov:-}"
    fi
done

# --- corpus maintenance ----------------------------------------------------------------------
# Merging and minimizing count edge coverage only (-use_counters=0), not hit counts: that keeps
# the committed corpus to roughly one input per reachable edge (about 1 MB per target).
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    new=fuzz/target/new-corpus/$target
    if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
        log "merging new inputs of $target into $corpus"
        "${cargo_cmd[@]}" fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "$new" \
            -- -merge=1 -use_counters=0 -max_len="$max_len" -timeout="$timeout" 2>&1 | grep -E '^MERGE-OUTER' || true
    fi
    if [[ ${FUZZ_CMIN:-0} == 1 ]]; then
        log "minimizing $corpus"
        "${cargo_cmd[@]}" fuzz cmin --sanitizer "$sanitizer" "$target" "$corpus" \
            -- -use_counters=0 -max_len="$max_len" -timeout="$timeout" 2>&1 | grep -E '^MERGE-OUTER' || true
    fi
    bytes=$(find "$corpus" -type f -exec cat {} + | wc -c)
    log "$corpus: $(find "$corpus" -type f | wc -l) inputs, $((bytes / 1024)) KiB"
done

if ((${#failed[@]} > 0)); then
    log "failing targets: ${failed[*]}"
    exit 1
fi
log "all targets ran ${seconds}s without a failure"
