#!/usr/bin/env bash
# Offline split benchmark: `pagesplit split` over N copies of the example page, whole process,
# as JSON lines on stdout and as Avro container files (--out) with each codec, side by side with
# a plain Python regex splitter writing the same JSON lines (bench/python/split_files.py).
#
#   bench/split_offline.sh [--pages N] [--rounds R] [--jobs J]
#
# Prints seconds (best of R rounds) and pages/s of each contender, and pagesplit ÷ Python.
set -euo pipefail
cd "$(dirname "$0")/.."

pages=3000
rounds=3
jobs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --pages) pages=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --jobs) jobs=(--jobs "$2"); shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

venv=.local/venv-bench
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/python/requirements.txt
fi
cargo build --release --quiet --bin pagesplit
bin=target/release/pagesplit

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/pages"
page=tests/fixtures/pages/brecorder-putin-assad.masked.txt
for i in $(seq -w 1 "$pages"); do cp "$page" "$work/pages/page-$i.txt"; done

# Best wall-clock seconds of `rounds` runs of the command.
best() {
    local best_s="" s
    for _ in $(seq "$rounds"); do
        local start end
        start=$(date +%s.%N)
        "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
        end=$(date +%s.%N)
        s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')
        if [ -z "$best_s" ] || awk -v s="$s" -v b="$best_s" 'BEGIN { exit !(s < b) }'; then best_s=$s; fi
    done
    echo "$best_s"
}

report() {
    awk -v name="$1" -v s="$2" -v n="$pages" 'BEGIN { printf "%-38s %8.3f s %10.0f pages/s\n", name, s, n / s }'
}

python_s=$(best "$venv/bin/python" bench/python/split_files.py "$work/pages")
report "python regex splitter, JSON lines" "$python_s"
json_s=$(best "$bin" split "${jobs[@]}" "$work/pages")
report "pagesplit split, JSON lines" "$json_s"
for codec in null snappy zstandard deflate; do
    s=$(best "$bin" split "${jobs[@]}" "$work/pages" --out "$work/avro-$codec" --codec "$codec" --force)
    report "pagesplit split --out --codec $codec" "$s"
done
awk -v p="$python_s" -v j="$json_s" 'BEGIN { printf "pagesplit ÷ python (JSON lines): %.1f×\n", p / j }'
