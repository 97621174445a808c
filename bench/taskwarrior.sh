#!/usr/bin/env bash
# map against taskwarrior 2.6 on the same content: 300 tasks, then 2,000
# edits to them (taskwarrior: `task import`, then real `task modify`
# commands, so its data holds that history; map: through the libraries, as
# `cli-speed` builds its plan). Then, interleaved, `task list` against
# `map show` and `task add` against `map task add`; medians and ratios.
#
#   bench/taskwarrior.sh                  # build, install taskwarrior if missing, 30 runs
#   RUNS=50 bench/taskwarrior.sh
#   SKIP_BUILD=1 bench/taskwarrior.sh     # use the binaries already in target/release
#
# taskwarrior runs in a temporary TASKRC/TASKDATA with rc.confirmation=off
# rc.verbose=nothing (and rc.bulk=0 so that batch modifications need no
# answer); map in a temporary MAP_HOME.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
TASKS=${TASKS:-300}
CHANGES=${CHANGES:-2000}

if ! command -v task >/dev/null; then
    echo "installing taskwarrior (Debian package)" >&2
    SUDO=
    [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get install -y taskwarrior >/dev/null ||
        { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y taskwarrior >/dev/null; }
fi
task --version >&2

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --quiet -p map-cli -p map-bench
fi
# Private copies, so a concurrent `cargo build` cannot swap them mid-run.
BIN=$(mktemp -d -t map-tw.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
cp target/release/map target/release/cli-speed "$BIN/"
"$BIN/cli-speed" --map "$BIN/map" --taskwarrior --tasks "$TASKS" --changes "$CHANGES" --runs "$RUNS"
