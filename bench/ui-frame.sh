#!/usr/bin/env bash
# The frame time of `warden ui` with 1,000 services: the real drawing code on ratatui's
# TestBackend (200x60 and 80x24), a full log buffer (5,000 lines, all services interleaved,
# timestamps, a search highlighted), release build. The target is under 50 ms a frame.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --locked -p warden --bin warden ui::bench -- --ignored --nocapture 2>&1 \
    | grep -E '^(frame|apply)'
