"""SFT: masked cross-entropy falls when the engine trains on a fixed batch; masked tokens do not count."""

import random
import unittest

import support  # noqa: F401  (import path)

from support import new_engine, pb, sequence


class SftTest(unittest.TestCase):
    def test_sft_reduces_loss(self):
        engine = new_engine(seed=1)
        rng = random.Random(0)
        seqs = [sequence([rng.randrange(16) for _ in range(20)]) for _ in range(4)]
        req = pb.ForwardBackwardRequest(sequences=seqs, loss=pb.LossConfig(kind="sft"))
        losses = []
        for _ in range(30):
            losses.append(engine.forward_backward(req)["loss"])
            step, metrics = engine.optim_step(pb.OptimStepRequest(learning_rate=3e-3, max_grad_norm=1.0))
        self.assertEqual(step, 30)
        self.assertGreater(metrics["grad_norm"], 0.0)
        self.assertLess(losses[-1], 0.5 * losses[0])

    def test_masked_tokens_do_not_count(self):
        engine = new_engine(seed=1)
        ids = [3, 4, 5, 6, 7, 8]
        full = engine.forward_backward(pb.ForwardBackwardRequest(
            sequences=[sequence(ids, loss_mask=[0, 0, 0, 1, 1, 1])], loss=pb.LossConfig(kind="sft")))
        changed = engine.forward_backward(pb.ForwardBackwardRequest(
            sequences=[sequence(ids[:3] + [9] + ids[4:], loss_mask=[0, 0, 0, 0, 1, 1])],
            loss=pb.LossConfig(kind="sft")))
        lp = engine.compute_logprobs(pb.ComputeLogprobsRequest(sequences=[sequence(ids)]))[0]
        self.assertAlmostEqual(full["loss"], -sum(lp[3:]) / 3, places=5)
        self.assertEqual(changed["loss_tokens"], 2.0)


if __name__ == "__main__":
    unittest.main()
