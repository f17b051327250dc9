//! `fashion-gpu export`: saved weights as a file Keras, ONNX Runtime or TF.js loads, and the one
//! writer `train --export` uses too.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fashion_core::ModelSpec;
use fashion_interop::{layers::KerasModel, tfjs, Format};

use crate::args::ModelArgs;
use crate::eval::read_model;

#[derive(Args)]
pub struct ExportArgs {
    /// A .safetensors file written by `fashion-gpu train --save` or the page (or a .keras model).
    #[arg(long)]
    weights: PathBuf,
    /// The model a .safetensors file was saved from.
    #[command(flatten)]
    model: ModelArgs,
    /// keras (Keras 3's .keras), onnx, or tfjs (a TF.js LayersModel: a folder with model.json and
    /// its weights shard, or one .zip); default: from --out's extension.
    #[arg(long, value_parser = ["keras", "onnx", "tfjs"])]
    format: Option<String>,
    /// Where to write it: FILE.keras, FILE.onnx, or for tfjs a folder, a model.json or a .zip.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let (spec, params) = read_model(&args.weights, &args.model)?;
    let format = match &args.format {
        Some(name) => Format::from_name(name).context("--format is keras, onnx or tfjs")?,
        None => format_of(&args.out)?,
    };
    write_export(&args.out, format, &spec, &params)
}

/// The format `path`'s extension names (`.keras`, `.onnx`, `.zip` or `model.json` for TF.js).
pub fn format_of(path: &Path) -> anyhow::Result<Format> {
    Format::from_path(path).with_context(|| {
        format!(
            "{}: the format is not clear from the name; end it in .keras, .onnx, .zip (TF.js) or model.json",
            path.display()
        )
    })
}

/// Writes `spec` with `params` as `format` at `path`, and says where on stderr. TF.js goes to a
/// folder (or beside a `model.json`) as two files, unless `path` is a `.zip`.
pub fn write_export(path: &Path, format: Format, spec: &ModelSpec, params: &[f32]) -> anyhow::Result<()> {
    let fail = |what: &Path| format!("cannot write {}", what.display());
    let is_zip = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if format == Format::Tfjs && !is_zip {
        let (folder, model_json) = if path.file_name().is_some_and(|name| name == "model.json") {
            (path.parent().unwrap_or(Path::new(".")).to_path_buf(), path.to_path_buf())
        } else {
            (path.to_path_buf(), path.join("model.json"))
        };
        let files = tfjs::write_files(&KerasModel::new(spec, params)?)?;
        std::fs::create_dir_all(&folder).with_context(|| fail(&folder))?;
        let shard = folder.join(tfjs::WEIGHTS_FILE);
        std::fs::write(&model_json, files.model_json).with_context(|| fail(&model_json))?;
        std::fs::write(&shard, files.weights).with_context(|| fail(&shard))?;
        eprintln!("TF.js LayersModel written to {} and {}", model_json.display(), shard.display());
        return Ok(());
    }
    let bytes = fashion_interop::export(spec, params, format)?;
    std::fs::write(path, bytes).with_context(|| fail(path))?;
    eprintln!("{} model written to {}", format.title(), path.display());
    Ok(())
}
