#!/usr/bin/env bash
# Failover drills against a running broker: how long partitions go without output after a
# worker is killed and restarted, killed for good (one of three), stopped (one of three), or
# stopped during the rebalance of a scale-out (one of three, a fourth joining), for
# each group membership setting. Prints one line per round; see examples/failover_bench.rs.
#
#   bench/failover.sh [--bootstrap HOST:PORT] [--rounds N] [--only LABEL]
#
# Settings compared (labels):
#   classic-dynamic-45s  classic protocol, dynamic membership, 45 s session (the former defaults)
#   classic-dynamic-10s  classic protocol, dynamic membership, 10 s session
#   classic-static-10s   classic protocol, static membership, 10 s session (the defaults)
#   consumer-dynamic     KIP-848 consumer protocol (session timeout on the brokers)
#   consumer-static      KIP-848 consumer protocol with static membership
# then pages processed twice per kill -9 and restart at 1,000 pages/s, committing every
# 1000, 200 and 100 ms (labels commit-<ms>).
set -euo pipefail
cd "$(dirname "$0")/.."

bootstrap=127.0.0.1:9092
rounds=3
only=
while (($#)); do
  case $1 in
    --bootstrap) bootstrap=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --quiet --bin pagesplit --example failover_bench
out=target/bench-failover
mkdir -p "$out"

declare -A settings=(
  [classic-dynamic-45s]="--set kafka.static_membership=false --set kafka.session_timeout_ms=45000"
  [classic-dynamic-10s]="--set kafka.static_membership=false"
  [classic-static-10s]=""
  [consumer-dynamic]="--set kafka.group_protocol=consumer --set kafka.static_membership=false"
  [consumer-static]="--set kafka.group_protocol=consumer"
)
for label in classic-dynamic-45s classic-dynamic-10s classic-static-10s consumer-dynamic consumer-static; do
  [[ -n $only && $only != "$label" ]] && continue
  for scenario in restart:1 kill:3 sigterm:3 sigterm-join:3; do
    # shellcheck disable=SC2086
    nice -n 5 target/debug/examples/failover_bench --bootstrap "$bootstrap" --bin target/debug/pagesplit \
      --scenario "${scenario%%:*}" --workers "${scenario##*:}" --rounds "$rounds" --label "$label" \
      --out "$out" ${settings[$label]} | tee -a "$out/results.txt" ||
      echo "scenario=${scenario%%:*} label=$label failed" | tee -a "$out/results.txt"
  done
done
for ms in 1000 200 100; do
  [[ -n $only && $only != "commit-$ms" ]] && continue
  nice -n 5 target/debug/examples/failover_bench --bootstrap "$bootstrap" --bin target/debug/pagesplit \
    --scenario restart --workers 1 --rounds "$rounds" --rate 1000 --label "commit-$ms" --out "$out" \
    --set "pipeline.commit_interval_ms=$ms" | tee -a "$out/results.txt" ||
    echo "scenario=restart label=commit-$ms failed" | tee -a "$out/results.txt"
done
