#!/usr/bin/env bash
# Build warden for Windows and run the Windows process tests under Wine.
#
#   tools/wine/test.sh                 setup (idempotent), then the tests
#   tools/wine/test.sh --no-setup      skip tools/wine/setup.sh
#   TEST_ARGS='ctrl_c' tools/wine/test.sh   extra arguments for the test binaries
#
# Runs, with CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine (set here only, not in a
# committed .cargo/config, so that nobody else's cargo runs under Wine):
#   cargo build --target x86_64-pc-windows-gnu -p warden -p test-child
#   cargo test  --target x86_64-pc-windows-gnu -p warden-core --lib
#   cargo test  --target x86_64-pc-windows-gnu -p warden-core --test process_windows
#   cargo test  --target x86_64-pc-windows-gnu -p warden-core --test health_probes --test health_log_line
#   cargo test  --target x86_64-pc-windows-gnu -p warden-core --test sample_windows
# A keep-alive Wine process runs meanwhile (see keepalive.c); wineserver is stopped at the
# end, whatever happened.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" != "--no-setup" ]; then
    "$here/setup.sh"
fi
# shellcheck source=tools/wine/env.sh
source "$here/env.sh"
cd "$WARDEN_ROOT"

target=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# Windows paths for the programs under test (Z: is the root of the Linux file system).
export WARDEN_WCHILD="Z:${WARDEN_WINE_TOOLS//\//\\}\\wchild.exe"

trap wine_stop EXIT
wine_keepalive_start

cargo build --locked --target "$target" -p warden -p test-child
# The crate's unit tests (those of the Windows process layer: command-line quoting,
# environment block; and every other module's, which must pass on Windows too).
# shellcheck disable=SC2086
cargo test --locked --target "$target" -p warden-core --lib -- ${TEST_ARGS:-}
# shellcheck disable=SC2086
cargo test --locked --target "$target" -p warden-core --test process_windows -- ${TEST_ARGS:-}
# The probes (issue 10): http, tcp and exec against real peers, and a log_line ready check
# through the engine with a real child.
# shellcheck disable=SC2086
cargo test --locked --target "$target" -p warden-core --test health_probes --test health_log_line -- ${TEST_ARGS:-}
# Resource samples through the job (issue 10): working sets summed over the job, its CPU
# time (0 under Wine 8, which leaves the job's times unset), a followed main process.
# shellcheck disable=SC2086
cargo test --locked --target "$target" -p warden-core --test sample_windows -- ${TEST_ARGS:-}
