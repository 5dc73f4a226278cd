//! The supervisor. (Skeleton.)
