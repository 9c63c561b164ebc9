"""gRPC on a real port: status codes (FAILED_PRECONDITION before Init, INVALID_ARGUMENT naming the field),
a training round trip, health checks; and the command line (exit 2 without torch, clean SIGTERM)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import support  # noqa: F401  (import path)
import grpc

from grpc_health.v1 import health_pb2, health_pb2_grpc
from parley.v1 import trainer_pb2_grpc
from parley_engine import server
from support import ENGINE_ROOT, init_request, pb, prompts, sequence


class GrpcTest(unittest.TestCase):
    def setUp(self):
        self.server, port, self.health = server.start("127.0.0.1", 0)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.trainer = trainer_pb2_grpc.TrainerStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def tearDown(self):
        self.channel.close()
        server.stop(self.server, self.health, grace_s=1)

    def assertCode(self, code, call, *args, contains=""):
        with self.assertRaises(grpc.RpcError) as ctx:
            call(*args, timeout=30)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertIn(contains, ctx.exception.details())
        return ctx.exception.details()

    def test_round_trip_and_errors(self):
        seqs = [sequence([1, 2, 3, 4], advantages=[1.0] * 4), sequence([5, 6, 7], advantages=[-1.0] * 3)]
        fb = pb.ForwardBackwardRequest(sequences=seqs, loss=pb.LossConfig(kind="ppo"))
        self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, self.trainer.ForwardBackward, fb, contains="Init")
        self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, self.trainer.Sample,
                        pb.SampleRequest(prompts=prompts([1]), max_tokens=2))

        info = self.trainer.Init(init_request(seed=1), timeout=30)
        self.assertEqual((info.device, info.vocab_size), ("cpu", 16))
        self.assertGreater(info.parameters, 1000)

        metrics = self.trainer.ForwardBackward(fb, timeout=30).metrics
        self.assertEqual(metrics["loss_tokens"], 5.0)
        for key in ("loss", "pg_loss", "entropy", "clip_frac", "approx_kl", "tokens", "tokens_per_s"):
            self.assertIn(key, metrics)
        step = self.trainer.OptimStep(pb.OptimStepRequest(max_grad_norm=1.0), timeout=30)
        self.assertEqual(step.step, 1)
        self.assertIn("grad_norm", step.metrics)
        self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, self.trainer.OptimStep, pb.OptimStepRequest())

        bad = pb.ForwardBackwardRequest(sequences=[seqs[0], pb.Sequence(token_ids=[1, 2], loss_mask=[1],
                                                                        behaviour_logprobs=[0, 0], advantages=[0, 0])])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.trainer.ForwardBackward, bad,
                        contains="sequences[1].loss_mask")
        too_big = pb.ComputeLogprobsRequest(sequences=[pb.Sequence(token_ids=[1, 99])])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.trainer.ComputeLogprobs, too_big,
                        contains="sequences[0].token_ids")
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.trainer.Init,
                        pb.InitRequest(config_json='{"layers": "two"}'), contains="config_json.layers")
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.trainer.Init,
                        pb.InitRequest(model="some-org/some-model"), contains="model 'some-org/some-model'")

        # The engine kept serving and kept its state through the errors.
        lp = self.trainer.ComputeLogprobs(pb.ComputeLogprobsRequest(sequences=seqs), timeout=30)
        self.assertEqual([len(s.logprobs) for s in lp.sequences], [4, 3])
        sample = pb.SampleRequest(prompts=prompts([1, 2], [3]), temperature=0.7, max_tokens=4, seed=3)
        out = self.trainer.Sample(sample, timeout=30)
        self.assertEqual([len(c.token_ids) for c in out.completions], [4, 4])
        self.assertEqual({c.finish_reason for c in out.completions}, {"length"})
        with tempfile.TemporaryDirectory() as tmp:
            saved = self.trainer.SaveWeights(pb.SaveWeightsRequest(path=tmp, version=7), timeout=30)
            self.assertGreater(saved.bytes, 0)
            loaded = self.trainer.LoadWeights(pb.TrainerLoadWeightsRequest(path=saved.path), timeout=30)
            self.assertEqual(loaded.version, 7)

    def test_health(self):
        ok = health_pb2.HealthCheckResponse.SERVING
        for service in ("", "parley.v1.Trainer"):
            res = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(res.status, ok)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.health_stub.Check,
                        health_pb2.HealthCheckRequest(service="nope"))
        watch = self.health_stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        self.assertEqual(next(watch).status, ok)
        watch.cancel()


class CommandLineTest(unittest.TestCase):
    def test_exits_2_without_torch(self):
        code = ("import sys; sys.modules['torch'] = None; from parley_engine.__main__ import main; "
                "sys.exit(main(['serve', '--port', '0']))")
        proc = subprocess.run([sys.executable, "-c", code], cwd=ENGINE_ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(f"PyTorch is not installed for {sys.executable}", proc.stderr)

    def test_serves_and_stops_on_sigterm(self):
        proc = subprocess.Popen([sys.executable, "-m", "parley_engine", "serve", "--port", "0"], cwd=ENGINE_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = json.loads(proc.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{ready['port']}") as channel:
                res = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                self.assertEqual(res.status, health_pb2.HealthCheckResponse.SERVING)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()

    def test_sigterm_during_a_step_exits_after_the_grace(self):
        """A ForwardBackward that never ends (a stand-in for a huge one inside torch) does not keep the
        process alive past --grace-s after SIGTERM."""
        code = ("import sys, threading; from parley_engine.engine import Engine; "
                "Engine.forward_backward = lambda self, req: print('in step', flush=True) or threading.Event().wait(); "
                "from parley_engine.__main__ import main; "
                "sys.exit(main(['serve', '--port', '0', '--grace-s', '1']))")
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ENGINE_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = json.loads(proc.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{ready['port']}") as channel:
                trainer = trainer_pb2_grpc.TrainerStub(channel)
                trainer.Init(init_request(), timeout=60)
                step = trainer.ForwardBackward.future(
                    pb.ForwardBackwardRequest(sequences=[sequence([1, 2, 3], advantages=[1.0] * 3)]), timeout=120)
                self.assertEqual(proc.stdout.readline().strip(), "in step")
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=30), 0)
                with self.assertRaises(grpc.RpcError):
                    step.result(timeout=30)
            self.assertIn("1 call(s) still running", proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
