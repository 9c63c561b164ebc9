"""Shared test helpers: makes the engine importable from any working folder and builds requests."""

import json
import os
import sys

ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ENGINE_ROOT not in sys.path:
    sys.path.insert(0, ENGINE_ROOT)

from parley_engine import gen  # noqa: E402,F401
from parley_engine.engine import Engine  # noqa: E402
from parley.v1 import trainer_pb2 as pb  # noqa: E402

SMALL = {"layers": 2, "d_model": 32, "heads": 4, "max_len": 32, "vocab_size": 16}


def init_request(seed: int = 0, **config) -> "pb.InitRequest":
    return pb.InitRequest(model="builtin", config_json=json.dumps(dict(SMALL, **config)), seed=seed)


def new_engine(seed: int = 0, **config) -> Engine:
    engine = Engine()
    engine.init(init_request(seed, **config))
    return engine


def sequence(token_ids, loss_mask=None, behaviour=None, old=None, advantages=None, off_policy=False) -> "pb.Sequence":
    n = len(token_ids)
    return pb.Sequence(
        token_ids=token_ids,
        loss_mask=loss_mask if loss_mask is not None else [0] + [1] * (n - 1),
        behaviour_logprobs=behaviour if behaviour is not None else [0.0] * n,
        old_logprobs=old or [],
        advantages=advantages if advantages is not None else [0.0] * n,
        off_policy=off_policy,
    )


def prompts(*token_lists) -> list:
    return [pb.TokenLogprobsPrompt(token_ids=t) for t in token_lists]
