#!/usr/bin/env bash
# Runs a command with a time limit; past it, prints where every thread of the command's
# processes is (gdb, when installed: a test run that hangs says where, not just that it ran out
# of time), stops the command and exits 124.
#   scripts/watchdog.sh SECONDS COMMAND [ARGS...]
set -uo pipefail
limit=$1
shift
"$@" &
pid=$!
start=$SECONDS

descendants() {
    local children
    children=$(pgrep -P "$1" || true)
    for child in $children; do
        echo "$child"
        descendants "$child"
    done
}

while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - start > limit)); then
        echo "watchdog: '$*' still runs after ${limit} s; where its threads are:" >&2
        for p in $pid $(descendants "$pid"); do
            name=$(cat /proc/"$p"/comm 2>/dev/null) || continue
            if command -v gdb >/dev/null; then
                echo "--- process $p ($name)" >&2
                # A line a stack (its innermost frames, function names only), with how many
                # threads are there.
                timeout 120 gdb -p "$p" -batch -ex "set print frame-arguments none" \
                    -ex "thread apply all bt 14" 2>/dev/null |
                    awk '/^Thread /{if (line) print line; line=""; next}
                         /^#/{f=$0; sub(/^#[0-9]+ +(0x[0-9a-f]+ in )?/, "", f); sub(/ \(.*$/, "", f);
                              line=line (line == "" ? "" : " < ") substr(f, 1, 90)}
                         END{if (line) print line}' |
                    sort | uniq -c | sort -rn | cut -c1-700 >&2
            fi
        done
        kill -TERM "$pid" $(descendants "$pid") 2>/dev/null
        sleep 5
        kill -KILL "$pid" $(descendants "$pid") 2>/dev/null
        wait "$pid" 2>/dev/null
        exit 124
    fi
    sleep 5
done
wait "$pid"
