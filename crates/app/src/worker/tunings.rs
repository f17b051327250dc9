//! The kernel tunings an earlier training on this adapter found ([`tuning_key`] → the winning
//! [`KernelChoice`]), kept in one OPFS file of `key\tchoice` lines: workers have no
//! `localStorage`, where builds before the worker kept them (the page hands those over once,
//! [`adopt`]).
//!
//! [`tuning_key`]: fashion_core::gpu::autotune::tuning_key

use fashion_core::gpu::ops::KernelChoice;

use super::opfs;

const FILE: &str = "fashion-gpu-kernel-tunings.txt";

/// Every stored (key, choice text); none when the file is missing or unreadable (tuning again
/// only costs time).
async fn all() -> Vec<(String, String)> {
    let Ok(Some(bytes)) = opfs::read(FILE).await else { return Vec::new() };
    parse(&String::from_utf8_lossy(&bytes))
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|line| line.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn render(entries: &[(String, String)]) -> String {
    entries.iter().map(|(key, choice)| format!("{key}\t{choice}\n")).collect()
}

/// Keys never hold a tab or a line break (the file's separators).
fn clean(key: &str) -> String {
    key.replace(['\t', '\n', '\r'], " ")
}

/// The tuning stored for `key`; `None` when there is none or it does not read back (it is then
/// tuned again and overwritten).
pub async fn stored(key: &str) -> Option<KernelChoice> {
    let key = clean(key);
    all().await.into_iter().find(|(k, _)| *k == key).and_then(|(_, choice)| KernelChoice::from_text(&choice))
}

pub async fn store(key: &str, choice: &KernelChoice) {
    let mut entries = all().await;
    let key = clean(key);
    entries.retain(|(k, _)| *k != key);
    entries.push((key, choice.to_text()));
    // A full or refused storage only means tuning again next time.
    let _ = opfs::write(FILE, render(&entries).as_bytes()).await;
}

/// Takes over the tunings an older build kept in the page's `localStorage`, where this worker
/// has none for their keys.
pub async fn adopt(older: Vec<(String, String)>) {
    if older.is_empty() {
        return;
    }
    let mut entries = all().await;
    let before = entries.len();
    for (key, choice) in older {
        let key = clean(&key);
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, choice));
        }
    }
    if entries.len() > before {
        let _ = opfs::write(FILE, render(&entries).as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunings_read_back_as_written_and_keys_cannot_break_lines() {
        let entries = vec![(clean("swiftshader\tbaseline\nb100"), "dense_forward=vec4".to_string())];
        assert_eq!(entries[0].0, "swiftshader baseline b100");
        assert_eq!(parse(&render(&entries)), entries);
        assert_eq!(parse("no tab here\n"), Vec::new());
    }
}
