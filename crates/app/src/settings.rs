//! Every setting of the page lives in the URL, so a link reproduces a run:
//! `?dataset=fashion&model=baseline&epochs=1&batch=100&lr=0.001&train_limit=3000&autostart=1&backend=gpu`
//! (and `dropout=0.3`, `l2=0.002` to change the preset's dropout rate or L2 factor,
//! `metrics=study` for the study's definition of the training loss and accuracy), and
//! `?study=baseline,deep,...` for the study mode (several models, one recipe; 30 epochs unless
//! `epochs=` says otherwise).

use fashion_core::bench::flops_per_step;
use fashion_core::study::{study_specs, StudyError, STUDY_MODELS};
use fashion_core::train::{Recipe, MAX_BATCH};
use fashion_core::{EpochMetrics, ModelError, ModelSpec, TrainConfig, TrainError};
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
    /// What the epochs' training loss and accuracy measure (`metrics=step|study`).
    pub metrics: EpochMetrics,
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
    /// `autotune=1`: time the kernel variants after training (even on a CPU adapter) and train
    /// with the winners next time; `0`: never; unset: on a GPU, not on a CPU adapter.
    pub autotune: Option<bool>,
    /// `study=a,b,…`: the models of the study mode (checked with the core's [`study_specs`]),
    /// `None` until the link or the user chooses them (the study's six are then offered).
    pub study: Option<Vec<String>>,
    /// `threads=n`: the threads the CPU path trains with (the threaded worker, where the page is
    /// cross-origin isolated); unset: every core the browser names, up to [`DEFAULT_MAX_THREADS`].
    pub threads: Option<usize>,
}

/// The threads the CPU path uses when the link names none: the browser's
/// `navigator.hardwareConcurrency`, capped (past a few threads a batch of 100 is split too thin).
pub const DEFAULT_MAX_THREADS: usize = 8;
/// The most a link may ask for.
pub const MAX_THREADS: usize = 16;

pub const DEFAULT_DATA_URL: &str = "data/";
/// About half a second of SwiftShader per chunk: the progress bar still moves, and each chunk's
/// wait for the GPU costs little (SwiftShader, baseline: 3,400 samples/s with 5, 4,100 with 25).
const DEFAULT_GPU_STEPS_PER_SUBMIT: usize = 20;
/// The CPU path's chunk: about 2 GFLOPs of training ([`flops_per_step`]), a tenth of a second or
/// less on one core in wasm (baseline at batch 100: 14 steps; the CNN: 1), so the progress bar
/// moves about ten times a second and a pause holds within that. A chunk of one step cost the
/// page a progress message per step (200 a second: a fifth of the main thread's CPU) and a
/// snapshot of the model per step (natively 63k against 76k samples/s on one thread).
const CPU_FLOPS_PER_CHUNK: f64 = 2e9;

impl Default for Settings {
    fn default() -> Self {
        let study = Recipe::default();
        Settings {
            dataset: DatasetName::Fashion,
            model: "baseline".into(),
            epochs: 5,
            batch: study.batch,
            learning_rate: study.learning_rate,
            metrics: study.metrics,
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
            autotune: None,
            study: None,
            threads: None,
        }
    }
}

impl Settings {
    /// Reads the settings from a query string (`?a=b&...` or `a=b&...`); see [`Settings::parse_query`].
    /// The page and the worker pass settings that parsed already as queries (no notices).
    pub fn from_query(query: &str) -> Self {
        Settings::parse_query(query).0
    }

