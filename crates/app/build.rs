//! Fingerprints the page ↔ worker protocol (src/protocol.rs) so that a page and a worker built
//! from different versions of it refuse each other by name instead of misreading messages.

fn main() {
    println!("cargo:rerun-if-changed=src/protocol.rs");
    let source = std::fs::read("src/protocol.rs").unwrap_or_default();
    // FNV-1a, 64 bits: stable across Rust versions, unlike std's hasher.
    let hash = source.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    println!("cargo:rustc-env=FASHION_PROTOCOL_FINGERPRINT={hash:016x}");
}
