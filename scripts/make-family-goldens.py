#!/usr/bin/env python3
"""Write a tiny randomly initialised model of each decoder family, as a
Hugging Face checkpoint directory and as a GGUF file, with goldens computed
by Hugging Face transformers: logits at every position of a fixed prompt, the
greedy continuation of 16 tokens (through transformers' KV cache), and the
token ids of awkward texts.

Run by hand once (not in CI); scripts/make-family-goldens.sh pins the
versions and runs it:

    scripts/make-family-goldens.sh

Output, for each family F, under crates/qloader-models/tests/data/families/F/:
    hf/        config.json, generation_config.json, tokenizer.json and the
               weights (model.safetensors, or shards and
               model.safetensors.index.json), in the dtype listed below
    model.gguf the same weights (as transformers rounded them to that dtype)
               in F32, with the tokenizer in GGUF metadata
    golden.json

Each family's weights are drawn with a seed chosen so that, at every
position and greedy step, the top logit leads the second by at least
MIN_MARGIN: an arg-max then cannot flip within the tests' logit tolerance.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import gguf

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/qloader-models/tests/data/families"
MIN_MARGIN = 0.02
PROMPT_LEN = 12
GREEDY = 16
VOCAB = 400

# Public-domain prose (Lewis Carroll) to train the byte-level BPE on.
TEXT = """Alice was beginning to get very tired of sitting by her sister on the bank,
and of having nothing to do: once or twice she had peeped into the book her sister
was reading, but it had no pictures or conversations in it, and what is the use of
a book, thought Alice, without pictures or conversations? So she was considering in
her own mind (as well as she could, for the hot day made her feel very sleepy and
stupid), whether the pleasure of making a daisy-chain would be worth the trouble of
getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran
close by her. There was nothing so very remarkable in that; nor did Alice think it
so very much out of the way to hear the Rabbit say to itself, Oh dear! Oh dear! I
shall be late! 1865, 42 and 3.14159 were the numbers.
In 1865, 1866 and 1867 there were 123 456 789 rabbits; 12345 and 67890 more, 1234 in all.


    DON'T, I'LL, you're, they've (and) [so] {on}... 2024-12-07 12:34"""

AWKWARD = [
    "Hello, world!",
    "  two leading spaces and\ttabs\n\nnewlines",
    "numbers 1234567 and 3.14159, 1865-1867: 123456789",
    "naïve café — “quotes” ☃ 日本語",
    "I'm sure you'll see she'd DON'T   end   \n\n  indented",
    "",
]
# Byte-level BPE only: its special token matched in the text.
SPECIAL = ["<|endoftext|>Alice<|endoftext|>"]

# More texts for SentencePiece: its word boundaries and byte fallback
# (special tokens in text are left out: the sentencepiece library does not
# match them, llama.cpp does).
SPM_TEXTS = [
    "Alice said: Oh dear!  Oh dear!   I shall be late!",
    " a",
    "x",
    "Rabbit-hole, 42 daisies… and 🐇",
    "THE WHITE RABBIT",
]

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    initializer_range=0.3,
    bos_token_id=0,
    eos_token_id=0,
)

# family: (transformers config class, model class, extra config, checkpoint
# dtype, GGUF architecture, sharded)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM",
              dict(rope_theta=10000.0, tie_word_embeddings=False), torch.bfloat16, "llama", False),
    "mistral": ("MistralConfig", "MistralForCausalLM",
                dict(rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False),
                torch.float32, "llama", False),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM",
              dict(rope_theta=1000000.0, tie_word_embeddings=True), torch.float16, "qwen2", False),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM",
              dict(rope_theta=1000000.0, head_dim=16, tie_word_embeddings=True),
              torch.bfloat16, "qwen3", True),
    # Gemma 2: GeGLU, norms after each sub-layer, embeddings scaled by
    # sqrt(hidden), local (even) and global layers, soft-capped scores and
    # logits, an attention scale of its own.
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               dict(rope_theta=10000.0, head_dim=16, query_pre_attn_scalar=24,
                    sliding_window=5, attn_logit_softcapping=2.0,
                    final_logit_softcapping=12.0, hidden_activation="gelu_pytorch_tanh",
                    tie_word_embeddings=True),
               torch.float32, "gemma2", False),
    # Gemma 3: as Gemma 2 without soft-capping, with q/k norms, five local
    # layers to one global (as llama.cpp fixes for GGUF), the local layers'
    # RoPE base 10 000 and linear RoPE scaling on the global ones.
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               dict(num_hidden_layers=6, head_dim=16, query_pre_attn_scalar=24,
                    sliding_window=5, hidden_activation="gelu_pytorch_tanh",
                    rope_parameters={
                        "full_attention": {"rope_type": "linear", "factor": 8.0,
                                           "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                    },
                    tie_word_embeddings=True),
               torch.bfloat16, "gemma3", False),
    # Phi-3: q, k, v fused in one matrix, the gate and up projections in
    # another, and a sliding window.
    "phi3": ("Phi3Config", "Phi3ForCausalLM",
             dict(rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False,
                  pad_token_id=0),
             torch.float16, "phi3", False),
}

# What GGUF files of these architectures store differently from the
# checkpoint (as llama.cpp's converter writes them).
GEMMA = ("gemma2", "gemma3")


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tok.train_from_iterator([TEXT], trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    return tok


# The pre-tokenizer splits of Llama 3 (`tokenizer.ggml.pre = "llama-bpe"`)
# and Qwen2 (`"qwen2"`), as their tokenizer.json files write them.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# family: (GGUF `tokenizer.ggml.pre`, split pattern); the others keep GPT-2's.
PRE = {"llama": ("llama-bpe", LLAMA3_SPLIT), "qwen2": ("qwen2", QWEN2_SPLIT),
       "qwen3": ("qwen2", QWEN2_SPLIT)}


def family_tokenizer(tok, family):
    """The tokenizer with the family's pre-tokenizer, and its GGUF name."""
    if family not in PRE:
        return tok, "default"
    from tokenizers import Regex
    name, pattern = PRE[family]
    out = Tokenizer.from_str(tok.to_str())
    out.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    return out, name


