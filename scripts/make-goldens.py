#!/usr/bin/env python3
"""Write golden MiniLM embeddings with the reference implementation.

Run by hand once (not in CI) after scripts/fetch-fixtures.sh:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch sentence-transformers
    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/make-goldens.py \
        ~/.cache/qloader/all-minilm-l6-v2 crates/qloader-models/tests/data/minilm_goldens.json

It loads the same files QLoader reads with sentence-transformers (which runs
Hugging Face transformers' BertModel, mean pooling and L2 normalisation) and
writes each sentence's embedding, so the Rust test compares against an
independent implementation of the model.
"""
import hashlib
import json
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Quantization reduces the number of bits used to store each weight.",
    "hello",
    "Hello!",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "The stock market fell sharply on Tuesday after the central bank raised interest rates by 0.75%.",
    "Ich habe heute keine Zeit, weil ich arbeiten muss.",
    "Le café est très chaud ce matin.",
    "東京は日本の首都です。",
    "I love this! 😀 Best day ever!!!",
    "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Call me at +1 (555) 010-9999 or email jane.doe@example.com before 5pm.",
    "The mitochondria is the powerhouse of the cell.",
    "UNBELIEVABLE RESULTS IN THE FINAL MINUTES OF THE MATCH",
    "   leading and trailing spaces   ",
    "a",
    "Photosynthesis converts light energy into chemical energy stored in glucose, "
    "releasing oxygen as a by-product; it takes place mainly in the chloroplasts of plant leaves.",
    # Longer than the model's max_seq_length (256 tokens): pins truncation.
    " ".join(["The committee reviewed every proposal in detail before voting."] * 30),
]


def main() -> None:
    model_dir, out_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    model = SentenceTransformer(model_dir, device="cpu")
    with open(f"{model_dir}/model.safetensors", "rb") as f:
        weights_sha = hashlib.sha256(f.read()).hexdigest()
    embeddings = model.encode(
        SENTENCES, batch_size=1, convert_to_numpy=True, normalize_embeddings=False
    )
    tokens = [len(model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"]) for s in SENTENCES]
    doc = {
        "generator": "scripts/make-goldens.py",
        "reference": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "model_safetensors_sha256": weights_sha,
        "max_seq_length": model.max_seq_length,
        "cases": [
            {"sentence": s, "tokens": n, "embedding": [float(v) for v in e]}
            for s, n, e in zip(SENTENCES, tokens, embeddings)
        ],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
