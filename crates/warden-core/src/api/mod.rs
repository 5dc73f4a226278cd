//! The control API. (Skeleton.)
