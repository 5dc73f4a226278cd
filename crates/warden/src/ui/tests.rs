//! Rendering tests: the whole screen on a `TestBackend`.
