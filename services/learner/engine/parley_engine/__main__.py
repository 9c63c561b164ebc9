"""Command line: `python3 -m parley_engine serve --port N [--host 127.0.0.1]`. Exits 2 when PyTorch or
grpcio is missing, 1 when the port cannot be bound, 0 after SIGTERM/SIGINT: in-flight calls get
--grace-s to finish, then the process exits without waiting for a step still running; a second signal
exits at once."""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time


class _JsonFormatter(logging.Formatter):
    """One JSON object a line on stderr, shaped like the TypeScript services' pino logs."""

    LEVELS = {"DEBUG": 20, "INFO": 30, "WARNING": 40, "ERROR": 50, "CRITICAL": 60}

    def format(self, record: logging.LogRecord) -> str:
        doc = {"level": self.LEVELS.get(record.levelname, 30), "time": int(record.created * 1000),
               "name": "trainer-engine", "msg": record.getMessage()}
        if record.exc_info:
            doc["err"] = self.formatException(record.exc_info)
        return json.dumps(doc)


_SETUP_HINT = ("run scripts/setup-engine-env.sh at the repository root and use .venv-engine/bin/python, "
               "or install python3-torch and python3-grpcio (Debian) and use /usr/bin/python3")


def _missing(package: str, hint: str) -> int:
    print(f"{package} is not installed for {sys.executable}; {hint}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="parley_engine", description="Parley trainer engine")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve parley.v1.Trainer and grpc.health.v1.Health")
    serve.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--log-level", default=os.environ.get("PARLEY_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warn", "error"], help="default: $PARLEY_LOG_LEVEL or info")
    serve.add_argument("--weights-root", default=os.environ.get("PARLEY_WEIGHTS_ROOT") or None,
                       help="SaveWeights writes only under this folder (symlinks and .. resolved); "
                            "default: $PARLEY_WEIGHTS_ROOT, else anywhere")
    serve.add_argument("--max-request-tokens", type=_non_negative,
                       default=os.environ.get("PARLEY_ENGINE_MAX_REQUEST_TOKENS", "0"),
                       help="tokens one ForwardBackward, ComputeLogprobs or Sample may carry; 0 (default, or "
                            "$PARLEY_ENGINE_MAX_REQUEST_TOKENS): 256 x the model's max_len, at most 1048576")
    serve.add_argument("--max-message-bytes", type=_positive,
                       default=os.environ.get("PARLEY_ENGINE_MAX_MESSAGE_BYTES", str(64 * 1024 * 1024)),
                       help="gRPC message size limit, both ways; default: $PARLEY_ENGINE_MAX_MESSAGE_BYTES or 64 MiB")
    serve.add_argument("--grace-s", type=float, default=10.0,
                       help="after SIGTERM/SIGINT, seconds in-flight calls get to finish (default 10)")
    args = parser.parse_args(argv)

    from .allocator import tune_allocator
    tune_allocator()
    try:
        import torch  # noqa: F401
    except ImportError:
        return _missing("PyTorch", _SETUP_HINT)
    try:
        import grpc  # noqa: F401
    except ImportError:
        return _missing("grpcio", _SETUP_HINT)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    log = logging.getLogger("parley_engine")
    log.addHandler(handler)
    log.setLevel({"warn": "WARNING"}.get(args.log_level, args.log_level.upper()))

    from .engine import Engine
    from .server import start, stop

    engine = Engine(weights_root=args.weights_root, max_request_tokens=args.max_request_tokens)
    try:
        server, port, health = start(args.host, args.port, engine, max_message_bytes=args.max_message_bytes)
    except RuntimeError as e:  # grpcio reports a port in use this way
        print(f"cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set():  # the second one: the caller will not wait
            log.warning("signal %d while stopping: exiting now", signum)
            _exit_now(1)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    # The one line on stdout: a parent that asked for port 0 reads the real port here.
    print(json.dumps({"event": "listening", "host": args.host, "port": port}), flush=True)
    log.info("serving parley.v1.Trainer on %s:%d (torch %s)", args.host, port, torch.__version__)
    while not stopping.wait(timeout=3600):
        pass
    log.info("stopping: finishing in-flight calls (up to %.1f s)", args.grace_s)
    started = time.perf_counter()
    running = stop(server, health, grace_s=args.grace_s)
    if running:
        # A ForwardBackward cannot be interrupted inside torch, and the interpreter would join its worker
        # thread at exit: leave without it (weights on disk are only ever renamed into place whole).
        log.warning("stopped after %.1f s with %d call(s) still running; exiting without them",
                    time.perf_counter() - started, running)
        _exit_now(0)
    log.info("stopped after %.1f s", time.perf_counter() - started)
    return 0


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
