//! Every setting of the page lives in the URL, so a link reproduces a run:
//! `?dataset=fashion&model=baseline&epochs=1&batch=100&lr=0.001&train_limit=3000&autostart=1&backend=gpu`
//! (and `dropout=0.3`, `l2=0.002` to change the preset's dropout rate or L2 factor).

use fashion_core::frontend::Recipe;
use fashion_core::{ModelError, ModelSpec, TrainConfig, TrainError};
use fashion_data::DatasetName;

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// WebGPU when the browser has it, otherwise the CPU (with a banner saying why).
    Gpu,
    /// The CPU, even where WebGPU works.
    Cpu,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub dataset: DatasetName,
    pub model: String,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// Every Dropout layer's rate, when not the preset's own (ignored by models without dropout).
    pub dropout: Option<f32>,
    /// The L2 factor on every Dense kernel, when not the preset's own.
    pub l2: Option<f32>,
    /// Train on the first `n` training images only (SwiftShader and the CPU are slow).
    pub train_limit: Option<usize>,
    /// Evaluate on the first `n` test images only.
    pub test_limit: Option<usize>,
    pub backend: BackendChoice,
    /// Where the `.gz` IDX files are served from, ending in `/`; `<data_url><dataset>/<file>.gz`.
    pub data_url: String,
    pub autostart: bool,
    /// GPU training steps per submitted command buffer (`steps_per_submit=`); more is faster
    /// but makes the page answer less often.
    pub steps_per_submit: Option<usize>,
    /// `bench=1`: run the training benchmark (`fashion_core::bench`) instead of the app, for
    /// `bench_steps=` timed steps.
    pub bench: bool,
    pub bench_steps: Option<usize>,
}

pub const DEFAULT_DATA_URL: &str = "data/";
/// About half a second of SwiftShader per chunk: the progress bar still moves, and each chunk's
/// wait for the GPU costs little (SwiftShader, baseline: 3,400 samples/s with 5, 4,100 with 25).
const DEFAULT_GPU_STEPS_PER_SUBMIT: usize = 20;

impl Default for Settings {
    fn default() -> Self {
        let study = Recipe::default();
        Settings {
            dataset: DatasetName::Fashion,
            model: "baseline".into(),
            epochs: 5,
            batch: study.batch,
            learning_rate: study.learning_rate,
            dropout: None,
            l2: None,
            train_limit: None,
            test_limit: None,
            backend: BackendChoice::Gpu,
            data_url: DEFAULT_DATA_URL.into(),
            autostart: false,
            steps_per_submit: None,
            bench: false,
            bench_steps: None,
        }
    }
}

impl Settings {
    /// Reads the settings from a query string (`?a=b&...` or `a=b&...`); unknown keys and values
    /// that do not parse keep their defaults.
    pub fn from_query(query: &str) -> Self {
        let mut settings = Settings::default();
        for (key, value) in query.trim_start_matches('?').split('&').filter_map(|pair| pair.split_once('=')) {
            let value = decode(value);
            let value = value.trim();
            match key {
                "dataset" => settings.dataset = value.parse().unwrap_or(settings.dataset),
                "model" if fashion_core::PRESETS.contains(&value) => settings.model = value.into(),
                "epochs" => settings.epochs = positive(value).unwrap_or(settings.epochs),
                "batch" => settings.batch = positive(value).unwrap_or(settings.batch),
                "lr" => {
                    if let Some(lr) = value.parse::<f32>().ok().filter(|lr| lr.is_finite() && *lr > 0.0) {
                        settings.learning_rate = lr;
                    }
                }
                "dropout" => settings.dropout = value.parse::<f32>().ok().filter(|r| (0.0..1.0).contains(r)),
                "l2" => settings.l2 = value.parse::<f32>().ok().filter(|l| l.is_finite() && *l >= 0.0),
                "train_limit" => settings.train_limit = positive(value),
                "test_limit" => settings.test_limit = positive(value),
                "backend" => settings.backend = if value == "cpu" { BackendChoice::Cpu } else { BackendChoice::Gpu },
                "data_url" if !value.is_empty() => {
                    settings.data_url = if value.ends_with('/') { value.into() } else { format!("{value}/") }
                }
                "steps_per_submit" => settings.steps_per_submit = positive(value),
                "autostart" => settings.autostart = matches!(value, "1" | "true" | "yes"),
                "bench" => settings.bench = matches!(value, "1" | "true" | "yes"),
                "bench_steps" => settings.bench_steps = positive(value),
                _ => {}
            }
        }
        settings
    }

