//! Small helpers. (Skeleton.)
