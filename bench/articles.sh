#!/usr/bin/env bash
# Article extraction benchmark: splits every HTML page of a directory with the release build,
# one core, and prints pages/s; with a scorer, also body F1 / precision / recall / exact.
#
#   bench/articles.sh DIR [--scorer PATH] [--rounds N] [--out FILE]
#
# DIR holds the pages as KEY.html or KEY.html.gz (directly or under DIR/html). The scorer is a
# command-line program called as `SCORER DIR PREDICTIONS.json`, where PREDICTIONS.json maps KEY
# to the extracted body (paragraphs joined by newlines); it prints its own summary line
# (`--scorer` or PAGESPLIT_ARTICLE_SCORER; a `.py` file runs with python3). Pages with labelled
# bodies are not part of this repository: point DIR at a set of your own.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:?usage: bench/articles.sh DIR [--scorer PATH] [--rounds N] [--out FILE]}
shift
scorer=${PAGESPLIT_ARTICLE_SCORER:-}
rounds=3
out=target/bench-articles/predictions.json
while [ $# -gt 0 ]; do
    case "$1" in
        --scorer) scorer=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$(dirname "$out")"
cargo build --release --quiet --example article_bench
echo "pagesplit:"
target/release/examples/article_bench "$dir" "$out" --rounds "$rounds"
if [ -n "$scorer" ]; then
    case "$scorer" in
        *.py) python3 "$scorer" "$dir" "$out" ;;
        *) "$scorer" "$dir" "$out" ;;
    esac
else
    echo "(no scorer given: predictions in $out)"
fi
