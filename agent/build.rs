//! Build facts the agent reports and checks: its Rust target triple (which
//! self-update binary fits it). `FOREWARN_VERSION` (the version it reports,
//! default the crate's) and `FOREWARN_RELEASE_PUBLIC_KEY` (the compiled-in
//! release key) are read by `option_env!` in `src/lib.rs`; listed here so a
//! change rebuilds.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FOREWARN_TARGET={target}");
    println!("cargo:rerun-if-env-changed=FOREWARN_VERSION");
    println!("cargo:rerun-if-env-changed=FOREWARN_RELEASE_PUBLIC_KEY");
    println!("cargo:rerun-if-changed=build.rs");
}