    /// Reads the settings from a query string, checking each with the core's rules (the ones
    /// `fashion-gpu` applies to the same settings): a value the page cannot use keeps the
    /// default and is named in a [`SettingNotice`], so a link with a typo never runs another
    /// experiment without a word.
    pub fn parse_query(query: &str) -> (Self, Vec<SettingNotice>) {
        let mut settings = Settings::default();
        let mut notices = Vec::new();
        let mut epochs_given = false;
        for (key, value) in query.trim_start_matches('?').split('&').filter(|p| !p.is_empty()).map(split_pair) {
            let value = decode(value);
            let value = value.trim();
            let mut refuse = |why: String, used: String| {
                notices.push(SettingNotice { key: key.to_string(), value: value.to_string(), why, used })
            };
            match key {
                "dataset" => match value.parse() {
                    Ok(dataset) => settings.dataset = dataset,
                    Err(e) => refuse(format!("{e}"), settings.dataset.as_str().into()),
                },
                "model" => match ModelSpec::preset(value) {
                    Ok(_) => settings.model = value.into(),
                    Err(e) => refuse(e.to_string(), settings.model.clone()),
                },
                "epochs" => match checked(value, |n, r| r.epochs = n) {
                    Ok(n) => {
                        settings.epochs = n;
                        epochs_given = true;
                    }
                    Err(why) => refuse(why, settings.epochs.to_string()),
                },
                "batch" => match checked(value, |n, r| r.batch = n) {
                    Ok(n) => settings.batch = n,
                    Err(why) => refuse(why, settings.batch.to_string()),
                },
                "lr" => match value.parse::<f32>().map_err(|_| "not a number".to_string()).and_then(|lr| {
                    Recipe { learning_rate: lr, ..Recipe::default() }.config().map(|_| lr).map_err(|e| e.to_string())
                }) {
                    Ok(lr) => settings.learning_rate = lr,
                    Err(why) => refuse(why, settings.learning_rate.to_string()),
                },
                "metrics" => match value.parse::<EpochMetrics>() {
                    Ok(metrics) => settings.metrics = metrics,
                    Err(e) => refuse(e.to_string(), settings.metrics.as_str().into()),
                },
                "dropout" => match value.parse::<f32>() {
                    Ok(rate) => settings.dropout = Some(rate),
                    Err(_) => refuse("not a number".into(), "the model's own rate".into()),
                },
                "l2" => match value.parse::<f32>() {
                    Ok(l2) => settings.l2 = Some(l2),
                    Err(_) => refuse("not a number".into(), "the model's own factor".into()),
                },
                "train_limit" => match count(value) {
                    Ok(n) => settings.train_limit = Some(n),
                    Err(why) => refuse(why, "every training image".into()),
                },
                "test_limit" => match count(value) {
                    Ok(n) => settings.test_limit = Some(n),
                    Err(why) => refuse(why, "every test image".into()),
                },
                "steps_per_submit" => match count(value) {
                    Ok(n) => settings.steps_per_submit = Some(n),
                    Err(why) => refuse(why, "the default".into()),
                },
                "bench_steps" => match count(value) {
                    Ok(n) => settings.bench_steps = Some(n),
                    Err(why) => refuse(why, "the default".into()),
                },
                "backend" => match value {
                    "gpu" => settings.backend = BackendChoice::Gpu,
                    "cpu" => settings.backend = BackendChoice::Cpu,
                    _ => refuse("the backend is gpu or cpu".into(), "gpu".into()),
                },
                "data_url" if value.is_empty() => refuse("empty".into(), settings.data_url.clone()),
                "data_url" => settings.data_url = if value.ends_with('/') { value.into() } else { format!("{value}/") },
                "autostart" => match flag(value) {
                    Some(on) => settings.autostart = on,
                    None => refuse("expected 1 or 0".into(), "0".into()),
                },
                "bench" => match flag(value) {
                    Some(on) => settings.bench = on,
                    None => refuse("expected 1 or 0".into(), "0".into()),
                },
                "autotune" => match flag(value) {
                    Some(on) => settings.autotune = Some(on),
                    None => refuse("expected 1 or 0".into(), "tuning on a GPU only".into()),
                },
                "threads" => match thread_count(value) {
                    Ok(n) => settings.threads = Some(n),
                    Err(why) => refuse(why, format!("every core the browser offers, up to {DEFAULT_MAX_THREADS}")),
                },
                "study" => {
                    settings.study =
                        Some(value.split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect())
                }
                _ => refuse("unknown setting".into(), "nothing (it is ignored)".into()),
            }
        }
        if settings.study.is_some() {
            if !epochs_given {
                settings.epochs = Recipe::default().epochs;
            }
            notices.extend(settings.check_study());
            return (settings, notices);
        }
        // Dropout and L2 as `fashion-gpu --dropout/--l2` take them for this model.
        while let Err(error) = ModelSpec::choose(&settings.model, None, settings.dropout, settings.l2) {
            let (key, value) = match error {
                ModelError::NoDropout { .. } | ModelError::DropoutRate { .. } => ("dropout", settings.dropout.take()),
                ModelError::L2Factor(_) => ("l2", settings.l2.take()),
                _ => break,
            };
            let value = value.map(|v| v.to_string()).unwrap_or_default();
            let own = if key == "dropout" { "dropout rate" } else { "L2 factor" };
            let used = format!("the `{}` model's own {own}", settings.model);
            notices.push(SettingNotice { key: key.into(), value, why: error.to_string(), used });
        }
        (settings, notices)
    }

