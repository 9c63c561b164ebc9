"""Writes random LoRA adapters (peft format) of one base model at several ranks, on every linear layer, for
bench/vllm to time vLLM's adapter loads by size. Run with the engine's venv (.venv-engine):

    python bench/vllm/make_adapters.py BASE_DIR OUT_DIR RANK [RANK ...]

Writes OUT_DIR/r<RANK>/ for each rank and prints one JSON line per adapter: {"rank", "dir", "bytes"}."""

import json
import os
import sys

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main(argv) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base, out, ranks = argv[0], argv[1], [int(r) for r in argv[2:]]
    for rank in ranks:
        torch.manual_seed(rank)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        # Random A and B (peft's default B = 0 would make an adapter that changes nothing).
        cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, init_lora_weights=False)
        folder = os.path.join(out, f"r{rank}")
        get_peft_model(model, cfg).save_pretrained(folder)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(json.dumps({"rank": rank, "dir": folder, "bytes": size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
