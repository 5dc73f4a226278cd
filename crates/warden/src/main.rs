//! The `warden` command line. (Skeleton.)

fn main() {}