    /// Checks the study's models with this dropout rate and L2 factor as the core checks them,
    /// dropping what a model refuses (an unknown or repeated name, the dropout rate or L2
    /// factor), each named in a notice; no models left means the study's six.
    fn check_study(&mut self) -> Vec<SettingNotice> {
        let mut notices = Vec::new();
        let Some(models) = self.study.as_mut() else { return notices };
        let given = models.join(",");
        while let Err(error) = study_specs(models, self.dropout, self.l2) {
            let (key, value, used) = match &error {
                StudyError::NoModels => {
                    *models = STUDY_MODELS.iter().map(|m| m.to_string()).collect();
                    ("study", given.clone(), format!("the study's {}", models.join(",")))
                }
                StudyError::UnknownModel(_) | StudyError::Repeated(_) => {
                    let mut kept: Vec<String> = Vec::new();
                    for model in models.drain(..) {
                        if ModelSpec::preset(&model).is_ok() && !kept.contains(&model) {
                            kept.push(model);
                        }
                    }
                    *models = kept;
                    ("study", given.clone(), format!("study={}", models.join(",")))
                }
                StudyError::Refused { setting: "dropout", .. } => {
                    let rate = self.dropout.take().map(|v| v.to_string()).unwrap_or_default();
                    ("dropout", rate, "each model's own dropout rate".to_string())
                }
                StudyError::Refused { setting: "l2", .. } => {
                    let l2 = self.l2.take().map(|v| v.to_string()).unwrap_or_default();
                    ("l2", l2, "each model's own L2 factor".to_string())
                }
                _ => break,
            };
            notices.push(SettingNotice { key: key.into(), value, why: error.to_string(), used });
        }
        notices
    }

    /// The study's models with the dropout rate and L2 factor set (the study's six when none
    /// were chosen).
    pub fn study_specs(&self) -> Result<Vec<ModelSpec>, StudyError> {
        match &self.study {
            Some(models) => study_specs(models, self.dropout, self.l2),
            None => study_specs(STUDY_MODELS, self.dropout, self.l2),
        }
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
        if self.metrics != EpochMetrics::default() {
            pairs.push(format!("metrics={}", self.metrics.as_str()));
        }
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
        if let Some(on) = self.autotune {
            pairs.push(format!("autotune={}", u8::from(on)));
        }
        if let Some(models) = &self.study {
            pairs.push(format!("study={}", models.join(",")));
        }
        if let Some(n) = self.threads {
            pairs.push(format!("threads={n}"));
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
        let recipe = Recipe {
            epochs: self.epochs,
            batch: self.batch,
            learning_rate: self.learning_rate,
            metrics: self.metrics,
            ..Recipe::default()
        };
        let study = recipe.config()?;
        let config = TrainConfig {
            // Small chunks: the progress bar moves and the page answers between them.
            steps_per_submit: match (backend_is_gpu, self.steps_per_submit) {
                (true, Some(n)) => n,
                (true, None) => DEFAULT_GPU_STEPS_PER_SUBMIT,
                (false, _) => self.model_spec().map_or(1, |spec| cpu_steps_per_chunk(&spec, self.batch)),
            },
            // The CPU evaluates synchronously per batch; smaller batches keep the page live.
            eval_batch: if backend_is_gpu { study.eval_batch } else { 250 },
            ..study
        };
        config.validate()?;
        Ok(config)
    }
}

/// Training steps per chunk on the CPU path: [`CPU_FLOPS_PER_CHUNK`] of work, 1 to 50 steps.
fn cpu_steps_per_chunk(spec: &ModelSpec, batch: usize) -> usize {
    (CPU_FLOPS_PER_CHUNK / flops_per_step(spec, batch)).clamp(1.0, 50.0) as usize
}

/// A setting of the link that the page cannot use, with what it uses instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingNotice {
    pub key: String,
    pub value: String,
    pub why: String,
    pub used: String,
}

