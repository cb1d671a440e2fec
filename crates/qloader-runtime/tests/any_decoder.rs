//! Sessions, generation and perplexity take any decoder design, not only
//! the Llama-like one: a toy design (a bigram table, no attention) is run
//! through them and its results checked in closed form. Uses the tiny Llama
//! golden's tokenizer (checked in), no fixtures.

use std::path::{Path, PathBuf};

use qloader_format::ActivationFormat;
use qloader_models::decoder::{Decoder, DecoderCheckpoint, DecoderConfig, DecoderDesign, Logits};
use qloader_models::family::Family;
use qloader_models::llama::KvCache;
use qloader_models::probe::{ModelOutput, Probe, ProbedModel, QuantizableTensor};
use qloader_models::{GgufTokenizer, ModelError, WeightRole, WeightSource};
use qloader_quant::{LinearWeight, QuantSummary};
use qloader_runtime::decoder::DecoderSession;
use qloader_runtime::sampling::Sampling;
use serde::{Deserialize, Serialize};

/// The logit of the one likely successor; every other token's is 0.
const SURE: f32 = 10.0;

/// Token `id`'s likely successor.
fn successor(id: u32, vocab: usize) -> u32 {
    ((id as usize * 7 + 3) % vocab) as u32
}

struct BigramDesign;

static BIGRAM: BigramDesign = BigramDesign;

impl DecoderDesign for BigramDesign {
    fn name(&self) -> &'static str {
        "bigram"
    }

    fn open_checkpoint(
        &self,
        _: &'static Family,
        path: &Path,
    ) -> qloader_models::error::Result<Box<dyn DecoderCheckpoint>> {
        Err(ModelError::BadInput { reason: format!("{}: no bigram checkpoints", path.display()) })
    }

    fn read_header(&self, config: &serde_json::Value) -> Result<Box<dyn DecoderConfig>, String> {
        Ok(Box::new(BigramConfig::deserialize(config).map_err(|e| e.to_string())?))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BigramConfig {
    vocab: usize,
    context: usize,
}

impl DecoderConfig for BigramConfig {
    fn design(&self) -> &'static dyn DecoderDesign {
        &BIGRAM
    }

    fn family(&self) -> &str {
        "bigram"
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn context(&self) -> usize {
        self.context
    }

    fn tensor_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap()
    }

    fn build(
        &self,
        _: &mut dyn WeightSource,
        _: &mut dyn FnMut(usize, usize),
    ) -> qloader_models::error::Result<Box<dyn Decoder>> {
        Ok(Box::new(Bigram {
            config: self.clone(),
            summary: QuantSummary::default(),
            activations: ActivationFormat::F32,
        }))
    }
}

struct Bigram {
    config: BigramConfig,
    summary: QuantSummary,
    activations: ActivationFormat,
}

impl Bigram {
    fn logits_after(&self, id: u32, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + self.config.vocab, 0.0);
        out[start + successor(id, self.config.vocab) as usize] = SURE;
    }
}

impl ProbedModel for Bigram {
    fn quantizable_tensors(&self) -> Vec<QuantizableTensor> {
        Vec::new()
    }

    fn tensor_weight(&self, _: usize) -> Option<&LinearWeight> {
        None
    }

    fn layers(&self) -> usize {
        0
    }

    fn output_kind(&self) -> ModelOutput {
        ModelOutput::Logits { vocab: self.config.vocab }
    }

    fn block_input(
        &self,
        ids: &[u32],
        _: &mut Probe<'_>,
    ) -> qloader_models::error::Result<Vec<f32>> {
        Ok(ids.iter().map(|&id| id as f32).collect())
    }

    fn run_block(
        &self,
        layer: usize,
        _: &mut [f32],
        _: usize,
        _: &mut Probe<'_>,
    ) -> qloader_models::error::Result<()> {
        Err(ModelError::BadInput { reason: format!("a bigram has no block {layer}") })
    }

    fn output(
        &self,
        h: Vec<f32>,
        _: usize,
        _: &mut Probe<'_>,
    ) -> qloader_models::error::Result<Vec<f32>> {
        let mut out = Vec::new();
        h.iter().for_each(|&id| self.logits_after(id as u32, &mut out));
        Ok(out)
    }
}

impl Decoder for Bigram {
    fn config(&self) -> &dyn DecoderConfig {
        &self.config
    }

    fn new_cache(&self, positions: usize) -> KvCache {
        KvCache::new(0, 1, 1, positions.min(self.config.context))
    }

    fn forward(
        &self,
        ids: &[u32],
        _: &mut KvCache,
        which: Logits,
    ) -> qloader_models::error::Result<Vec<f32>> {
        let ids = match which {
            Logits::All => ids,
            Logits::Last => &ids[ids.len().saturating_sub(1)..],
        };
        let mut out = Vec::new();
        ids.iter().for_each(|&id| self.logits_after(id, &mut out));
        Ok(out)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }

