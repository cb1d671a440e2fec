//! `--method`: how a command that quantizes chooses codes. Round to nearest
//! needs nothing; GPTQ needs calibration text, checked here before any
//! model is read, and runs block by block with a progress line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qloader_analyze::gptq::{quantize_encoder, GptqModel, SequentialOptions};
use qloader_analyze::Progress;
use qloader_format::{fixtures, WeightFormat};

use crate::args::{MethodArg, MethodArgs};

/// GPTQ settings, validated.
#[derive(Debug, Clone)]
pub struct Gptq {
    /// Calibration prose.
    pub calibration: PathBuf,
    /// Sentences of it to calibrate on.
    pub sentences: usize,
    /// Damping, as a fraction of the mean Hessian diagonal.
    pub damping: f64,
    /// Act-order with static groups.
    pub act_order: bool,
}

impl Gptq {
    /// The GPTQ settings `args` ask for (`None` for round to nearest), or
    /// why they cannot work.
    pub fn from_args(args: &MethodArgs) -> Result<Option<Self>> {
        let gptq_only = args.calib.is_some()
            || args.calib_sentences != qloader_analyze::gptq::DEFAULT_SENTENCES
            || args.act_order
            || args.damping != 0.01;
        if args.method == MethodArg::Rtn {
            if gptq_only {
                bail!("--calib, --calib-sentences, --damping and --act-order need --method gptq");
            }
            return Ok(None);
        }
        let calibration = args.calib.clone().unwrap_or_else(fixtures::alice_text);
        if !calibration.is_file() {
            bail!(
                "{}: no such calibration text (run scripts/fetch-fixtures.sh for the default, or pass --calib FILE)",
                calibration.display()
            );
        }
        if args.calib_sentences == 0 {
            bail!("--calib-sentences must be at least 1");
        }
        if !(args.damping.is_finite() && args.damping > 0.0) {
            bail!("--damping must be a positive fraction, got {}", args.damping);
        }
        Ok(Some(Self {
            calibration,
            sentences: args.calib_sentences,
            damping: args.damping,
            act_order: args.act_order,
        }))
    }

    /// How `done` was calibrated, for the line a command prints under its
    /// table: "N calibration sentences (T tokens) of FILE, damping D,
    /// quantized in S s".
    pub fn describe(&self, done: &GptqModel) -> String {
        format!(
            "{} calibration sentences ({} tokens) of {}, damping {}{}, quantized in {:.1} s",
            done.samples,
            done.tokens,
            self.calibration.display(),
            self.damping,
            if self.act_order { ", act-order" } else { "" },
            done.seconds
        )
    }

    /// Whether GPTQ chooses the codes of `format` (else they are rounded to
    /// nearest).
    pub fn applies_to(format: WeightFormat) -> bool {
        qloader_analyze::gptq::supports(format)
    }

    /// Every linear weight of the encoder in `model` quantized to `format`,
    /// with a progress line on a terminal.
    pub fn quantize_encoder(&self, model: &Path, format: WeightFormat) -> Result<GptqModel> {
        self.quantize_encoder_planned(model, &format.to_string(), &|_| Some(format))
    }

    /// Every linear weight of the encoder in `model` that `formats` gives a
    /// format GPTQ produces quantized to that format (the others left out,
    /// for the caller to store as it would anyway), with a progress line on
    /// a terminal labelled `what`.
    pub fn quantize_encoder_planned(
        &self,
        model: &Path,
        what: &str,
        formats: &dyn Fn(&str) -> Option<WeightFormat>,
    ) -> Result<GptqModel> {
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
        let only_supported = |name: &str| formats(name).filter(|&f| Self::applies_to(f));
        quantize_encoder(
            model,
            &self.calibration,
            self.sentences,
            &only_supported,
            &opts,
            &mut progress,
        )
        .with_context(|| {
            format!(
                "GPTQ of {} to {what}, calibrated on {}",
                model.display(),
                self.calibration.display()
            )
        })
    }
}