def randomise(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))


def margins(logits):
    top2 = torch.topk(logits, 2, dim=-1).values
    return (top2[..., 0] - top2[..., 1]).min().item()


def run(model, ids):
    """Logits at every position of `ids`, and the greedy continuation of
    GREEDY tokens fed one at a time through transformers' KV cache (no
    generation processors: an end-of-sequence token is a token like any)."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=True)
        logits = out.logits[0]
        cache, last = out.past_key_values, logits[-1]
        greedy, margin = [], margins(logits)
        for _ in range(GREEDY):
            margin = min(margin, margins(last))
            greedy.append(int(torch.argmax(last)))
            out = model(torch.tensor([[greedy[-1]]]), past_key_values=cache, use_cache=True)
            cache, last = out.past_key_values, out.logits[0, -1]
    return logits, greedy, margin


def permute_for_gguf(w, heads):
    """llama.cpp's converter permutes Llama q/k rows so that RoPE rotates
    adjacent pairs (GGUF) where transformers rotates halves."""
    return (w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


GGUF_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.qkv_proj": "attn_qkv",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "mlp.gate_up_proj": "ffn_up",
}

GEMMA_NORMS = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def gguf_name(name, arch):
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    _, _, layer, rest = name.split(".", 3)
    part, kind = rest.rsplit(".", 1)
    names = dict(GGUF_NAMES, **GEMMA_NORMS) if arch in GEMMA else GGUF_NAMES
    return f"blk.{layer}.{names[part]}.{kind}"


def write_gguf(path, arch, config, state, tok, family, pre):
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{family}")
    w.add_block_count(config.num_hidden_layers)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    rope = config.rope_parameters
    rope = rope.get("full_attention", rope)
    w.add_rope_freq_base(rope["rope_theta"])
    if rope.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    if arch == "phi3":
        w.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    if getattr(config, "attn_logit_softcapping", None):
        w.add_attn_logit_softcapping(config.attn_logit_softcapping)
    if getattr(config, "final_logit_softcapping", None):
        w.add_final_logit_softcapping(config.final_logit_softcapping)
    if getattr(config, "query_pre_attn_scalar", None):
        # llama.cpp infers Gemma's attention scale from the model's size; the
        # reader takes `{arch}.attention.scale` where a file gives it.
        w.add_attention_scale(config.query_pre_attn_scalar ** -0.5)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim != config.hidden_size // config.num_attention_heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if getattr(config, "sliding_window", None) and not hasattr(config, "use_sliding_window"):
        w.add_sliding_window(config.sliding_window)
    vocab = tok.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t == "<|endoftext|>" else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    for name, t in state.items():
        a = t.to(torch.float32).numpy()
        if arch in GEMMA and name.endswith("norm.weight"):
            # Gemma's checkpoints store RMSNorm scales minus one; GGUF the
            # scales themselves.
            a = a + 1.0
        if arch == "llama" and name.endswith("self_attn.q_proj.weight"):
            a = permute_for_gguf(a, config.num_attention_heads)
        if arch == "llama" and name.endswith("self_attn.k_proj.weight"):
            a = permute_for_gguf(a, config.num_key_value_heads)
        w.add_tensor(gguf_name(name, arch), np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_sentencepiece(out):
    """A SentencePiece BPE model trained on TEXT with byte fallback (as
    Llama 2's and Gemma's are), stored as llama.cpp stores one in GGUF
    metadata (`tokenizer.ggml.model = "llama"`: pieces, scores, types), with
    and without the leading space, and the ids the sentencepiece library
    gives for the awkward texts."""
    import io
    import sentencepiece as spm

    golden = {"generator": f"sentencepiece {spm.__version__}", "cases": []}
    os.makedirs(out, exist_ok=True)
    for prefix in (True, False):
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(TEXT.splitlines()), model_writer=model, model_type="bpe",
            vocab_size=400, byte_fallback=True, character_coverage=1.0,
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            split_digits=True, add_dummy_prefix=prefix, unk_id=0, bos_id=1, eos_id=2,
            pad_id=-1, minloglevel=2,
        )
        proto = model.getvalue()
        sp = spm.SentencePieceProcessor(model_proto=proto)
        name = "sentencepiece.gguf" if prefix else "sentencepiece-no-prefix.gguf"
        w = gguf.GGUFWriter(os.path.join(out, name), "llama")
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        types = []
        for i in range(sp.get_piece_size()):
            if sp.is_unknown(i):
                types.append(2)
            elif sp.is_control(i):
                types.append(3)
            elif sp.is_byte(i):
                types.append(6)
            elif sp.is_unused(i):
                types.append(5)
            else:
                types.append(1)
        w.add_tokenizer_model("llama")
        w.add_token_list(pieces)
        w.add_token_scores([sp.get_score(i) for i in range(sp.get_piece_size())])
        w.add_token_types(types)
        w.add_bos_token_id(sp.bos_id())
        w.add_eos_token_id(sp.eos_id())
        w.add_unk_token_id(sp.unk_id())
        if not prefix:
            w.add_add_space_prefix(False)
            w.add_add_bos_token(False)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        bos = [sp.bos_id()] if prefix else []
        golden["cases"].append({
            "file": name,
            "texts": [{"text": t, "ids": bos + sp.encode(t)} for t in AWKWARD + SPM_TEXTS],
        })
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
    print(f"sentencepiece: {sp.get_piece_size()} pieces")


def main():
    write_sentencepiece(os.path.join(OUT, "sentencepiece"))
    tok = train_tokenizer()
    prompt = tok.encode(TEXT[:120]).ids[:PROMPT_LEN]
    assert len(prompt) == PROMPT_LEN
    for family, (cfg_name, model_name, extra, dtype, arch, sharded) in FAMILIES.items():
        cfg = getattr(transformers, cfg_name)(**dict(COMMON, **extra))
        best = None
        for seed in range(200):
            model = getattr(transformers, model_name)(cfg).eval()
            randomise(model, seed)
            # The checkpoint's dtype rounds the weights; the goldens are of
            # the rounded weights, computed in f32 (parameters only: RoPE's
            # frequencies, a buffer, stay f32 as a loader computes them).
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(dtype).to(torch.float32))
            logits, greedy, margin = run(model, prompt)
            if margin >= MIN_MARGIN:
                best = (seed, model, logits, greedy, margin)
                break
        assert best, f"{family}: no seed gives a margin of {MIN_MARGIN}"
        seed, model, logits, greedy, margin = best
        out = os.path.join(OUT, family)
        hf = os.path.join(out, "hf")
        os.makedirs(hf, exist_ok=True)
        for f in os.listdir(hf):
            os.remove(os.path.join(hf, f))
        model.to(dtype).save_pretrained(
            hf, safe_serialization=True, max_shard_size="40KB" if sharded else "50GB"
        )
        ftok, pre = family_tokenizer(tok, family)
        ftok.save(os.path.join(hf, "tokenizer.json"))
        state = {k: v for k, v in model.state_dict().items()}
        if cfg.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        write_gguf(os.path.join(out, "model.gguf"), arch, cfg, state, ftok, family, pre)
        golden = {
            "family": family,
            "generator": f"transformers {transformers.__version__}, torch {torch.__version__}",
            "seed": seed,
            "min_margin": margin,
            "ids": prompt,
            "logits": logits.tolist(),
            "greedy": greedy,
            "pre_tokenizer": pre,
            "tokenizer": [{"text": t, "ids": ftok.encode(t).ids} for t in AWKWARD + SPECIAL],
        }
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(f"{family}: seed {seed}, margin {margin:.3f}, greedy {greedy}")


if __name__ == "__main__":
    main()
