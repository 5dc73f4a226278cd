#!/usr/bin/env bash
# Set up the Windows build and test environment for warden on Debian 12 (as root), idempotent.
#
#   - mingw-w64 (x86_64) and Wine 8 (64-bit) from Debian's packages;
#   - the x86_64-pc-windows-gnu Rust target;
#   - a Wine prefix ($WARDEN_WINEPREFIX, default target/wine-prefix) with a stand-in
#     bcryptprimitives.dll (Rust's std needs ProcessPrng, which Wine 8 lacks);
#   - the helper programs of tools/wine/*.c built into target/wine-tools/.
#
# Usage: tools/wine/setup.sh            (prints `export` lines for the prefix at the end)
# Used by tools/wine/test.sh, which sources tools/wine/env.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/wine/env.sh
source "$here/env.sh"

log() { printf '[wine-setup] %s\n' "$*" >&2; }
start=$(date +%s)

# 1. Debian packages.
need_pkgs=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need_pkgs+=(gcc-mingw-w64-x86-64)
# Debian's `wine` provides the `wine` launcher script, `wine64` the 64-bit loader it runs.
command -v wine >/dev/null || need_pkgs+=(wine)
[ -x /usr/lib/wine/wine64 ] || need_pkgs+=(wine64)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing (fresh image) or stale: update once.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# 2. The Rust target.
if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    log "adding rust target x86_64-pc-windows-gnu"
    rustup target add x86_64-pc-windows-gnu
fi

# 3. Helper programs (C, mingw): the ProcessPrng stand-in, keep-alive, the test child.
mkdir -p "$WARDEN_WINE_TOOLS"
# Rebuilt when the source's content differs from the one it was built from (`OUT.src`, a
# sha256): mtimes alone are fooled by a copied target dir, whose binaries look newer than a
# fresh checkout's sources.
build_c() { # build_c OUT SRC [extra gcc args...]
    local out="$1" src="$2" sum
    shift 2
    sum="$(sha256sum "$src" | cut -d' ' -f1)"
    if [ ! -f "$out" ] || [ "$(cat "$out.src" 2>/dev/null)" != "$sum" ]; then
        log "building $(basename "$out")"
        x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -o "$out" "$src" "$@"
        printf '%s\n' "$sum" >"$out.src"
    fi
}
build_c "$WARDEN_WINE_TOOLS/bcryptprimitives.dll" "$here/bcryptprimitives.c" \
    -shared "$here/bcryptprimitives.def" -ladvapi32 -s
build_c "$WARDEN_WINE_TOOLS/keepalive.exe" "$here/keepalive.c" -s
build_c "$WARDEN_WINE_TOOLS/wchild.exe" "$here/wchild.c" -municode -luser32 -s

# 4. The Wine prefix.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    log "initialising wine prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    # No Mono/Gecko downloads (there is no network for them anyway), no dialogs.
    WINEDLLOVERRIDES="mscoree,mshtml=" wineboot -i >/dev/null 2>&1
    wineserver -w
fi
# No X display here: Wine's "null" graphics driver still lets programs create windows (and
# receive messages such as WM_CLOSE), it just shows nothing.
if ! grep -q '"Graphics"="null"' "$WINEPREFIX/user.reg" 2>/dev/null; then
    log "selecting wine's null graphics driver"
    wine reg add 'HKCU\Software\Wine\Drivers' /v Graphics /d null /f >/dev/null 2>&1
    wineserver -w
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
if ! cmp -s "$WARDEN_WINE_TOOLS/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"; then
    log "installing bcryptprimitives.dll into the prefix"
    cp "$WARDEN_WINE_TOOLS/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
fi

# 5. Smoke test: a Rust program (std, HashMap keys: ProcessPrng) runs under Wine.
# (In a directory of its own: Windows loads DLLs from the program's directory first.)
hello="$WARDEN_WINE_TOOLS/smoke/hello.exe"
if [ ! -f "$hello" ]; then
    mkdir -p "$(dirname "$hello")"
    log "building a Rust hello for the smoke test"
    printf '%s\n' 'fn main() { let m: std::collections::HashMap<u8, u8> = [(1, 2)].into(); println!("hello from rust under wine {}", m[&1]); }' \
        > "$WARDEN_WINE_TOOLS/smoke/hello.rs"
    rustc --edition 2021 --target x86_64-pc-windows-gnu -o "$hello" "$WARDEN_WINE_TOOLS/smoke/hello.rs"
fi
if ! out="$(wine "$hello" 2>&1)" || [[ "$out" != *"hello from rust under wine 2"* ]]; then
    printf '%s\n' "$out" >&2
    log "FAILED: a Rust program does not run under wine (bcryptprimitives.dll?)"
    exit 1
fi

log "ready in $(( $(date +%s) - start ))s; WINEPREFIX=$WINEPREFIX"
