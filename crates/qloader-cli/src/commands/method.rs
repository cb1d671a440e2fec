//! `--method`: how a command that quantizes chooses codes. Round to nearest
//! needs nothing; imatrix and GPTQ need calibration text, checked here
//! before any model is read. Either yields the [`Quantization`] the packer
//! and the sessions take, and a line saying how it was calibrated.

use std::cell::OnceCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qloader_analyze::gptq::SequentialOptions;
use qloader_analyze::request::{Calibration, DEFAULT_WINDOW};
use qloader_analyze::Progress;
use qloader_format::{fixtures, QuantMethod, WeightFormat};
use qloader_quant::ColumnImportance;
use qloader_runtime::packed::Quantization;

use crate::args::MethodArgs;

/// A method and its settings, validated.
pub struct Method {
    /// The method.
    pub method: QuantMethod,
    /// Calibration prose (imatrix, gptq).
    pub calibration: PathBuf,
    /// Calibration samples; `None`: the method's default.
    pub samples: Option<usize>,
    /// GPTQ damping, as a fraction of the mean Hessian diagonal.
    pub damping: f64,
    /// GPTQ act-order with static groups.
    pub act_order: bool,
    /// The model and its samples once loaded, with their importance
    /// vectors and the seconds that took (one model per command).
    calibrated: OnceCell<(Calibration, ColumnImportance, f64)>,
}

impl Method {
    /// The method `args` ask for (`default` when they name none), or why it
    /// cannot work.
    pub fn from_args(args: &MethodArgs, default: QuantMethod) -> Result<Self> {
        let method = args.method.unwrap_or(default);
        let gptq_only = args.act_order || args.damping != 0.01;
        if gptq_only && method != QuantMethod::Gptq {
            bail!("--damping and --act-order need --method gptq");
        }
        if (args.calib.is_some() || args.calib_samples.is_some()) && !method.is_calibrated() {
            bail!("--calib and --calib-samples need --method imatrix or --method gptq");
        }
        let calibration = args.calib.clone().unwrap_or_else(fixtures::alice_text);
        if method.is_calibrated() && !calibration.is_file() {
            bail!(
                "{}: no such calibration text (run scripts/fetch-fixtures.sh for the default, or pass --calib FILE)",
                calibration.display()
            );
        }
        if args.calib_samples == Some(0) {
            bail!("--calib-samples must be at least 1");
        }
        if !(args.damping.is_finite() && args.damping > 0.0) {
            bail!("--damping must be a positive fraction, got {}", args.damping);
        }
        Ok(Self {
            method,
            calibration,
            samples: args.calib_samples,
            damping: args.damping,
            act_order: args.act_order,
            calibrated: OnceCell::new(),
        })
    }

    /// Whether the method changes the codes of `format` (else they are
    /// rounded to nearest).
    pub fn applies_to(&self, format: WeightFormat) -> bool {
        match self.method {
            QuantMethod::Rtn => false,
            QuantMethod::Imatrix => {
                matches!(
                    format,
                    WeightFormat::Grouped(_) | WeightFormat::Compact(_) | WeightFormat::Block(_)
                )
            }
            QuantMethod::Gptq => qloader_analyze::gptq::supports(format),
        }
    }

    /// How the tensors of `model` that `formats` gives a format are to be
    /// quantized, calibrating as the method needs (with a progress line on
    /// a terminal labelled `what`), and a line that says how, for the
    /// command to print (`None` for round to nearest).
    pub fn quantization(
        &self,
        model: &Path,
        what: &str,
        formats: &dyn Fn(&str) -> Option<WeightFormat>,
    ) -> Result<(Quantization, Option<String>)> {
        if self.method == QuantMethod::Rtn {
            return Ok((Quantization::default(), None));
        }
        let clock = std::time::Instant::now();
        let context = || {
            format!(
                "{} of {} to {what}, calibrated on {}",
                self.method,
                model.display(),
                self.calibration.display()
            )
        };
        let (calibration, importance, seconds) = match self.calibrated.get() {
            Some(done) => done,
            None => {
                // The method's default sample count, as the analysis takes
                // it; the importance vectors come from the same samples.
                let c = Calibration::open(
                    model,
                    &self.calibration,
                    self.samples,
                    self.method,
                    DEFAULT_WINDOW,
                )
                .with_context(context)?;
                let importance = c.importance().with_context(context)?;
                let seconds = clock.elapsed().as_secs_f64();
                self.calibrated.get_or_init(|| (c, importance, seconds))
            }
        };
        let encoder = qloader_models::family::detect(model)
            .is_ok_and(|f| f.kind == qloader_models::family::Kind::Encoder);
        let unit = if encoder { "sentences" } else { "windows" };
        let used = format!(
            "{} calibration {unit} ({} tokens) of {}",
            calibration.samples(),
            calibration.tokens(),
            self.calibration.display()
        );
        let mut quantization = Quantization {
            method: self.method,
            calibration: Some(used.clone()),
            replacements: Default::default(),
            importance: Some(importance.clone()),
        };
        if self.method == QuantMethod::Gptq {
            let clock = std::time::Instant::now();
            let mut opts = SequentialOptions::default();
            opts.gptq.damping = self.damping;
            opts.gptq.act_order = self.act_order;
            let verbose = std::io::stderr().is_terminal();
            let mut progress = |p: Progress| {
                if verbose {
                    eprint!("\rGPTQ {what}: tensor {}/{}", p.done, p.total);
                    if p.done == p.total {
                        eprintln!();
                    }
                }
            };
            let only_supported = |name: &str| formats(name).filter(|&f| self.applies_to(f));
            let done =
                calibration.gptq(&only_supported, &opts, &mut progress).with_context(context)?;
            let described = format!(
                "{used}, damping {}{}",
                self.damping,
                if self.act_order { ", act-order" } else { "" },
            );
            let line = format!(
                "{} tensors, {described}, quantized in {:.1} s",
                done.weights.len(),
                seconds + clock.elapsed().as_secs_f64()
            );
            quantization.calibration = Some(described);
            quantization.replacements = done.weights;
            return Ok((quantization, Some(line)));
        }
        let line =
            format!("{} tensors weighted, {used}, calibrated in {seconds:.1} s", importance.len());
        Ok((quantization, Some(line)))
    }
}
