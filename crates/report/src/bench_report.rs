//! The benchmark's report as people and scripts read it: one JSON object whose keys
//! `bench/pytorch_reference.py` prints too (`fashion-gpu bench --json`, the page's `?bench=1`),
//! a few lines of text, and a training step's dispatch plan (`bench --plan`) as JSON or a table.
//! The core measures ([`fashion_core::bench`]); this formats what it measured.

use fashion_core::bench::BenchReport;
use fashion_core::gpu::kernel::PlannedDispatch;
use fashion_core::train::Backend;
use serde_json::{json, Value};

/// The report as one JSON object (the keys `bench/pytorch_reference.py` prints).
pub fn to_json(report: &BenchReport) -> Value {
    let round = |x: f64, digits: i32| (x * 10f64.powi(digits)).round() / 10f64.powi(digits);
    let phase = |i: usize| report.phase_ms().map_or(json!("n/a"), |ms| json!(round(ms[i], 3)));
    let kernels: serde_json::Map<String, Value> =
        report.kernels.entries().into_iter().map(|(k, v)| (k, json!(v))).collect();
    let steps = report.options.steps.max(1) as f64;
    let dispatch_ms: Vec<Value> = report
        .dispatches
        .iter()
        .flatten()
        .map(|d| json!({ "kernel": d.kernel, "ms": round(d.seconds * 1e3 / steps, 3) }))
        .collect();
    let tuning: serde_json::Map<String, Value> = report
        .tuning
        .iter()
        .flat_map(|t| &t.timings)
        .map(|t| (format!("{}/{}", t.kernel.as_str(), t.variant.as_str()), json!(round(t.seconds_per_step * 1e3, 3))))
        .collect();
    let framework = match report.kernels.backend() {
        Backend::Gpu => "fashion-gpu (wgpu)",
        Backend::Cpu => "fashion-gpu (cpu)",
    };
    json!({
        "framework": framework,
        "backend": report.kernels.backend().as_str(),
        "model": report.model,
        "adapter": report.adapter,
        "batch": report.options.batch,
        "steps": report.options.steps,
        "steps_per_submit": report.options.steps_per_submit,
        "seconds_per_step": round(report.seconds_per_step(), 6),
        "samples_per_second": round(report.samples_per_second(), 1),
        "epoch_seconds": round(report.epoch_seconds(), 2),
        "dispatches_per_step": report.dispatches_per_step,
        "submits_per_step": round(report.submits_per_step(), 4),
        "flops_per_step": report.flops_per_step,
        "gflops": round(report.gflops(), 3),
        "forward_ms": phase(0),
        "backward_ms": phase(1),
        "optimizer_ms": phase(2),
        "timing": if report.dispatches.is_some() { "timestamp-query" } else { "n/a" },
        "variants": kernels,
        "dispatch_ms": dispatch_ms,
        "autotune_ms": tuning,
    })
}

/// A few lines for people.
pub fn summary(report: &BenchReport) -> String {
    let phases = match report.phase_ms() {
        Some([f, b, o]) => format!("forward {f:.2} ms, backward {b:.2} ms, optimizer {o:.2} ms per step"),
        None => "forward/backward/optimizer split: n/a (no timestamp queries)".to_string(),
    };
    let kernels: Vec<String> = report.kernels.entries().iter().map(|(k, v)| format!("{k} {v}")).collect();
    let steps = report.options.steps.max(1) as f64;
    let dispatches: String = report
        .dispatches
        .iter()
        .flatten()
        .map(|d| format!("\n  {:<30} {:8.3} ms", d.kernel, d.seconds * 1e3 / steps))
        .collect();
    format!(
        "Adapter: {}\nModel {}, batch {}, {} timed steps ({} per submit)\n\
         {:.0} samples/s, {:.2} s per 60k-sample epoch, {:.2} GFLOP/s\n\
         {} dispatches and {:.3} submits per step\n{}{}\nKernel variants: {}",
        report.adapter,
        report.model,
        report.options.batch,
        report.options.steps,
        report.options.steps_per_submit,
        report.samples_per_second(),
        report.epoch_seconds(),
        report.gflops(),
        report.dispatches_per_step,
        report.submits_per_step(),
        phases,
        dispatches,
        kernels.join(", "),
    )
}

