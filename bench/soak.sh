#!/usr/bin/env bash
# A bounded soak on a local cluster of three brokers: pages published continuously while
# random faults hit it (worker kill -9 and restart, broker kill -9 and restart on its data,
# scale 1 <-> 3 workers), then every event counted by its id; prints the recovery times
# (fault -> every input partition producing again). See examples/soak_bench.rs.
#
#   bench/soak.sh [--minutes N] [--mode at-least-once|exactly-once|both] [--port P]
#                 [--rate PAGES_PER_S] [--seed S] [--debug] [-- SOAK_BENCH_FLAGS...]
#
# --minutes  how long faults are injected (default 10)
# --mode     delivery mode(s) to soak (default both, one after the other)
# --port     broker port of node 1; the cluster takes P..P+5 (default 29092)
# --rate     pages per second offered (default 200)
# --debug    debug builds (quicker to build; the default is the release binary)
# after --    passed to examples/soak_bench.rs, e.g. `-- --min-interval 5 --max-interval 10`
#
# Starts the cluster (`deploy/local/stack up --brokers 3`, its own state dir under
# .local/stack/soak-<port>) and always stops it and deletes its data at the end. Exits non-zero
# if a page was lost, a fault was not recovered from within 180 s, or exactly-once published
# an event twice. Workers' logs: target/bench-soak/.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
modes=(at-least-once exactly-once)
port=29092
rate=200
seed=()
extra=()
profile=release
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --mode)
      [[ $2 == both ]] && modes=(at-least-once exactly-once) || modes=("$2")
      shift 2
      ;;
    --port) port=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --seed) seed=(--seed "$2"); shift 2 ;;
    --debug) profile=debug; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $profile == release ]]; then
  cargo build --quiet --release --bin pagesplit --example soak_bench
else
  cargo build --quiet --bin pagesplit --example soak_bench
fi
target=${CARGO_TARGET_DIR:-target}
out=$target/bench-soak
mkdir -p "$out"

export KAFKA_PORT=$port KAFKA_CONTROLLER_PORT=$((port + 1)) STACK_SERVICES=kafka
export PAGESPLIT_STACK_DIR=$PWD/.local/stack/soak-$port
unset STACK_KEEP_DATA STACK_SECURITY
stack=deploy/local/stack
trap '$stack down >/dev/null 2>&1 || true' EXIT
$stack up --brokers 3 >/dev/null
bootstrap=$($stack env | sed -n 's/^PAGESPLIT_TEST_BOOTSTRAP=//p')
$stack status

rc=0
for mode in "${modes[@]}"; do
  nice -n 5 "$target/$profile/examples/soak_bench" --bootstrap "$bootstrap" --stack "$stack" --nodes 3 \
    --bin "$target/$profile/pagesplit" --minutes "$minutes" --mode "$mode" --rate "$rate" \
    --out "$out" "${seed[@]}" "${extra[@]}" || rc=1
done
exit $rc
