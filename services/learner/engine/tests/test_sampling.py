"""Sampling: the KV cache changes nothing for greedy decoding; log-probs match ComputeLogprobs; seeds,
top-p, stop tokens and the length limit behave."""

import unittest

import support  # noqa: F401  (import path)

from parley_engine.sampling import SampleParams, sample
from support import new_engine, pb, prompts, sequence

PROMPTS = ([1, 2, 3], [4], [5, 6, 7, 8, 9, 10], [11, 12])


class SamplingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Trained a little, so greedy paths are not all one token.
        cls.engine = new_engine(seed=2)
        req = pb.ForwardBackwardRequest(sequences=[sequence([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])],
                                        loss=pb.LossConfig(kind="sft"))
        for _ in range(20):
            cls.engine.forward_backward(req)
            cls.engine.optim_step(pb.OptimStepRequest(learning_rate=1e-2))

    def greedy(self, use_cache, stop=()):
        params = SampleParams(max_tokens=12, temperature=0.0, stop_token_ids=set(stop))
        return sample(self.engine.policy.eval(), PROMPTS, params, self.engine.max_len, use_cache=use_cache)

    def test_greedy_with_cache_equals_without(self):
        for stop in ((), (9,)):
            cached, plain = self.greedy(True, stop), self.greedy(False, stop)
            for a, b in zip(cached, plain):
                self.assertEqual(a.token_ids, b.token_ids)
                self.assertEqual(a.finish_reason, b.finish_reason)
                for x, y in zip(a.logprobs, b.logprobs):
                    self.assertAlmostEqual(x, y, places=4)
        self.assertIn("stop", [c.finish_reason for c in self.greedy(True, (9,))])

    def test_logprobs_match_compute_logprobs(self):
        res = self.engine.sample(pb.SampleRequest(prompts=prompts(*PROMPTS), temperature=1.0, max_tokens=8, seed=7))
        for prompt, c in zip(PROMPTS, res):
            full = self.engine.compute_logprobs(pb.ComputeLogprobsRequest(
                sequences=[pb.Sequence(token_ids=list(prompt) + c.token_ids)]))[0]
            for x, y in zip(c.logprobs, full[len(prompt):]):
                self.assertAlmostEqual(x, y, places=4)

    def test_seed_reproduces_and_top_p_tiny_is_greedy(self):
        req = pb.SampleRequest(prompts=prompts(*PROMPTS), temperature=1.0, max_tokens=8, seed=42)
        self.assertEqual([c.token_ids for c in self.engine.sample(req)], [c.token_ids for c in self.engine.sample(req)])
        nucleus = self.engine.sample(pb.SampleRequest(prompts=prompts(*PROMPTS), temperature=1.0, top_p=1e-6,
                                                      max_tokens=8, seed=1))
        self.assertEqual([c.token_ids for c in nucleus], [c.token_ids[:8] for c in self.greedy(True)])

    def test_prompt_seed_is_independent_of_the_batch(self):
        def run(*seeded):
            req = pb.SampleRequest(prompts=[pb.TokenLogprobsPrompt(token_ids=p, seed=s) for p, s in seeded],
                                   temperature=1.0, max_tokens=8, seed=99)
            return [list(c.token_ids) for c in self.engine.sample(req)]
        alone = run((PROMPTS[0], 5))[0]
        batched = run((PROMPTS[1], 6), (PROMPTS[0], 5), (PROMPTS[2], 7))
        self.assertEqual(batched[1], alone)
        # Different seeds give different streams (same prompt, 8 tokens each, 4 seeds).
        self.assertGreater(len({tuple(t) for t in run(*[(PROMPTS[0], s) for s in (1, 2, 3, 4)])}), 1)
        with self.assertRaises(Exception) as err:
            run((PROMPTS[0], -1))
        self.assertIn("prompts[0].seed", str(err.exception))

    def test_length_limit(self):
        long_prompt = list(range(1, 16)) * 2  # 30 of max_len 32
        res = self.engine.sample(pb.SampleRequest(prompts=prompts(long_prompt, [1]), temperature=1.0, max_tokens=10))
        self.assertEqual(len(res[0].token_ids), 2)
        self.assertEqual(res[0].finish_reason, "length")
        self.assertTrue(len(res[1].token_ids) == 10 or res[1].finish_reason == "stop")


if __name__ == "__main__":
    unittest.main()


class AlibiSamplingTest(SamplingTest):
    """The same guarantees with ALiBi positions (linear distance biases instead of learned positions)."""

    @classmethod
    def setUpClass(cls):
        cls.engine = new_engine(seed=2, positions="alibi")
        req = pb.ForwardBackwardRequest(sequences=[sequence([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])],
                                        loss=pb.LossConfig(kind="sft"))
        for _ in range(20):
            cls.engine.forward_backward(req)
            cls.engine.optim_step(pb.OptimStepRequest(learning_rate=1e-2))


class CopyHeadSamplingTest(SamplingTest):
    """The same guarantees with the copy head (its keys and source tokens live in the KV cache too)."""

    @classmethod
    def setUpClass(cls):
        cls.engine = new_engine(seed=2, positions="alibi", copy_head=True)
        req = pb.ForwardBackwardRequest(sequences=[sequence([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])],
                                        loss=pb.LossConfig(kind="sft"))
        for _ in range(20):
            cls.engine.forward_backward(req)
            cls.engine.optim_step(pb.OptimStepRequest(learning_rate=1e-2))
