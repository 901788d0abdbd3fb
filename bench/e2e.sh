#!/usr/bin/env bash
# End-to-end benchmarks of pagesplit against a running broker (see README, "Benchmarks").
#
#   bench/e2e.sh [--bootstrap HOST:PORT] [--pages N] [--backlog-pages N] [--latency-seconds S]
#                [--rate PAGES_PER_S] [--backlog-small-pages] [--no-python] [--quote-changes F]
#                [--only split|throughput|latency|backlog|all]
#
# 1. split: single-thread split + encode of the example page, Rust and the Python reference,
#    side by side (examples/split_bench.rs, bench/python/split_bench.py); no Kafka.
# 2. throughput: N pages (default 200,000) through a pass-through copy, pagesplit and the Python
#    reference worker, one after the other on the same input (examples/e2e_bench.rs). Each
#    site's ticker strip shows the same symbols on every page; a quote changes on a share F of
#    its site's pages (--quote-changes, default 0.01; 1 = new numbers on every page).
# 3. latency: p50/p99 from fetched_at to acknowledgement at half the measured maximum (or
#    --rate), with the worker binary as a child process and its RSS sampled.
# 4. backlog: the worker's RSS while it works through a backlog of 1,000,000 pages
#    (--backlog-small-pages: five ticker lines and a paragraph each).
#
# Steps 2-4 create fresh topics and groups named pagesplit-bench-<time>-<pid>.* and delete them
# at the end. Results: printed, and as JSON in target/bench-e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."

bootstrap=${PAGESPLIT_BENCH_BOOTSTRAP:-127.0.0.1:9092}
pages=200000
backlog_pages=1000000
latency_seconds=40
rate=
python=1
only=all
small=
quote_changes=0.01

while [[ $# -gt 0 ]]; do
    case $1 in
        --bootstrap) bootstrap=$2; shift 2 ;;
        --pages) pages=$2; shift 2 ;;
        --backlog-pages) backlog_pages=$2; shift 2 ;;
        --latency-seconds) latency_seconds=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --backlog-small-pages) small=1; shift ;;
        --no-python) python=; shift ;;
        --quote-changes) quote_changes=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

venv=.local/venv-bench
python_args=()
if [[ -n $python ]]; then
    if ! cmp -s bench/python/requirements.txt "$venv/.installed" 2>/dev/null; then
        echo "installing the Python reference into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r bench/python/requirements.txt
        cp bench/python/requirements.txt "$venv/.installed"
    fi
    python_args=(--python "$venv/bin/python")
fi

cargo build --release --bin pagesplit --example e2e_bench --example split_bench
target=${CARGO_TARGET_DIR:-target}
e2e=("$target/release/examples/e2e_bench" --bootstrap "$bootstrap" --quote-changes "$quote_changes")
worker=(--worker "$target/release/pagesplit")

case $only in
    split|all)
        echo "== split + encode, one thread, no Kafka" >&2
        "$target/release/examples/split_bench" "${python_args[@]}"
        ;;&
    throughput)
        "${e2e[@]}" throughput --pages "$pages" "${python_args[@]}" "${worker[@]}" ;;
    latency)
        [[ -n $rate ]] || { echo "--only latency needs --rate" >&2; exit 2; }
        "${e2e[@]}" latency --rate "$rate" --seconds "$latency_seconds" "${worker[@]}" ;;
    backlog)
        "${e2e[@]}" backlog --pages "$backlog_pages" ${small:+--small-pages} "${worker[@]}" ;;
    all)
        echo "== end to end against $bootstrap" >&2
        "${e2e[@]}" all --pages "$pages" --latency-seconds "$latency_seconds" \
            --backlog-pages "$backlog_pages" ${small:+--backlog-small-pages} "${python_args[@]}" "${worker[@]}" ;;
    split) ;;
    *) echo "unknown --only $only" >&2; exit 2 ;;
esac
