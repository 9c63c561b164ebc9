"""Bad input gets INVALID_ARGUMENT with a message naming the field, and leaves the engine as it was."""

import json
import unittest

import support  # noqa: F401  (import path)

from parley_engine.engine import Engine
from parley_engine.errors import EngineError
from support import new_engine, pb, prompts, sequence

GOOD = sequence([1, 2, 3], advantages=[1.0, 1.0, 1.0])


def fb(*seqs, **loss):
    return pb.ForwardBackwardRequest(sequences=list(seqs), loss=pb.LossConfig(**loss))


class ValidationTest(unittest.TestCase):
    def assertInvalid(self, call, request, field):
        with self.assertRaises(EngineError) as ctx:
            call(request)
        self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT", ctx.exception.message)
        self.assertIn(field, ctx.exception.message)

    def test_forward_backward(self):
        engine = new_engine()
        cases = [
            (fb(), "sequences is empty"),
            (fb(GOOD, pb.Sequence()), "sequences[1].token_ids is empty"),
            (fb(GOOD, sequence([1, 2, 16])), "sequences[1].token_ids contains 16"),
            (fb(sequence(list(range(1, 16)) * 3)), "sequences[0].token_ids has 45 tokens"),
            (fb(pb.Sequence(token_ids=[1, 2], loss_mask=[1, 1], behaviour_logprobs=[0, 0])), "sequences[0].advantages"),
            (fb(sequence([1, 2], advantages=[0.0])), "sequences[0].advantages has 1 entries"),
            (fb(sequence([1, 2], loss_mask=[0, 2])), "sequences[0].loss_mask must hold only 0 and 1"),
            (fb(sequence([1, 2], loss_mask=[1, 0])), "no token has loss_mask 1"),
            (fb(sequence([1, 2], advantages=[0.0, float("nan")])), "sequences[0].advantages contains a non-finite"),
            (fb(GOOD, kind="dpo"), "loss.kind"),
            (pb.ForwardBackwardRequest(sequences=[GOOD], loss_scale=-1), "loss_scale"),
        ]
        for request, field in cases:
            self.assertInvalid(engine.forward_backward, request, field)
        self.assertEqual(engine.pending_micro_batches, 0)
        # SFT needs no advantages or log-probs.
        engine.forward_backward(fb(pb.Sequence(token_ids=[1, 2, 3], loss_mask=[0, 1, 1]), kind="sft"))
        self.assertEqual(engine.pending_micro_batches, 1)

    def test_absurd_values_are_refused(self):
        """A forged batch (advantages of 1e30, log-probs of +40) or a learning rate of 1e30 names the field
        and what is accepted, and changes nothing."""
        engine = new_engine()
        cases = [
            (fb(sequence([1, 2, 3], advantages=[0.0, 1e30, 1.0])), "sequences[0].advantages[1] is 1e+30"),
            (fb(sequence([1, 2, 3], advantages=[0.0, -2e4, 1.0])), "within ±10000"),
            (fb(GOOD, sequence([1, 2, 3], behaviour=[0.0, -1.0, 40.0])), "sequences[1].behaviour_logprobs[2] is 40"),
            (fb(sequence([1, 2, 3], old=[0.0, 0.5, -1.0])), "sequences[0].old_logprobs[1] is 0.5; log-probs must be <= 0"),
            (fb(sequence([1, 2], behaviour=[0.0, float("-inf")])), "sequences[0].behaviour_logprobs contains a non-finite"),
            (pb.ForwardBackwardRequest(sequences=[GOOD], loss_scale=float("inf")), "loss_scale"),
        ]
        for request, field in cases:
            self.assertInvalid(engine.forward_backward, request, field)
        self.assertEqual(engine.pending_micro_batches, 0)
        # A log-prob a rounding error above 0 (a near-certain token in float32) is a log-prob.
        engine.forward_backward(fb(sequence([1, 2, 3], behaviour=[0.0, 5e-7, -1.0], advantages=[1.0] * 3)))
        for request, field in [
            (pb.OptimStepRequest(learning_rate=1e30), "learning_rate must be in (0, 1]"),
            (pb.OptimStepRequest(learning_rate=float("nan")), "learning_rate"),
            (pb.OptimStepRequest(learning_rate=-1e-3), "learning_rate"),
            (pb.OptimStepRequest(max_grad_norm=float("inf")), "max_grad_norm must be finite"),
            (pb.OptimStepRequest(max_grad_norm=-1), "max_grad_norm"),
        ]:
            self.assertInvalid(engine.optim_step, request, field)
        self.assertEqual((engine.step, engine.pending_micro_batches), (0, 1))
        self.assertEqual(engine.optim_step(pb.OptimStepRequest(learning_rate=1.0))[0], 1)
        self.assertInvalid(Engine().init, pb.InitRequest(config_json='{"lr": 1e30}'), "config_json.lr must be <= 1")

    def test_sample(self):
        engine = new_engine()
        cases = [
            (pb.SampleRequest(max_tokens=4), "prompts is empty"),
            (pb.SampleRequest(prompts=prompts([1]), max_tokens=0), "max_tokens"),
            (pb.SampleRequest(prompts=prompts([1], []), max_tokens=2), "prompts[1].token_ids is empty"),
            (pb.SampleRequest(prompts=prompts([1]), max_tokens=2, temperature=-1), "temperature"),
            (pb.SampleRequest(prompts=prompts([1]), max_tokens=2, top_p=1.5), "top_p"),
            (pb.SampleRequest(prompts=prompts([1]), max_tokens=2, stop_token_ids=[99]), "stop_token_ids"),
            (pb.SampleRequest(prompts=prompts([1] * 32), max_tokens=2), "prompts[0].token_ids has 32 tokens"),
        ]
        for request, field in cases:
            self.assertInvalid(engine.sample, request, field)

    def test_init(self):
        engine = Engine()
        cases = [
            ('{"layer": 2}', "unknown field(s) ['layer']"),
            ('{"d_model": 30, "heads": 4}', "config_json.d_model (30) must be divisible"),
            ('{"lr": -1}', "config_json.lr"),
            ('[1]', "config_json must be a JSON object"),
            ('{"lora": {"r": 0}}', "config_json.lora.r"),
        ]
        for config, field in cases:
            self.assertInvalid(engine.init, pb.InitRequest(config_json=config), field)
        self.assertInvalid(engine.init, pb.InitRequest(config_json=json.dumps({"seed": 1}), seed=2), "seed")
        self.assertIsNone(engine.policy)

    def test_a_failed_forward_backward_aborts_the_step(self):
        engine = new_engine()
        engine.forward_backward(fb(GOOD))
        real_forward = engine.policy.forward

        def broken(*args, **kwargs):
            raise RuntimeError("simulated device failure")

        engine.policy.forward = broken
        with self.assertRaises(RuntimeError):
            engine.forward_backward(fb(GOOD))
        engine.policy.forward = real_forward
        self.assertTrue(all(p.grad is None for p in engine.policy.parameters()))
        codes = []
        for _ in range(2):
            with self.assertRaises(EngineError) as ctx:
                engine.optim_step(pb.OptimStepRequest())
            codes.append(ctx.exception.code.name)
        self.assertEqual(codes, ["ABORTED", "FAILED_PRECONDITION"])
        engine.forward_backward(fb(GOOD))
        self.assertEqual(engine.optim_step(pb.OptimStepRequest())[0], 1)

    def test_calls_before_init_fail_with_failed_precondition(self):
        engine = Engine()
        calls = [
            (engine.forward_backward, fb(GOOD)),
            (engine.optim_step, pb.OptimStepRequest()),
            (engine.compute_logprobs, pb.ComputeLogprobsRequest(sequences=[GOOD])),
            (engine.save_weights, pb.SaveWeightsRequest(path="/tmp/x", version=1)),
            (engine.load_weights, pb.TrainerLoadWeightsRequest(path="/tmp/x")),
            (engine.sample, pb.SampleRequest(prompts=prompts([1]), max_tokens=1)),
        ]
        for call, request in calls:
            with self.assertRaises(EngineError) as ctx:
                call(request)
            self.assertEqual(ctx.exception.code.name, "FAILED_PRECONDITION")


if __name__ == "__main__":
    unittest.main()