    fn activations(&self) -> ActivationFormat {
        self.activations
    }

    fn set_activations(&mut self, act: ActivationFormat) {
        self.activations = act;
    }

    fn prepare_products(&self) {}
}

/// A checkpoint without tensors (the bigram's table is its rule).
#[derive(Default)]
struct NoTensors(QuantSummary);

impl WeightSource for NoTensors {
    fn contains(&self, _: &str) -> bool {
        false
    }

    fn values(&mut self, name: &str, _: &[usize]) -> qloader_models::error::Result<Vec<f32>> {
        Err(ModelError::BadInput { reason: format!("no tensor `{name}`") })
    }

    fn weight(
        &mut self,
        name: &str,
        _: usize,
        _: usize,
        _: WeightRole,
    ) -> qloader_models::error::Result<LinearWeight> {
        Err(ModelError::BadInput { reason: format!("no tensor `{name}`") })
    }

    fn summary(&self) -> &QuantSummary {
        &self.0
    }
}

fn tokenizer() -> GgufTokenizer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../qloader-models/tests/data/families/llama/hf");
    GgufTokenizer::from_hf_dir(&dir).unwrap()
}

/// A session of the bigram decoder, built the way the packed loader builds
/// any design's model: from the configuration its header records.
fn bigram_session(context: usize) -> DecoderSession {
    let tokenizer = tokenizer();
    let vocab = tokenizer.vocab_size();
    let header = BigramConfig { vocab, context }.to_json();
    let config = BIGRAM.read_header(&header).unwrap();
    assert_eq!(config.vocab(), vocab, "the header round-trips");
    let mut model = config.build(&mut NoTensors::default(), &mut |_, _| {}).unwrap();
    model.set_activations(ActivationFormat::Int8);
    DecoderSession { model, tokenizer }
}

#[test]
fn generation_follows_any_designs_logits_through_the_session() {
    let session = bigram_session(64);
    let vocab = session.model.config().vocab();
    let greedy = Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 };
    let prompt = "Alice was";
    let ids = session.tokenizer.encode(prompt).unwrap();
    let out = session.generate(prompt, false, 12, greedy, &mut |_| {}).unwrap();
    let eos = session.tokenizer.eos();
    let mut want = Vec::new();
    let mut last = *ids.last().unwrap();
    while want.len() < 12 {
        last = successor(last, vocab);
        if Some(last) == eos {
            break;
        }
        want.push(last);
    }
    assert_eq!(out.tokens, want);
    assert_eq!(out.stopped_at_eos, want.len() < 12);
    assert_eq!(out.text, session.tokenizer.decode(&want).unwrap());
    assert_eq!(session.model.activations(), ActivationFormat::Int8);

    // Generation stops where the design's context does.
    let short = bigram_session(ids.len() + 3);
    let out = short.generate(prompt, false, 100, greedy, &mut |_| {}).unwrap();
    assert!(
        out.tokens.len() <= 4,
        "{} tokens past a context of {}",
        out.tokens.len(),
        ids.len() + 3
    );
}

#[test]
fn perplexity_of_any_design_matches_its_closed_form() {
    let session = bigram_session(16);
    let vocab = session.model.config().vocab();
    let text = "The quick brown fox jumps over the lazy dog, and the dog sleeps on.";
    let ids = session.tokenizer.encode(text).unwrap();
    // Windows longer than the context are cut to it.
    let report = session.perplexity(text, 64, 100, &mut |_, _| {}).unwrap();
    assert_eq!(report.window, 16);
    let windows = ids.len() / 16;
    assert_eq!(report.windows, windows);
    // Each prediction: log-probability of the successor or of any other.
    let z = (SURE as f64).exp() + (vocab - 1) as f64;
    let (mut nll, mut scored) = (0.0, 0);
    for w in ids.chunks_exact(16).take(windows) {
        for pair in w.windows(2) {
            let logit = if pair[1] == successor(pair[0], vocab) { SURE as f64 } else { 0.0 };
            nll += z.ln() - logit;
            scored += 1;
        }
    }
    assert_eq!(report.scored, scored);
    let want = nll / scored as f64;
    assert!((report.mean_nll - want).abs() < 1e-9 * want, "{} vs {want}", report.mean_nll);
}

#[test]
fn a_design_reads_back_only_its_own_header() {
    let bad = BIGRAM.read_header(&serde_json::json!({"vocab": 4, "layers": 2})).unwrap_err();
    assert!(bad.contains("unknown field `layers`"), "{bad}");
    let llama = qloader_models::decoder::design("llama").unwrap();
    let header = BigramConfig { vocab: 4, context: 8 }.to_json();
    assert!(llama.read_header(&header).is_err(), "a llama header needs its own fields");
}
