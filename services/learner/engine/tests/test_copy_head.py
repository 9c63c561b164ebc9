"""The copy head: its output is a normalised distribution, and with it the builtin model copies a token
it never saw in training, which the same model without it does not learn in the same steps."""

import json
import random
import unittest

import torch

import support  # noqa: F401  (import path)

from parley_engine.engine import Engine
from support import pb, prompts

MARK, STOP = 1, 2
SEEN = list(range(3, 40))  # values in training
UNSEEN = list(range(40, 48))  # values only in the test


def example(rng: random.Random, value: int):
    """`noise.. MARK value noise.. MARK` -> `value STOP`: repeat the token that followed the first MARK."""
    noise = [rng.choice(SEEN) for _ in range(rng.randint(0, 3))]
    more = [rng.choice(SEEN) for _ in range(rng.randint(0, 3))]
    return noise + [MARK, value] + more + [MARK], [value, STOP]


def train(copy_head: bool, steps: int = 150) -> Engine:
    engine = Engine()
    config = {"layers": 2, "d_model": 64, "heads": 4, "max_len": 16, "vocab_size": 48, "lr": 3e-3,
              "positions": "alibi", "copy_head": copy_head, "warmup_steps": 10}
    engine.init(pb.InitRequest(model="builtin", config_json=json.dumps(config), seed=0))
    rng = random.Random(0)
    for _ in range(steps):
        seqs = []
        for _ in range(16):
            prompt, answer = example(rng, rng.choice(SEEN))
            seqs.append(pb.Sequence(token_ids=prompt + answer, loss_mask=[0] * len(prompt) + [1] * len(answer),
                                    advantages=[0.0] * (len(prompt) + len(answer))))
        engine.forward_backward(pb.ForwardBackwardRequest(sequences=seqs, loss=pb.LossConfig(kind="sft")))
        engine.optim_step(pb.OptimStepRequest())
    return engine


def unseen_accuracy(engine: Engine) -> float:
    rng = random.Random(1)
    cases = [example(rng, v) for v in UNSEEN for _ in range(4)]
    res = engine.sample(pb.SampleRequest(prompts=prompts(*[p for p, _ in cases]), temperature=0, max_tokens=2,
                                         stop_token_ids=[STOP]))
    return sum(list(c.token_ids) == a for (_, a), c in zip(cases, res)) / len(cases)


class CopyHeadTest(unittest.TestCase):
    def test_output_is_a_distribution(self):
        engine = Engine()
        engine.init(pb.InitRequest(model="builtin", config_json=json.dumps(
            {"vocab_size": 32, "max_len": 16, "d_model": 32, "heads": 2, "copy_head": True}), seed=3))
        ids = torch.randint(0, 32, (3, 10))
        with torch.no_grad():
            logp = engine.policy(ids)
        self.assertTrue(torch.allclose(logp.exp().sum(-1), torch.ones(3, 10), atol=1e-4))

    def test_copies_unseen_tokens(self):
        with_copy, without = unseen_accuracy(train(True)), unseen_accuracy(train(False))
        self.assertGreaterEqual(with_copy, 0.9, f"copy head copied {with_copy:.2f} of unseen values")
        self.assertLess(without, with_copy)


if __name__ == "__main__":
    unittest.main()