    /// The query string (without `?`) that reproduces these settings.
    pub fn to_query(&self) -> String {
        let mut pairs = vec![
            format!("dataset={}", self.dataset.as_str()),
            format!("model={}", self.model),
            format!("epochs={}", self.epochs),
            format!("batch={}", self.batch),
            format!("lr={}", self.learning_rate),
        ];
        if let Some(rate) = self.dropout {
            pairs.push(format!("dropout={rate}"));
        }
        if let Some(l2) = self.l2 {
            pairs.push(format!("l2={l2}"));
        }
        if let Some(n) = self.train_limit {
            pairs.push(format!("train_limit={n}"));
        }
        if let Some(n) = self.test_limit {
            pairs.push(format!("test_limit={n}"));
        }
        if let Some(n) = self.steps_per_submit {
            pairs.push(format!("steps_per_submit={n}"));
        }
        if self.autostart {
            pairs.push("autostart=1".into());
        }
        if self.bench {
            pairs.push("bench=1".into());
        }
        if let Some(n) = self.bench_steps {
            pairs.push(format!("bench_steps={n}"));
        }
        pairs.push(format!("backend={}", if self.backend == BackendChoice::Cpu { "cpu" } else { "gpu" }));
        if self.data_url != DEFAULT_DATA_URL {
            pairs.push(format!("data_url={}", encode(&self.data_url)));
        }
        pairs.join("&")
    }

    /// The chosen preset with the dropout rate (where it has Dropout layers) and L2 factor set.
    pub fn model_spec(&self) -> Result<ModelSpec, ModelError> {
        let preset = ModelSpec::preset(&self.model)?;
        let dropout = self.dropout.filter(|_| preset.has_dropout());
        ModelSpec::choose(&self.model, None, dropout, self.l2)
    }

    /// The training settings for the GPU or the CPU backend, checked as the harness checks them.
    pub fn train_config(&self, backend_is_gpu: bool) -> Result<TrainConfig, TrainError> {
        let recipe =
            Recipe { epochs: self.epochs, batch: self.batch, learning_rate: self.learning_rate, ..Recipe::default() };
        let study = recipe.config()?;
        let config = TrainConfig {
            // Small chunks: the progress bar moves and the page answers between them.
            steps_per_submit: match (backend_is_gpu, self.steps_per_submit) {
                (true, Some(n)) => n,
                (true, None) => DEFAULT_GPU_STEPS_PER_SUBMIT,
                (false, _) => 1,
            },
            // The CPU evaluates synchronously per batch; smaller batches keep the page live.
            eval_batch: if backend_is_gpu { study.eval_batch } else { 250 },
            ..study
        };
        config.validate()?;
        Ok(config)
    }
}

fn positive(value: &str) -> Option<usize> {
    value.parse().ok().filter(|&n| n > 0)
}

/// Percent-decoding (and `+` as space) of one query value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips() {
        let settings = Settings::from_query(
            "?dataset=mnist&model=deep&epochs=2&batch=64&lr=0.0005&train_limit=3000&autostart=1&backend=cpu&data_url=/nope/\
             &bench=1&bench_steps=20",
        );
        assert_eq!((settings.bench, settings.bench_steps), (true, Some(20)));
        assert_eq!(settings.dataset, DatasetName::Mnist);
        assert_eq!((settings.model.as_str(), settings.epochs, settings.batch), ("deep", 2, 64));
        assert_eq!(
            (settings.train_limit, settings.backend, settings.autostart),
            (Some(3000), BackendChoice::Cpu, true)
        );
        assert_eq!(settings.data_url, "/nope/");
        assert_eq!(Settings::from_query(&settings.to_query()), settings);
    }

    #[test]
    fn dropout_and_l2_reach_the_model() {
        let settings = Settings::from_query("model=dropout&dropout=0.5&l2=0.01");
        assert_eq!(Settings::from_query(&settings.to_query()), settings);
        let spec = settings.model_spec().unwrap();
        assert_eq!((spec.layers[1], spec.l2), (fashion_core::Layer::Dropout { rate: 0.5 }, 0.01));
        let baseline = Settings::from_query("model=baseline&dropout=0.5").model_spec().unwrap();
        assert_eq!(baseline, ModelSpec::preset("baseline").unwrap(), "no Dropout layer: the rate is ignored");
        assert_eq!(Settings::from_query("model=l2").model_spec().unwrap().l2, 0.002, "the preset's own λ");
    }

    #[test]
    fn bad_values_keep_defaults() {
        let settings = Settings::from_query("model=huge&epochs=0&lr=-1&batch=x&dataset=cifar&dropout=1.5&l2=-1");
        assert_eq!(settings, Settings::default());
        assert_eq!(Settings::from_query("data_url=http%3A%2F%2Fx%2Fd").data_url, "http://x/d/");
    }
}