impl std::fmt::Display for SettingNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}: {}; using {} instead", self.key, self.value, self.why, self.used)
    }
}

fn split_pair(pair: &str) -> (&str, &str) {
    pair.split_once('=').unwrap_or((pair, ""))
}

/// A count of at least 1.
fn count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err("must be a whole number of at least 1".into()),
    }
}

/// A thread count from 1 to [`MAX_THREADS`].
fn thread_count(value: &str) -> Result<usize, String> {
    match count(value)? {
        n if n > MAX_THREADS => Err(format!("at most {MAX_THREADS} threads")),
        n => Ok(n),
    }
}

/// A whole number that the recipe accepts where `set` puts it (the harness's check).
fn checked(value: &str, set: impl Fn(usize, &mut Recipe)) -> Result<usize, String> {
    let n = value.parse::<usize>().map_err(|_| "must be a whole number of at least 1".to_string())?;
    let mut recipe = Recipe::default();
    set(n, &mut recipe);
    // The page checks before it knows its adapter: the cap of a CPU one (SwiftShader).
    let config = recipe.config().map_err(|e| e.to_string())?;
    config.check_batch_cap(Some(MAX_BATCH)).map(|_| n).map_err(|e| e.to_string())
}

fn flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" | "" => Some(false),
        _ => None,
    }
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
    fn the_cpu_path_chunks_about_the_same_work() {
        let steps = |query: &str| Settings::from_query(query).train_config(false).unwrap().steps_per_submit;
        assert_eq!(steps("?model=baseline"), 14, "baseline, batch 100: 141 MFLOPs a step");
        assert_eq!(steps("?model=baseline&batch=1000"), 1);
        assert_eq!(steps("?model=cnn"), 1);
        assert_eq!(steps("?model=baseline&batch=1"), 50, "at most 50 steps");
        assert_eq!(steps("?model=baseline&steps_per_submit=3"), 14, "steps_per_submit= is the GPU's");
        assert_eq!(Settings::from_query("?model=baseline").train_config(true).unwrap().steps_per_submit, 20);
    }

    #[test]
    fn query_round_trips() {
        let settings = Settings::from_query(
            "?dataset=mnist&model=deep&epochs=2&batch=64&lr=0.0005&train_limit=3000&autostart=1&backend=cpu&data_url=/nope/\
             &bench=1&bench_steps=20&autotune=1&metrics=study",
        );
        assert_eq!(settings.metrics, EpochMetrics::AfterStep);
        assert_eq!(settings.train_config(true).unwrap().metrics, EpochMetrics::AfterStep, "the trainers get it");
        assert!(!Settings::default().to_query().contains("metrics="), "the default stays out of links");
        assert_eq!((settings.bench, settings.bench_steps, settings.autotune), (true, Some(20), Some(true)));
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
    fn bad_values_keep_defaults_and_are_named() {
        let (settings, notices) =
            Settings::parse_query("model=huge&epochs=0&lr=-1&batch=x&dataset=cifar&dropout=1.5&l2=-1&autostart=1");
        assert_eq!(settings, Settings { autostart: true, ..Settings::default() });
        let keys: Vec<&str> = notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["model", "epochs", "lr", "batch", "dataset", "dropout", "l2"], "{notices:?}");
        let text: Vec<String> = notices.iter().map(ToString::to_string).collect();
        assert!(text[0].starts_with("model=huge: unknown model preset `huge`"), "{}", text[0]);
        assert!(text[1].contains("epochs must be at least 1") && text[1].ends_with("using 5 instead"), "{}", text[1]);
        assert!(text[2].contains("learning rate must be a positive number, got -1"), "{}", text[2]);
        assert!(text[3].contains("must be a whole number of at least 1"), "{}", text[3]);
        assert!(text[5].contains("has no Dropout layer"), "the model stays baseline: {}", text[5]);
        assert!(text[6].contains("L2 factor"), "{}", text[6]);
        let (settings, notices) = Settings::parse_query("metrics=after");
        assert_eq!(settings.metrics, EpochMetrics::Step);
        assert!(notices[0].to_string().contains("metrics must be `step`"), "{notices:?}");
        for link in ["batch=0", "batch=20000", "lr=NaN", "train_limit=0", "steps_per_submit=0", "backend=tpu"] {
            assert_eq!(Settings::parse_query(link).1.len(), 1, "{link}");
        }
        for (link, why) in [("threads=0", "at least 1"), ("threads=abc", "whole number"), ("threads=999", "at most 16")]
        {
            let (settings, notices) = Settings::parse_query(link);
            assert_eq!((settings.threads, notices.len()), (None, 1), "{link}");
            assert!(notices[0].to_string().contains(why) && notices[0].used.contains("every core"), "{notices:?}");
        }
        let (settings, notices) = Settings::parse_query("threads=2");
        assert_eq!((settings.threads, notices.len()), (Some(2), 0));
        assert_eq!(Settings::from_query(&settings.to_query()), settings);
        let (_, notices) = Settings::parse_query("model=dropout&dropout=1.5");
        assert!(notices[0].to_string().contains("dropout rate must be in [0, 1)"), "{notices:?}");
        // A rate for a model without Dropout is refused, as `fashion-gpu --dropout` refuses it.
        let (settings, notices) = Settings::parse_query("model=baseline&dropout=0.5");
        assert_eq!((settings.dropout, notices.len()), (None, 1));
        assert!(notices[0].why.contains("has no Dropout layer"), "{notices:?}");
        assert!(Settings::parse_query("model=dropout&dropout=0.5&l2=0.01&autostart=1&train_limit=3000").1.is_empty());
        assert_eq!(Settings::from_query("data_url=http%3A%2F%2Fx%2Fd").data_url, "http://x/d/");
    }

    #[test]
    fn a_study_link_round_trips_with_the_studys_epochs() {
        let (settings, notices) = Settings::parse_query("study=baseline,deep&train_limit=2000&autostart=1");
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(settings.study, Some(vec!["baseline".to_string(), "deep".to_string()]));
        assert_eq!(settings.epochs, 30, "the study's 30 epochs unless the link says");
        assert_eq!(Settings::from_query(&settings.to_query()), settings);
        assert_eq!(Settings::from_query("study=deep&epochs=1").epochs, 1);
        let names = |s: &Settings| s.study_specs().unwrap().into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(&Settings::default()), STUDY_MODELS, "the study's six until chosen");
        let dropout = Settings::from_query("study=dropout&dropout=0.5");
        assert_eq!(dropout.study_specs().unwrap()[0].layers[1], fashion_core::Layer::Dropout { rate: 0.5 });
    }

    #[test]
    fn a_bad_study_link_names_the_model_and_the_setting() {
        let (settings, notices) = Settings::parse_query("study=baseline,nope&autostart=1");
        assert_eq!(settings.study, Some(vec!["baseline".to_string()]));
        assert_eq!((notices.len(), notices[0].key.as_str()), (1, "study"));
        let text = notices[0].to_string();
        assert!(text.starts_with("study=baseline,nope: unknown model preset `nope`"), "{text}");
        assert!(text.ends_with("using study=baseline instead"), "{text}");

        let (settings, notices) = Settings::parse_query("study=&autostart=1");
        assert_eq!(settings.study.as_deref().map(<[String]>::len), Some(6));
        assert!(notices[0].why.contains("at least one model"), "{notices:?}");

        // The single model's check (baseline has no Dropout layer) is not the study's.
        let (settings, notices) = Settings::parse_query("study=dropout,baseline,dropout&dropout=0.5&l2=-1");
        let keys: Vec<&str> = notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["study", "l2", "dropout"], "the names first, then the models in order: {notices:?}");
        assert!(notices[1].why.contains("`dropout` model refuses l2"), "{}", notices[1]);
        assert!(notices[2].why.contains("`baseline` model refuses dropout"), "{}", notices[2]);
        assert_eq!((settings.dropout, settings.l2), (None, None));
        assert_eq!(settings.study, Some(vec!["dropout".to_string(), "baseline".to_string()]));
    }
}
