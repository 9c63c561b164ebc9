"""Times one training step (ForwardBackward with the default GRPO loss + OptimStep) of the builtin model
on a random batch, and ComputeLogprobs on the same batch; prints one JSON line.
Usage: /usr/bin/python3 bench_step.py [--batch 16] [--seq 256] [--layers 2] [--d-model 128] ..."""

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from parley_engine import gen  # noqa: E402,F401
from parley_engine.engine import Engine  # noqa: E402
from parley.v1 import trainer_pb2 as pb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--default-allocator", action="store_true", help="leave glibc's allocator as it is (the engine tunes it)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps, after 2 warm-up steps")
    args = ap.parse_args()
    from parley_engine.allocator import tune_allocator
    tuned = False if args.default_allocator else tune_allocator()

    engine = Engine()
    config = {"layers": args.layers, "d_model": args.d_model, "heads": args.heads, "vocab_size": args.vocab,
              "max_len": args.seq, "num_threads": args.threads}
    info = engine.init(pb.InitRequest(model="builtin", config_json=json.dumps(config), seed=0))
    rng = random.Random(0)
    seqs = []
    for _ in range(args.batch):
        prompt = args.seq // 4
        seqs.append(pb.Sequence(
            token_ids=[rng.randrange(args.vocab) for _ in range(args.seq)],
            loss_mask=[0] * prompt + [1] * (args.seq - prompt),
            behaviour_logprobs=[-3.0] * args.seq,
            advantages=[rng.gauss(0, 1)] * args.seq))
    fb = pb.ForwardBackwardRequest(sequences=seqs, loss=pb.LossConfig(kind="ppo", dual_clip=3, kl_coef=0.001))
    lp = pb.ComputeLogprobsRequest(sequences=seqs)

    def timed(fn):
        start = time.perf_counter()
        fn()
        if info["device"] == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000

    def step():
        engine.forward_backward(fb)
        engine.optim_step(pb.OptimStepRequest(max_grad_norm=1.0))

    for _ in range(2):
        step()
    step_ms = [timed(step) for _ in range(args.steps)]
    logprob_ms = [timed(lambda: engine.compute_logprobs(lp)) for _ in range(args.steps)]
    tokens = args.batch * args.seq
    print(json.dumps({
        "bench": "trainer_engine_step", "device": info["device"], "torch": torch.__version__, "allocator_tuned": tuned,
        "threads": torch.get_num_threads(), "parameters": info["parameters"], "batch": args.batch, "seq": args.seq,
        "step_ms_median": round(statistics.median(step_ms), 1), "step_ms_min": round(min(step_ms), 1),
        "train_tokens_per_s": round(tokens / (statistics.median(step_ms) / 1000)),
        "logprobs_ms_median": round(statistics.median(logprob_ms), 1),
    }))


if __name__ == "__main__":
    main()
