#!/usr/bin/env bash
# warden as a Windows service, tested under Wine: install, start through the SCM, the
# child's log, stop (no child left), uninstall, a second install refused; then the Rust
# tests (unit tests of crates/warden/src/os/windows, end-to-end tests in
# crates/warden/tests/windows_service.rs: paramchange -> reload, crash restarts, config
# error -> STOPPED with service-specific code 2, accounts).
#
#   tools/wine/winsvc-test.sh              setup (idempotent), build, all checks
#   tools/wine/winsvc-test.sh --no-setup   skip tools/wine/setup.sh
#   TEST_ARGS='when_all_ended' tools/wine/winsvc-test.sh --no-setup
#                                          only the Rust tests whose names match (the
#                                          shell checks are skipped)
#
# Prints `N passed, N failed` at the end; exits non-zero if anything failed. Cleanup always
# runs: the services it installed are uninstalled, the keep-alive ended, `wineserver -k`.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" != "--no-setup" ]; then
    "$here/setup.sh" || exit 1
fi
# shellcheck source=tools/wine/env.sh
source "$here/env.sh"
cd "$WARDEN_ROOT" || exit 1

target=x86_64-pc-windows-gnu
bin="$CARGO_TARGET_DIR/$target/debug"
# The C test child (console Ctrl-C with a cleanup time) for windows_service.rs.
export WARDEN_WCHILD="Z:${WARDEN_WINE_TOOLS//\//\\}\\wchild.exe"
name="wsvc-sh-$$"
crash="wsvc-kill-$$"
storm="wsvc-storm-$$"
passed=0
failed=0
start_time=$(date +%s)

pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds.
check() {
    local what="$1"
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

cleanup() {
    for n in "$name" "$crash" "$storm"; do
        timeout 90 wine "$bin/warden.exe" uninstall "$n" --purge >/dev/null 2>&1 || true
    done
    wine_stop
}
trap cleanup EXIT

wine_keepalive_start

if ! cargo build --locked --target "$target" -p warden -p test-child; then
    fail "build"
    printf '%d passed, %d failed\n' "$passed" "$failed"
    exit 1
fi

# The state of service $1 per `sc query` (RUNNING, STOPPED...), empty if it does not exist.
state() { wine sc query "$1" 2>/dev/null | awk '/STATE/ {print $4}' | tr -d '\r'; }
# wait_state NAME STATE [SECONDS]
wait_state() {
    local deadline=$(($(date +%s) + ${3:-30}))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(state "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    echo "  $1 is '$(state "$1")', not $2" >&2
    return 1
}
# test-child.exe processes started from this worktree's build (as Linux sees them; other
# worktrees' tests may run their own copies meanwhile).
child_pattern="${bin#/}"
child_pattern="${child_pattern//\//.}.test-child\.exe"
children() { pgrep -f "$child_pattern --print-pid --sleep forever" || true; }

child_w="$(winepath -w "$bin/test-child.exe")"
dir="$WINEPREFIX/drive_c/ProgramData/warden/$name"

if [ -z "${TEST_ARGS:-}" ]; then
# 1. The quick form.
out="$(timeout 60 wine "$bin/warden.exe" install "$name" -- "$child_w" --print-pid --sleep forever 2>&1)"
echo "  $out"
check "install $name -- test-child.exe" \
    grep -q "^installed service \"$name\" (start: auto); config C:\\\\ProgramData\\\\warden\\\\$name\\\\warden.toml" <<<"$out"
check "the generated config exists" test -f "$dir/warden.toml"

out="$(timeout 60 wine "$bin/warden.exe" install "$name" -- "$child_w" 2>&1)"
rc=$?
check "a second install is refused (exit 1: $out)" \
    test "$rc" = 1 -a "$(grep -c "service \"$name\" already exists" <<<"$out")" = 1

t0=$(date +%s.%N)
wine sc start "$name" >/dev/null
check "sc start -> RUNNING" wait_state "$name" RUNNING
t1=$(date +%s.%N)
printf '  start to RUNNING: %.2fs\n' "$(echo "$t1 - $t0" | bc)"

log="$dir/logs/$name.out.log"
wait_log() { # wait_log FILE PATTERN
    local deadline=$(($(date +%s) + 20))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
check "the child's log under ProgramData gets its pid" wait_log "$log" '^[0-9]+'
check "a test-child.exe process runs" test -n "$(children)"
check "warden.log says it supervises" wait_log "$dir/state/warden.log" 'supervising 1 service'

# The control endpoint over the named pipe \\.\pipe\warden-svc-NAME.
out="$(timeout 60 wine "$bin/warden.exe" status -n "$name" --json 2>&1)"
# `starting` until it ran min_uptime (1 s), then `running`.
check "status -n $name --json over the pipe shows it running" \
    grep -qE '"state": "(starting|running)"' <<<"$out"
pid1="$(grep -o '"pid": [0-9]*' <<<"$out" | tail -1 | grep -o '[0-9]*$')"
out="$(timeout 60 wine "$bin/warden.exe" logs -n "$name" "$name" 2>&1)"
check "logs -n $name $name prints the child's output ($pid1)" grep -q "^$pid1" <<<"$out"
out="$(timeout 60 wine "$bin/warden.exe" restart -n "$name" "$name" 2>&1)"
check "restart -n $name $name restarts its service ($out)" grep -q "^$name: running" <<<"$out"
out="$(timeout 60 wine "$bin/warden.exe" status -n "$name" --json 2>&1)"
pid2="$(grep -o '"pid": [0-9]*' <<<"$out" | tail -1 | grep -o '[0-9]*$')"
check "the service has a new pid after the restart ($pid1 -> $pid2)" test -n "$pid2" -a "$pid1" != "$pid2"
out="$(timeout 60 wine "$bin/warden.exe" status -n "no-such-instance-$$" 2>&1)"
rc=$?
check "status of an instance that is not running exits 3 ($rc)" test "$rc" = 3
# The Windows service itself through the SCM: `warden stop|start -n NAME` with no names.
out="$(timeout 120 wine "$bin/warden.exe" stop -n "$name" 2>&1)"
check "warden stop -n $name stops the Windows service ($out)" test "$(state "$name")" = STOPPED
check "no test-child.exe left after warden stop -n" test -z "$(children)"
out="$(timeout 120 wine "$bin/warden.exe" start -n "$name" 2>&1)"
check "warden start -n $name starts it again ($out)" test "$(state "$name")" = RUNNING
check "warden.log says it supervises again" wait_log "$dir/state/warden.log" 'supervising 1 service'

t0=$(date +%s.%N)
wine sc stop "$name" >/dev/null
check "sc stop -> STOPPED" wait_state "$name" STOPPED
t1=$(date +%s.%N)
printf '  stop to STOPPED: %.2fs\n' "$(echo "$t1 - $t0" | bc)"
check "no test-child.exe left after the stop" test -z "$(children)"
check "warden.log says all stopped" wait_log "$dir/state/warden.log" 'all services stopped'

out="$(timeout 90 wine "$bin/warden.exe" uninstall "$name" --purge 2>&1)"
echo "  $out"
check "uninstall --purge says what it removed" grep -q "^removed C:\\\\ProgramData\\\\warden\\\\$name (the generated config, logs and state)" <<<"$out"
check "sc query fails after uninstall" test -z "$(state "$name")"
check "the ProgramData folder is gone" test ! -e "$dir"

# 2. warden killed (as by a crash): its child dies with it (Job Object, kill-on-close).
# Wine's SCM does not notice the death (it still says RUNNING and applies no recovery
# action; Windows would restart warden after 1 s), so uninstall deletes it anyway.
timeout 60 wine "$bin/warden.exe" install "$crash" -- "$child_w" --print-pid --sleep forever >/dev/null 2>&1
wine sc start "$crash" >/dev/null
check "sc start $crash -> RUNNING" wait_state "$crash" RUNNING
check "warden.log of $crash says it supervises" \
    wait_log "$WINEPREFIX/drive_c/ProgramData/warden/$crash/state/warden.log" 'supervising 1 service'
wpid="$(pgrep -f "warden.exe service-run --name $crash " || true)"
check "found the warden.exe of $crash" test -n "$wpid"
[ -n "$wpid" ] && kill -9 $wpid
gone() { # gone PATTERN: no process matches within 10 s (else the survivors are shown)
    local deadline=$(($(date +%s) + 10))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        pgrep -f "$1" >/dev/null || return 0
        sleep 0.2
    done
    pgrep -f "$1" | while read -r p; do
        echo "  left: $(ps -o pid=,stat=,etime=,args= -p "$p")" >&2
    done
    return 1
}
check "its child died with the killed warden" gone "$child_pattern --print-pid --sleep forever"
out="$(timeout 90 wine "$bin/warden.exe" uninstall "$crash" --purge 2>&1)"
echo "  $out"
check "uninstall after the kill" test -z "$(state "$crash")"

# 3. Chaos scenario 11 (issue 14): a crash storm of 10 services; warden's service process
# SIGKILLed while their children run; the job objects leave nothing; Wine's SCM does not
# notice the death, so `sc stop` + `sc start` bring it back, and it starts cleanly.
storm_dir="$(mktemp -d "$CARGO_TARGET_DIR/wine-storm.XXXXXX")"
storm_w="$(winepath -w "$storm_dir")"
{
    printf '[warden]\nlog_dir = %s\nstate_dir = %s\n' \
        "$(printf '%s\\logs' "$storm_w" | sed 's/\\/\\\\/g; s/.*/"&"/')" \
        "$(printf '%s\\state' "$storm_w" | sed 's/\\/\\\\/g; s/.*/"&"/')"
    for i in $(seq 1 10); do
        # Each crashes after 300..1200 ms and is restarted per the default policy.
        printf '\n[services.s%d]\ncommand = [%s, "--print-pid", "--sleep", "%dms", "--exit", "%d"]\n' \
            "$i" "$(printf '%s' "$child_w" | sed 's/\\/\\\\/g; s/.*/"&"/')" $((200 + i * 100)) $((i % 3 + 1))
        printf 'backoff = { initial = "100ms", max = "400ms" }\n'
    done
} >"$storm_dir/warden.toml"
storm_children() { pgrep -f "${child_pattern} --print-pid --sleep [0-9]+ms --exit" || true; }
storm_log="$storm_dir/state/warden.log"
storm_restarts() { # the sum of the 10 services' restarts, per status --json over the pipe
    timeout 60 wine "$bin/warden.exe" status -n "$storm" --json 2>/dev/null |
        grep -o '"restarts": [0-9]*' | grep -o '[0-9]*$' | paste -sd+ | bc
}
out="$(timeout 60 wine "$bin/warden.exe" install "$storm" -c "$(winepath -w "$storm_dir/warden.toml")" --start manual 2>&1)"
check "install $storm with 10 crashing services ($out)" grep -q "^installed service \"$storm\"" <<<"$out"
wine sc start "$storm" >/dev/null
check "sc start $storm -> RUNNING" wait_state "$storm" RUNNING
check "warden.log of $storm says it supervises 10" wait_log "$storm_log" 'supervising 10 service'
storm_wait_restarts() { # storm_wait_restarts N: at least N restarts in all within 60 s
    local deadline=$(($(date +%s) + 60)) n
    while [ "$(date +%s)" -lt "$deadline" ]; do
        n="$(storm_restarts)"
        [ "${n:-0}" -ge "$1" ] && { echo "  $n restarts"; return 0; }
        sleep 0.5
    done
    echo "  only ${n:-0} restarts" >&2
    return 1
}
check "the storm: at least 30 crashes restarted" storm_wait_restarts 30
check "children of the storm run" test -n "$(storm_children)"
# The oldest match: while warden spawns, Wine's fork of it shows warden's command line for a
# moment before it execs the child (seen in CI: two pids).
wpid="$(pgrep -o -f "warden.exe service-run --name $storm " || true)"
check "found the warden.exe of $storm" test -n "$wpid"
[ -n "$wpid" ] && kill -9 $wpid
check "no child of the storm survives the killed warden" gone "${child_pattern} --print-pid --sleep [0-9]+ms --exit"
check "Wine's SCM still says RUNNING (it does not notice)" test "$(state "$storm")" = RUNNING
# Wine's SCM cannot deliver the stop to the dead process: it may keep saying RUNNING (seen:
# it does); either way the `sc start` that follows must start a new warden.
wine sc stop "$storm" >/dev/null 2>&1
wait_state "$storm" STOPPED 10 2>/dev/null || echo "  after sc stop of the dead warden, Wine's SCM says $(state "$storm")"
before="$(grep -c 'supervising 10 service' "$storm_log")"
wine sc start "$storm" >/dev/null 2>&1
check "sc start $storm again -> RUNNING" wait_state "$storm" RUNNING
wpid2="$(pgrep -o -f "warden.exe service-run --name $storm " || true)"
check "a new warden.exe runs for $storm ($wpid -> $wpid2)" test -n "$wpid2" -a "$wpid2" != "$wpid"
storm_supervises_again() {
    local deadline=$(($(date +%s) + 30))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(grep -c 'supervising 10 service' "$storm_log")" -gt "$before" ] && return 0
        sleep 0.2
    done
    return 1
}
check "warden.log says it supervises 10 again" storm_supervises_again
check "the storm runs again (restarts counted anew)" storm_wait_restarts 10
check "nothing was left for the new warden to end" \
    test "$(grep -c 'left behind by a previous warden' "$storm_log")" = 0
wine sc stop "$storm" >/dev/null
check "sc stop $storm -> STOPPED" wait_state "$storm" STOPPED 60
check "no child of the storm left after the stop" gone "${child_pattern} --print-pid --sleep [0-9]+ms --exit"
out="$(timeout 90 wine "$bin/warden.exe" uninstall "$storm" 2>&1)"
check "uninstall $storm" test -z "$(state "$storm")"
rm -rf "$storm_dir"

fi

# 3. The Rust tests (output kept for the log; their counts are added to ours).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
run_tests() { # run_tests LABEL CARGO-ARGS...
    local label="$1" out rc p f
    shift
    out="$(cargo test --locked --target "$target" -p warden "$@" 2>&1)"
    rc=$?
    printf '%s\n' "$out" | grep -E '^test |panicked|^\$ warden|^  (exit|stdout|stderr)' | sed 's/^/  /'
    p=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' | paste -sd+ | bc)
    f=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' | paste -sd+ | bc)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
        printf '%s\n' "$out" | tail -20
        fail "$label (cargo test exit $rc)"
    fi
}
# shellcheck disable=SC2086
if [ -z "${TEST_ARGS:-}" ]; then
    run_tests "unit tests os::windows" --bin warden -- os::windows
    run_tests "tests/windows_service.rs" --test windows_service
else
    run_tests "unit tests ($TEST_ARGS)" --bin warden -- $TEST_ARGS
    run_tests "tests/windows_service.rs ($TEST_ARGS)" --test windows_service -- $TEST_ARGS
fi

check "no test-child.exe of this build left at the end" test -z "$(pgrep -f "$child_pattern" || true)"

printf 'took %ss\n' "$(($(date +%s) - start_time))"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
