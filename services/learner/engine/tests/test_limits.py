"""Request size limits: too many tokens is INVALID_ARGUMENT naming the field and the limit, answered
before the request waits for the engine lock; a message over the gRPC limit is RESOURCE_EXHAUSTED."""

import threading
import unittest

import support  # noqa: F401  (import path)
import grpc

from parley.v1 import trainer_pb2_grpc
from parley_engine import limits, server
from parley_engine.engine import Engine
from parley_engine.errors import EngineError
from support import init_request, new_engine, pb, prompts, sequence


class TokenLimitTest(unittest.TestCase):
    def test_default_follows_max_len(self):
        self.assertEqual(limits.token_limit(0, 512), 131072)
        self.assertEqual(limits.token_limit(0, 40960), 1 << 20)
        self.assertEqual(limits.token_limit(0, None), 1 << 20)
        self.assertEqual(limits.token_limit(100, 512), 100)

    def test_requests_over_the_limit_name_the_field(self):
        engine = new_engine()  # max_len 32: 256 × 32 = 8192 tokens a request
        big = [sequence(list(range(1, 16)) * 2)] * 274  # 30 tokens each: 8220
        cases = [
            ("ForwardBackward", pb.ForwardBackwardRequest(sequences=big), "sequences: 274 sequences hold 8220 tokens; at most 8192"),
            ("ComputeLogprobs", pb.ComputeLogprobsRequest(sequences=big), "at most 8192 per request (--max-request-tokens)"),
            # 300 prompts × (1 + max_tokens cut at max_len - 1 = 31) = 9600, though each prompt fits.
            ("Sample", pb.SampleRequest(prompts=prompts(*[[1]] * 300), max_tokens=1 << 30), "prompts: 300 prompts"),
        ]
        for method, request, message in cases:
            with self.assertRaises(EngineError) as ctx:
                engine.admit(method, request)
            self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT")
            self.assertIn(message, ctx.exception.message)
        engine.admit("ForwardBackward", pb.ForwardBackwardRequest(sequences=big[:273]))
        engine.admit("Sample", pb.SampleRequest(prompts=prompts(*[[1]] * 256), max_tokens=1 << 30))

    def test_configured_limit(self):
        engine = Engine(max_request_tokens=5)
        engine.init(init_request())
        with self.assertRaises(EngineError) as ctx:
            engine.admit("ComputeLogprobs", pb.ComputeLogprobsRequest(sequences=[sequence([1, 2, 3])] * 2))
        self.assertIn("6 tokens; at most 5", ctx.exception.message)
        engine.admit("ComputeLogprobs", pb.ComputeLogprobsRequest(sequences=[sequence([1, 2, 3, 4, 5])]))


class ServerLimitTest(unittest.TestCase):
    def setUp(self):
        self.engine = Engine()
        self.server, port, self.health = server.start("127.0.0.1", 0, self.engine, max_message_bytes=64 * 1024)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.trainer = trainer_pb2_grpc.TrainerStub(self.channel)
        self.trainer.Init(init_request(), timeout=60)

    def tearDown(self):
        self.channel.close()
        server.stop(self.server, self.health, grace_s=1)

    def test_an_oversized_request_does_not_wait_for_the_lock(self):
        busy = threading.Event()
        release = threading.Event()
        engine = self.engine
        real = engine.compute_logprobs

        def slow(req):
            busy.set()
            release.wait(60)
            return real(req)

        engine.compute_logprobs = slow
        holder = self.trainer.ComputeLogprobs.future(pb.ComputeLogprobsRequest(sequences=[sequence([1, 2])]), timeout=60)
        try:
            self.assertTrue(busy.wait(30))
            big = pb.ComputeLogprobsRequest(sequences=[pb.Sequence(token_ids=[1] * 30)] * 300)
            with self.assertRaises(grpc.RpcError) as ctx:
                self.trainer.ComputeLogprobs(big, timeout=20)  # the lock is held until release
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, ctx.exception.details())
            self.assertIn("at most 8192", ctx.exception.details())
        finally:
            release.set()
        self.assertEqual(len(holder.result(timeout=60).sequences), 1)

    def test_a_message_over_the_limit_is_resource_exhausted(self):
        big = pb.ComputeLogprobsRequest(sequences=[pb.Sequence(token_ids=[15] * 20_000)] * 4)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.trainer.ComputeLogprobs(big, timeout=30)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, ctx.exception.details())


if __name__ == "__main__":
    unittest.main()
