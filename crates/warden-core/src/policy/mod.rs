//! Pure restart decisions. (Skeleton.)
