//! test-child. (Skeleton.)

fn main() {}