/// A plan as JSON: `{"plan": [{"kernel", "workgroups", "invocations", "max_iterations", "flops"}, …]}`.
pub fn plan_json(plan: &[PlannedDispatch]) -> Value {
    let dispatches: Vec<Value> = plan
        .iter()
        .map(|d| {
            json!({
                "kernel": d.kernel,
                "workgroups": d.workgroups,
                "invocations": d.invocations,
                "max_iterations": d.max_iterations,
                "flops": d.flops,
            })
        })
        .collect();
    json!({ "plan": dispatches })
}

/// A plan as a table for people.
pub fn plan_table(plan: &[PlannedDispatch]) -> String {
    let mut table = format!(
        "{:<34} {:>18} {:>12} {:>14} {:>14} {:>12}\n",
        "kernel", "workgroups", "invocations", "max_iterations", "flops", "flops/inv."
    );
    for d in plan {
        let [x, y, z] = d.workgroups;
        table += &format!(
            "{:<34} {:>18} {:>12} {:>14} {:>14} {:>12}\n",
            d.kernel,
            format!("{x}×{y}×{z}"),
            d.invocations,
            d.max_iterations,
            d.flops,
            d.flops / d.invocations.max(1)
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use fashion_core::bench::{BenchKernels, BenchOptions};
    use fashion_core::{CpuKernels, KernelChoice};

    use super::*;

    fn gpu_report() -> BenchReport {
        BenchReport {
            model: "baseline".into(),
            adapter: "test".into(),
            options: BenchOptions { steps: 20, steps_per_submit: 8, ..BenchOptions::default() },
            seconds: 0.5,
            dispatches_per_step: 11,
            flops_per_step: 1e8,
            dispatches: None,
            kernels: BenchKernels::Gpu(KernelChoice::default()),
            tuning: None,
        }
    }

    #[test]
    fn report_json_keys() {
        let json = to_json(&gpu_report());
        for key in ["adapter", "epoch_seconds", "samples_per_second", "dispatches_per_step", "submits_per_step"] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["forward_ms"], "n/a");
        assert_eq!(json["variants"]["dense_forward"], "vec4");
        assert_eq!(json["backend"], "gpu");
    }

    /// A CPU benchmark's report has the GPU report's keys.
    #[test]
    fn the_cpu_report_has_the_same_keys() {
        let gpu = gpu_report();
        let cpu = BenchReport {
            adapter: CpuKernels::Fast.describe(),
            dispatches_per_step: 0,
            kernels: BenchKernels::Cpu { kernels: CpuKernels::Fast, threads: 2 },
            ..gpu.clone()
        };
        let json = to_json(&cpu);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&json), keys(&to_json(&gpu)));
        assert_eq!((json["backend"].as_str(), json["variants"]["cpu"].as_str()), (Some("cpu"), Some("fast")));
        assert_eq!(json["submits_per_step"], 0.0);
    }

    #[test]
    fn a_plan_is_one_json_entry_and_one_table_row_per_dispatch() {
        let plan = [
            PlannedDispatch {
                kernel: "gather_batch",
                workgroups: [4, 100, 1],
                invocations: 25600,
                max_iterations: 0,
                flops: 0,
            },
            PlannedDispatch {
                kernel: "dense_forward_tiled",
                workgroups: [8, 4, 1],
                invocations: 8192,
                max_iterations: 900,
                flops: 40140800,
            },
        ];
        assert_eq!(
            plan_json(&plan[..1]).to_string(),
            r#"{"plan":[{"flops":0,"invocations":25600,"kernel":"gather_batch","max_iterations":0,"workgroups":[4,100,1]}]}"#
        );
        let table = plan_table(&plan);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].starts_with("kernel ") && rows[0].ends_with("flops/inv."), "{}", rows[0]);
        assert!(rows[2].contains("8×4×1") && rows[2].ends_with(" 4900"), "{}", rows[2]);
    }
}
