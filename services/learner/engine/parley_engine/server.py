"""The gRPC face of the engine: parley.v1.Trainer over one Engine (calls serialised by a TurnLock that
lets weight changes go before waiting Sample calls) and
grpc.health.v1.Health for probes; EngineError becomes its status code, anything else INTERNAL. A request
over the size limits (limits.py) is refused before it waits for the lock."""

import logging
import threading
import time
from concurrent import futures
from typing import Callable, Optional, Tuple

import grpc
import torch

from . import gen  # noqa: F401  (puts the generated packages on sys.path)
from .engine import Engine
from .errors import EngineError
from .limits import DEFAULT_MAX_MESSAGE_BYTES
from .turn_lock import TurnLock
from grpc_health.v1 import health_pb2, health_pb2_grpc
from parley.v1 import trainer_pb2 as pb
from parley.v1 import trainer_pb2_grpc as pb_grpc

log = logging.getLogger("parley_engine")

SERVICE_NAME = "parley.v1.Trainer"
_OOM = tuple(t for t in (getattr(torch.cuda, "OutOfMemoryError", None),) if t is not None)


class TrainerService(pb_grpc.TrainerServicer):
    def __init__(self, engine: Optional[Engine] = None):
        self.engine = engine or Engine()
        self._lock = TurnLock()
        self._in_flight = 0
        self._counting = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Calls started and not yet answered (waiting for the lock or running)."""
        return self._in_flight

    def _call(self, method: str, context, work: Callable[[], object], summary: str = "", request=None):
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        with self._counting:
            self._in_flight += 1
        try:
            if request is not None:
                self.engine.admit(method, request)
            # Sampling waits for anything that changes the weights (LoadWeights above all, on a policy's engine).
            with self._lock.hold(priority=method != "Sample"):
                return work()
        except EngineError as e:
            code, message = e.code, e.message
        except _OOM as e:
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of accelerator memory: {e}; send a smaller batch"
        except Exception as e:  # the service keeps serving; the caller gets the cause
            log.exception("%s failed", method)
            code, message = grpc.StatusCode.INTERNAL, f"{method} failed: {type(e).__name__}: {e}"
        finally:
            with self._counting:
                self._in_flight -= 1
            ms = (time.perf_counter() - started) * 1000
            log.debug("%s %s %.1f ms %s", method, code.name, ms, summary)
        context.abort(code, message)

    def Init(self, request, context):
        def work():
            info = self.engine.init(request)
            return pb.InitResponse(parameters=info["parameters"], device=info["device"], vocab_size=info["vocab_size"])
        return self._call("Init", context, work, f"model={request.model or 'builtin'}")

    def ForwardBackward(self, request, context):
        def work():
            return pb.ForwardBackwardResponse(metrics=self.engine.forward_backward(request))
        return self._call("ForwardBackward", context, work, f"sequences={len(request.sequences)}", request)

    def OptimStep(self, request, context):
        def work():
            step, metrics = self.engine.optim_step(request)
            return pb.OptimStepResponse(step=step, metrics=metrics)
        return self._call("OptimStep", context, work)

    def ComputeLogprobs(self, request, context):
        def work():
            rows = self.engine.compute_logprobs(request)
            return pb.ComputeLogprobsResponse(sequences=[pb.TokenLogprobs(logprobs=r) for r in rows])
        return self._call("ComputeLogprobs", context, work, f"sequences={len(request.sequences)}", request)

    def SaveWeights(self, request, context):
        def work():
            path, size = self.engine.save_weights(request)
            return pb.SaveWeightsResponse(path=path, bytes=size)
        return self._call("SaveWeights", context, work, f"version={request.version}")

    def LoadWeights(self, request, context):
        def work():
            return pb.TrainerLoadWeightsResponse(version=self.engine.load_weights(request))
        return self._call("LoadWeights", context, work, f"path={request.path}")

    def Sample(self, request, context):
        def work():
            completions = self.engine.sample(request)
            return pb.SampleResponse(completions=[
                pb.SampleCompletion(token_ids=c.token_ids, logprobs=c.logprobs, finish_reason=c.finish_reason)
                for c in completions])
        return self._call("Sample", context, work, f"prompts={len(request.prompts)}", request)


class HealthService(health_pb2_grpc.HealthServicer):
    """Check answers for "" (the whole server) and parley.v1.Trainer; Watch streams changes."""

    def __init__(self, in_flight: Callable[[], int] = lambda: 0):
        self._serving = True
        self._changed = threading.Condition()
        self.in_flight = in_flight  # the Trainer calls still running, for stop()

    def set_serving(self, serving: bool) -> None:
        with self._changed:
            self._serving = serving
            self._changed.notify_all()

    def _status(self):
        S = health_pb2.HealthCheckResponse
        return S.SERVING if self._serving else S.NOT_SERVING

    def Check(self, request, context):
        if request.service not in ("", SERVICE_NAME):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self._status())

    def Watch(self, request, context):
        if request.service not in ("", SERVICE_NAME):
            yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            return
        last = None
        while context.is_active():
            status = self._status()
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            with self._changed:
                self._changed.wait(timeout=1.0)


def start(host: str = "127.0.0.1", port: int = 0, engine: Optional[Engine] = None, workers: int = 8,
          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Tuple[grpc.Server, int, HealthService]:
    """Starts serving and returns (server, bound port, health). A message over max_message_bytes, either
    way, fails with RESOURCE_EXHAUSTED. Raises RuntimeError when the address cannot be bound."""
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               ("grpc.so_reuseport", 0)]  # a port already in use must fail, not be shared
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    trainer = TrainerService(engine)
    pb_grpc.add_TrainerServicer_to_server(trainer, server)
    health = HealthService(lambda: trainer.in_flight)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"{host}:{port}")  # raises RuntimeError on failure (grpcio >= 1.49)
    if bound == 0:  # older grpcio reports failure as port 0
        raise RuntimeError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound, health


def stop(server: grpc.Server, health: HealthService, grace_s: float = 10.0) -> int:
    """Reports NOT_SERVING, lets in-flight calls finish for up to grace_s, then cancels them. Returns how
    many calls are still running (their answers are cancelled, but a step's tensor work cannot be
    interrupted: a process that must end exits without waiting for them, see __main__)."""
    health.set_serving(False)
    server.stop(grace_s).wait()
    return health.in_flight()
