//! What both front-ends (`fashion-gpu` and the page) show of what the core computed, written
//! once so they show it alike: a training history as CSV and JSON files (`history`), the colour
//! of each model in a study's charts (`palette`), and the benchmark's report and dispatch plan
//! as JSON and text (`bench_report`). The core computes the figures; nothing here trains.

pub mod bench_report;
pub mod history;
pub mod palette;
