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
