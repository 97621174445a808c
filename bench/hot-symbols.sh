#!/usr/bin/env bash
# Regenerates relay/hot-symbols.txt: the functions a running map-relay
# executes, which relay/build.rs lays out together at the start of the
# binary's code (see docs/performance.md, "Hot code first").
#
# Runs every `map-load` scenario, scaled down, against a release map-relay
# under valgrind's callgrind (Debian package `valgrind`), and lists every
# function of the binary that ran, ordered so that what the most scenarios
# run comes first and the idle scenario's code (start-up, handshake,
# connection loop) is one compact block.
#
#   bench/hot-symbols.sh          # builds, collects, rewrites the list
#
# Rerun it after changing dependencies or the relay's hot paths; a stale list
# only costs memory (unmatched functions are linked as usual).
set -euo pipefail

cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
WORK=$(mktemp -d -t map-hot.XXXXXX)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT

# The relay's own functions (valgrind does not always tell which object a
# function is from).
symbols() { nm --defined-only "$WORK/map-relay" | awk '$2 ~ /^[tTwW]$/ { print $3 }' >>"$WORK/symbols"; }
cargo build --release --quiet -p map-bench -p map-relay
cp target/release/map-relay "$WORK/map-relay"
symbols
# The relay map-load starts: `serve` runs under the profiler given ("$@",
# with SCENARIO naming the output), anything else as it is. map-load kills
# the process it started, so the profiler runs apart and run() stops it with
# SIGTERM (the relay exits cleanly and the profiler writes its output).
wrap() {
    {
        echo '#!/usr/bin/env bash'
        echo 'if [[ $1 == serve ]]; then'
        printf '    %s "%s" "$@" 2>>"%s" &\n' "$*" "$WORK/map-relay" "$WORK/profiler.log"
        printf '    echo $! >"%s"\n' "$WORK/pid"
        echo '    wait'
        echo 'else'
        printf '    exec "%s" "$@"\n' "$WORK/map-relay"
        echo 'fi'
    } >"$WORK/relay.sh"
    chmod +x "$WORK/relay.sh"
}
wrap valgrind --tool=callgrind --demangle=no "--callgrind-out-file=$WORK/cg.\$SCENARIO"

run() {
    local scenario=$1
    shift
    echo "load: $scenario" >&2
    SCENARIO=$scenario timeout 900 target/release/map-load --spawn-relay "$WORK/relay.sh" \
        --scenario "$scenario" "$@" >/dev/null
    local pid
    pid=$(cat "$WORK/pid")
    # The relay itself: valgrind's process, or perf's child.
    pkill -TERM -P "$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}
run idle --idle 100
run converge --converge-changes 200
run fanout --peers 5 --fanout-changes 20
run many-docs --docs 40
run at-rest --at-rest-plans 300 --at-rest-wait 4 --at-rest-writers 2
run throughput --writers 4 --writer-changes 20

rank() {
    python3 - "$WORK" relay/hot-symbols.txt <<'PY'
import os, re, sys
work, out_path = sys.argv[1], sys.argv[2]
order = ["idle", "converge", "fanout", "many-docs", "at-rest", "throughput"]
own = set(open(f"{work}/symbols").read().split())
seen = {}  # symbol -> scenarios that ran it
for scenario in order:
    names = {}
    for line in open(f"{work}/cg.{scenario}", errors="replace"):
        # `fn=(id) name` starts a function's costs; `cfn=` names a callee.
        m = re.match(r"^(c?)fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        called, ident, name = m.groups()
        if name is not None:
            names[ident] = re.sub(r"'\d+$", "", name)
        if not called and names.get(ident) in own:
            seen.setdefault(names[ident], set()).add(scenario)
# Code that runs natively but not under valgrind (valgrind hides CPU
# features such as SHA-NI, so other code paths run): the functions whose
# first page faulted in the second pass.
for scenario in order:
    path = f"{work}/faults.{scenario}"
    if os.path.exists(path):
        for symbol in open(path).read().split():
            if symbol in own:
                seen.setdefault(symbol, set()).add(scenario)
# The idle scenario's functions first (every connection runs them), then by
# how many scenarios run each function.
ranked = sorted(seen, key=lambda s: ("idle" not in seen[s], -len(seen[s]), s))
with open(out_path, "w") as out:
    out.write("# Functions map-relay runs, hot first: made by bench/hot-symbols.sh,\n")
    out.write("# read by relay/build.rs. Do not edit by hand.\n")
    out.write("\n".join(ranked) + "\n")
print(f"{len(ranked)} functions -> {out_path}", file=sys.stderr)
PY
}
rank

# Second pass, natively, on a relay linked with that list: any page of code
# that faults outside the hot block belongs to a function the list misses.
if command -v perf >/dev/null; then
    cargo build --release --quiet -p map-bench -p map-relay
    cp target/release/map-relay "$WORK/map-relay"
    symbols
    wrap perf record -q -e page-faults -c 1 -d -o "$WORK/perf.\$SCENARIO"
    for args in "idle" "converge" "fanout" "many-docs" "at-rest --at-rest-plans 2000" "throughput"; do
        scenario=${args%% *}
        # shellcheck disable=SC2086
        run $args
        perf script --no-demangle -i "$WORK/perf.$scenario" -F ip,sym,addr 2>/dev/null |
            awk '$1 == $3 { print $4 }' | sort -u >"$WORK/faults.$scenario"
    done
    rank
else
    echo "perf not found: skipping the native pass" >&2
fi
