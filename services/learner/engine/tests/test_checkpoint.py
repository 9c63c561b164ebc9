"""Checkpoints: a save/load round trip reproduces log-probs and the optimizer; versions are immutable,
the latest version is found, and mismatches fail with clear codes."""

import json
import os
import tempfile
import unittest

import support  # noqa: F401  (import path)

from parley_engine.engine import Engine
from parley_engine.errors import EngineError
from support import init_request, new_engine, pb, sequence

SEQS = [sequence([1, 5, 9, 3, 2, 7]), sequence([4, 4, 8, 1])]


def train_step(engine):
    engine.forward_backward(pb.ForwardBackwardRequest(sequences=SEQS, loss=pb.LossConfig(kind="sft")))
    return engine.optim_step(pb.OptimStepRequest(max_grad_norm=1.0))


def logprobs(engine):
    return engine.compute_logprobs(pb.ComputeLogprobsRequest(sequences=SEQS))


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.base = os.path.join(self.dir.name, "ckpt")

    def tearDown(self):
        self.dir.cleanup()

    def test_round_trip(self):
        a = new_engine(seed=1)
        for _ in range(3):
            train_step(a)
        path, size = a.save_weights(pb.SaveWeightsRequest(path=self.base, version=3))
        self.assertEqual(path, os.path.join(self.base, "v00000003"))
        self.assertGreater(size, 0)
        with open(os.path.join(path, "engine.json")) as f:
            self.assertEqual(json.load(f)["step"], 3)
        self.assertEqual([n for n in os.listdir(self.base)], ["v00000003"])  # no temporary left behind

        b = new_engine(seed=99)
        self.assertNotEqual(logprobs(a), logprobs(b))
        self.assertEqual(b.load_weights(pb.TrainerLoadWeightsRequest(path=path)), 3)
        self.assertEqual(logprobs(a), logprobs(b))
        # The optimizer's moments came along: the next update is the same too.
        self.assertEqual(train_step(a)[0], train_step(b)[0])
        self.assertEqual(logprobs(a), logprobs(b))

    def test_load_into_the_reference(self):
        a = new_engine(seed=1)
        for _ in range(3):
            train_step(a)
        path, _ = a.save_weights(pb.SaveWeightsRequest(path=self.base, version=3))
        b = new_engine(seed=99)
        before = logprobs(b)
        self.assertEqual(b.load_weights(pb.TrainerLoadWeightsRequest(path=path, reference=True)), 3)
        # The reference now scores like the saved policy; the policy, its step and optimizer are untouched.
        ref = b.compute_logprobs(pb.ComputeLogprobsRequest(sequences=SEQS, reference=True))
        self.assertEqual(ref, logprobs(a))
        self.assertEqual(logprobs(b), before)
        self.assertEqual(b.step, 0)

    def test_versions_are_immutable_and_latest_is_found(self):
        a = new_engine(seed=1)
        a.save_weights(pb.SaveWeightsRequest(path=self.base, version=2))
        train_step(a)
        a.save_weights(pb.SaveWeightsRequest(path=self.base, version=10))
        with self.assertRaises(EngineError) as ctx:
            a.save_weights(pb.SaveWeightsRequest(path=self.base, version=10))
        self.assertEqual(ctx.exception.code.name, "ALREADY_EXISTS")
        b = new_engine(seed=1)
        self.assertEqual(b.load_weights(pb.TrainerLoadWeightsRequest(path=self.base)), 10)
        self.assertEqual(b.step, 1)

    def test_errors(self):
        a = new_engine(seed=1)
        with self.assertRaises(EngineError) as ctx:
            a.load_weights(pb.TrainerLoadWeightsRequest(path=os.path.join(self.dir.name, "nothing")))
        self.assertEqual(ctx.exception.code.name, "NOT_FOUND")
        a.save_weights(pb.SaveWeightsRequest(path=self.base, version=1))
        wider = new_engine(seed=1, d_model=64)
        with self.assertRaises(EngineError) as ctx:
            wider.load_weights(pb.TrainerLoadWeightsRequest(path=self.base))
        self.assertEqual(ctx.exception.code.name, "FAILED_PRECONDITION")
        self.assertIn("d_model", ctx.exception.message)
        with self.assertRaises(EngineError) as ctx:
            a.save_weights(pb.SaveWeightsRequest(path=self.base, version=-1))
        self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT")

    def test_damaged_files_are_data_loss(self):
        """A bit flipped in the weights used to load as silently wrong (or NaN) weights."""
        a = new_engine(seed=1)
        train_step(a)
        path, _ = a.save_weights(pb.SaveWeightsRequest(path=self.base, version=1))
        meta_path = os.path.join(path, "engine.json")
        with open(meta_path) as f:
            doc = json.load(f)
        self.assertEqual(set(doc["files"]), {doc["weights"], doc["optimizer"]})
        pristine = {name: _read(os.path.join(path, name)) for name in (doc["weights"], doc["optimizer"], "engine.json")}
        b = new_engine(seed=2)

        def assert_data_loss(name, damaged):
            with open(os.path.join(path, name), "wb") as f:
                f.write(damaged)
            try:
                with self.assertRaises(EngineError) as ctx:
                    b.load_weights(pb.TrainerLoadWeightsRequest(path=path))
                self.assertEqual(ctx.exception.code.name, "DATA_LOSS", ctx.exception.message)
                self.assertIn(os.path.join(path, name), ctx.exception.message)
            finally:
                with open(os.path.join(path, name), "wb") as f:
                    f.write(pristine[name])

        for name in (doc["weights"], doc["optimizer"]):
            data = bytearray(pristine[name])
            data[len(data) // 2] ^= 0x40
            assert_data_loss(name, bytes(data))
            assert_data_loss(name, pristine[name][:-8])
        assert_data_loss("engine.json", pristine["engine.json"].replace(b'"step": 1', b'"step": 7'))
        assert_data_loss("engine.json", pristine["engine.json"][:50])
        self.assertEqual(b.step, 0)
        self.assertEqual(b.load_weights(pb.TrainerLoadWeightsRequest(path=path)), 1)
        self.assertEqual(logprobs(a), logprobs(b))
        # A checkpoint written before the checksums loads unchecked.
        del doc["files"], doc["sha256"]
        with open(meta_path, "w") as f:
            json.dump(doc, f)
        self.assertEqual(new_engine(seed=3).load_weights(pb.TrainerLoadWeightsRequest(path=path)), 1)

    def test_save_only_under_the_weights_root(self):
        root = os.path.join(self.dir.name, "run", "checkpoints")
        os.makedirs(root)
        os.symlink(self.dir.name, os.path.join(root, "escape"))
        engine = Engine(weights_root=root)
        engine.init(init_request(seed=1))
        elsewhere = os.path.join(self.dir.name, "elsewhere")
        for path in (elsewhere, os.path.join(root, "..", "weights"), os.path.join(root, "escape", "w"),
                     os.path.join(self.dir.name, "run", "checkpoints-2")):
            with self.assertRaises(EngineError) as ctx:
                engine.save_weights(pb.SaveWeightsRequest(path=path, version=1))
            self.assertEqual(ctx.exception.code.name, "PERMISSION_DENIED", ctx.exception.message)
            self.assertIn(f"path {path!r}", ctx.exception.message)
            self.assertFalse(os.path.exists(os.path.join(path, "v00000001")))
        self.assertFalse(os.path.exists(elsewhere))
        saved, _ = engine.save_weights(pb.SaveWeightsRequest(path=os.path.join(root, "weights"), version=1))
        self.assertEqual(saved, os.path.join(root, "weights", "v00000001"))
        engine.save_weights(pb.SaveWeightsRequest(path=root, version=2))
        # Loading reads only engine checkpoints (safetensors or weights-only torch.load): not limited.
        self.assertEqual(engine.load_weights(pb.TrainerLoadWeightsRequest(path=saved)), 1)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


if __name__ == "__main__":
    unittest.main()
