//! State files in the state dir, written atomically. (Skeleton.)
