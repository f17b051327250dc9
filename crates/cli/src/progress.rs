//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};

use fashion_core::Progress;

pub struct ProgressBar {
    enabled: bool,
}

impl ProgressBar {
    pub fn new() -> Self {
        ProgressBar { enabled: std::io::stderr().is_terminal() }
    }

    pub fn update(&self, p: &Progress) {
        if !self.enabled {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * p.step / p.steps.max(1);
        let rate = p.samples_done as f64 / p.seconds.max(1e-9);
        let eta = (p.steps - p.step) as f64 * p.seconds / p.step.max(1) as f64;
        eprint!(
            "\rEpoch {} [{}{}] {}/{} steps  {:.0} samples/s  ETA {:.0}s ",
            p.epoch,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            p.step,
            p.steps,
            rate,
            eta
        );
        let _ = std::io::stderr().flush();
    }

    pub fn clear(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(80));
        }
    }
}
