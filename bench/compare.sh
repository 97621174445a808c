#!/usr/bin/env bash
# Side-by-side load test: map-relay against the JS automerge-repo sync server.
#
# Builds the release binaries, installs the JS server's pinned dependencies,
# then for ROUNDS rounds (default 3) runs every scenario of `map-load` against
# a fresh map-relay and then a fresh JS server (A B A B ...; each scenario on a
# freshly started server with empty storage), loopback only, and prints one
# table of medians over the rounds plus the targets' pass/fail.
#
#   bench/compare.sh                 # everything, 3 rounds
#   ROUNDS=5 bench/compare.sh
#   SCENARIOS="fanout idle" bench/compare.sh
#   OUT=/tmp/results bench/compare.sh  # keep the raw JSON there
#   MARKDOWN=1 bench/compare.sh        # table as Markdown (docs/performance.md)
#   SKIP_BUILD=1 bench/compare.sh      # use the binaries already in target/release
#   AT_REST_ROUNDS=3 bench/compare.sh  # at-rest in more rounds (default 1: the JS
#                                      # server takes minutes to take 10,000 plans)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
SCENARIOS=${SCENARIOS:-"converge fanout many-docs idle at-rest"}
AT_REST_ROUNDS=${AT_REST_ROUNDS:-1}
# One writer: the JS server processes pushes on one thread and, with hundreds
# of plans in flight, stops answering its own 5 s heartbeat and drops sockets.
LOAD_ARGS=(--at-rest-writers "${AT_REST_WRITERS:-1}")
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
OUT=${OUT:-$(mktemp -d -t map-compare.XXXXXX)}
mkdir -p "$OUT"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    cargo build --release --quiet -p map-bench -p map-relay
fi
# Private copies, so a concurrent `cargo build` cannot swap them mid-run.
mkdir -p "$OUT/bin"
cp target/release/map-load target/release/map-relay "$OUT/bin/"
LOAD=$OUT/bin/map-load
RELAY=$OUT/bin/map-relay

log "installing the JS sync server (npm ci)"
npm ci --prefix bench/js-server --no-audit --no-fund --loglevel=error >&2

JS_PID=
JS_DIR=
stop_js() {
    if [[ -n $JS_PID ]]; then
        kill "$JS_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$JS_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$JS_PID" 2>/dev/null || true
        wait "$JS_PID" 2>/dev/null || true
        JS_PID=
    fi
    if [[ -n $JS_DIR ]]; then
        rm -rf "$JS_DIR"
        JS_DIR=
    fi
}
trap stop_js EXIT

# Starts the JS server on a free port with empty storage; sets JS_PID, JS_URL.
start_js() {
    JS_DIR=$(mktemp -d -t map-compare-js.XXXXXX)
    mkdir -p "$JS_DIR/data"
    DATA_DIR=$JS_DIR/data node bench/js-server/server.js 0 >"$JS_DIR/stdout" 2>"$JS_DIR/stderr" &
    JS_PID=$!
    local line=
    for _ in $(seq 1 200); do
        line=$(head -n1 "$JS_DIR/stdout" 2>/dev/null || true)
        [[ $line == *"listening on "* ]] && break
        if ! kill -0 "$JS_PID" 2>/dev/null; then
            cat "$JS_DIR/stderr" >&2
            log "the JS server exited"
            return 1
        fi
        sleep 0.05
    done
    [[ $line == *"listening on "* ]] || { log "the JS server did not start"; return 1; }
    JS_URL="${line##*listening on }/"
}

# Every run starts on a quiet machine: what the previous run left to write
# back (the JS server writes a file per document) is written out first, so
# that one server's writeback does not land in the next one's fsyncs, and
# then the CPUs must be idle (at least 95% over half a second, for up to
# 30 s) so that the kernel's cleanup after a large process does not land in
# the next run's latencies.
settle() {
    sync
    local fields idle total prev_idle=0 prev_total=0
    for _ in $(seq 1 60); do
        read -r _ fields < <(head -n1 /proc/stat)
        # shellcheck disable=SC2086
        set -- $fields
        idle=$(($4 + $5)) total=0
        for v in "$@"; do total=$((total + v)); done
        if ((prev_total > 0 && (idle - prev_idle) * 100 >= 95 * (total - prev_total))); then
            return 0
        fi
        prev_idle=$idle prev_total=$total
        sleep 0.5
    done
    log "the machine is still busy; running anyway"
}

failures=0
for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        if [[ $scenario == at-rest ]] && ((round > AT_REST_ROUNDS)); then
            continue
        fi
        settle
        log "round $round/$ROUNDS  $scenario  map-relay"
        if ! timeout "$RUN_TIMEOUT" "$LOAD" --spawn-relay "$RELAY" --label relay "${LOAD_ARGS[@]}" \
            --scenario "$scenario" --json >"$OUT/r$round-$scenario-relay.json"; then
            log "FAILED: round $round $scenario map-relay"
            rm -f "$OUT/r$round-$scenario-relay.json"
            failures=$((failures + 1))
        fi
        settle
        log "round $round/$ROUNDS  $scenario  js"
        start_js
        if ! timeout "$RUN_TIMEOUT" "$LOAD" --url "$JS_URL" --relay-pid "$JS_PID" --label js "${LOAD_ARGS[@]}" \
            --scenario "$scenario" --json >"$OUT/r$round-$scenario-js.json"; then
            log "FAILED: round $round $scenario js (server log: $OUT/r$round-$scenario-js.log)"
            rm -f "$OUT/r$round-$scenario-js.json"
            failures=$((failures + 1))
        fi
        cp "$JS_DIR/stderr" "$OUT/r$round-$scenario-js.log" 2>/dev/null || true
        stop_js
    done
done

log "raw results in $OUT"
python3 bench/aggregate.py ${MARKDOWN:+--markdown} "$OUT"/*.json
if ((failures > 0)); then
    log "$failures run(s) failed"
    exit 1
fi
