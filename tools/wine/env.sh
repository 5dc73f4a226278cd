# Environment for warden's Wine tooling; source it (tools/wine/setup.sh and test.sh do).
_warden_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export WARDEN_ROOT="$_warden_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WARDEN_ROOT/target}"
export WINEPREFIX="${WARDEN_WINEPREFIX:-$CARGO_TARGET_DIR/wine-prefix}"
export WINEARCH=win64
export WINEDEBUG="${WINEDEBUG:--all}"
# Keep Wine from trying to open a display for windowless programs.
unset DISPLAY
export WARDEN_WINE_TOOLS="$CARGO_TARGET_DIR/wine-tools"
unset _warden_root

# Wine ends service processes (and is slow to restart) when no ordinary Wine process is
# left: keep one alive for a test run. `wine_keepalive_start` once, `wine_stop` on exit.
_warden_keepalive_pid=""
wine_keepalive_start() {
    wine "$WARDEN_WINE_TOOLS/keepalive.exe" &
    _warden_keepalive_pid=$!
}
wine_stop() {
    if [ -n "$_warden_keepalive_pid" ]; then
        kill "$_warden_keepalive_pid" 2>/dev/null || true
        wait "$_warden_keepalive_pid" 2>/dev/null || true
        _warden_keepalive_pid=""
    fi
    wineserver -k 2>/dev/null || true
}
