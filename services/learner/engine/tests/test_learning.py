"""The builtin model learns a tiny sequence task from synthetic rewards with GRPO-style advantages,
driven only through Sample, ForwardBackward (two micro-batches, two PPO epochs) and OptimStep."""

import json
import statistics
import unittest

import support  # noqa: F401  (import path)

from parley_engine.engine import Engine
from support import pb, prompts

STOP = 0
PROMPTS = [[1, a] for a in range(2, 10)]
GROUP = 8


def reward(prompt, completion) -> float:
    """Half for answering a with 17 - a, half for then ending with the stop token."""
    tokens = list(completion.token_ids)
    return 0.5 * (tokens[:1] == [17 - prompt[1]]) + 0.5 * (tokens[1:] == [STOP])


def grpo_sequences(batch, completions, rewards):
    seqs = []
    for start in range(0, len(batch), GROUP):
        group = rewards[start:start + GROUP]
        mean, std = statistics.mean(group), statistics.pstdev(group)
        for i in range(start, start + GROUP):
            prompt, c = batch[i], completions[i]
            advantage = (rewards[i] - mean) / (std + 1e-6)
            n = len(prompt) + len(c.token_ids)
            seqs.append(pb.Sequence(
                token_ids=prompt + list(c.token_ids),
                loss_mask=[0] * len(prompt) + [1] * len(c.token_ids),
                behaviour_logprobs=[0.0] * len(prompt) + list(c.logprobs),
                advantages=[advantage] * n))
    return seqs


class LearningTest(unittest.TestCase):
    def greedy_reward(self, engine) -> float:
        res = engine.sample(pb.SampleRequest(prompts=prompts(*PROMPTS), temperature=0, max_tokens=3,
                                             stop_token_ids=[STOP]))
        return statistics.mean(reward(p, c) for p, c in zip(PROMPTS, res))

    def test_grpo_improves_reward(self):
        engine = Engine()
        config = {"layers": 2, "d_model": 64, "heads": 4, "max_len": 16, "vocab_size": 16, "lr": 1e-3,
                  "warmup_steps": 5, "total_steps": 150, "min_lr_ratio": 0.3}
        engine.init(pb.InitRequest(model="builtin", config_json=json.dumps(config), seed=0))
        before = self.greedy_reward(engine)
        loss = pb.LossConfig(kind="ppo", clip_low=0.2, clip_high=0.2, dual_clip=3, kl_coef=0.001)
        sampled, clip_seen = [], 0.0
        for step in range(150):
            batch = [p for p in PROMPTS for _ in range(GROUP)]
            res = engine.sample(pb.SampleRequest(prompts=prompts(*batch), temperature=1.0, max_tokens=3,
                                                 stop_token_ids=[STOP], seed=step + 1))
            rewards = [reward(p, c) for p, c in zip(batch, res)]
            sampled.append(statistics.mean(rewards))
            seqs = grpo_sequences(batch, res, rewards)
            half = len(seqs) // 2
            for _epoch in range(2):
                for micro in (seqs[:half], seqs[half:]):
                    m = engine.forward_backward(pb.ForwardBackwardRequest(sequences=micro, loss=loss, loss_scale=0.5))
                    clip_seen = max(clip_seen, m["clip_frac"])
                engine.optim_step(pb.OptimStepRequest(max_grad_norm=1.0))
        after = self.greedy_reward(engine)
        self.assertLessEqual(before, 0.25)
        self.assertGreaterEqual(after, 0.9, f"greedy reward {before} -> {after}")
        self.assertGreater(statistics.mean(sampled[-10:]), statistics.mean(sampled[:10]) + 0.4)
        self.assertGreater(clip_seen, 0.0)  # the second epoch moved the ratio off 1 and clipping engaged
        self.assertEqual(engine.step, 300)


if __name__ == "__main__":
    unittest.main()
