//! Link flags of the `warden` binary.
//!
//! Linux with glibc: the relative relocations of the position-independent binary are packed
//! (`DT_RELR`, `-z pack-relative-relocs`, GNU ld 2.38+ and glibc 2.36+). Unpacked, they were
//! 430 KB of `.rela.dyn` that the dynamic loader reads at every start, 24 bytes for each
//! pointer of the read-only data; packed, a bitmap of a few KB. The binary stays a PIE, its
//! address randomised.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
