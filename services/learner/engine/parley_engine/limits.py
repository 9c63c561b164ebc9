"""Bounds on what one request may make the engine hold, checked by the server before the engine lock is
taken and before any tensor exists: a request too large for memory is refused at once instead of
holding the lock (and every other caller) while it allocates."""

from typing import Optional

from .errors import invalid

# gRPC's own cap on a message, both ways. A learner micro-batch costs about 17 bytes a token (id, mask
# and three floats), so this passes a million-token request with room to spare.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Without --max-request-tokens a request may hold this many of the model's longest sequence...
DEFAULT_SEQUENCES_PER_REQUEST = 256
# ...but never more tokens than this (a Hugging Face model's max_len can be 40 960 or more).
DEFAULT_MAX_REQUEST_TOKENS = 1 << 20


def token_limit(configured: int, max_len: Optional[int]) -> int:
    """The tokens one request may carry: `configured` when > 0, else 256 × max_len capped at 2^20
    (131 072 for the builtin model's default max_len of 512)."""
    if configured > 0:
        return configured
    if max_len is None:
        return DEFAULT_MAX_REQUEST_TOKENS
    return min(DEFAULT_SEQUENCES_PER_REQUEST * max_len, DEFAULT_MAX_REQUEST_TOKENS)


def request_tokens(method: str, req, max_len: Optional[int]) -> int:
    """The tokens `req` makes the engine hold. ForwardBackward and ComputeLogprobs: the sum of the
    sequences' lengths (the learner packs micro-batches by the same count). Sample: prompts × (the
    longest prompt + max_tokens, cut at max_len), the padded batch its KV cache holds. 0 for others."""
    if method in ("ForwardBackward", "ComputeLogprobs"):
        return sum(len(s.token_ids) for s in req.sequences)
    if method == "Sample":
        if not req.prompts:
            return 0
        width = max(len(p.token_ids) for p in req.prompts)
        steps = max(req.max_tokens, 0)
        if max_len is not None:
            steps = min(steps, max(max_len - min(len(p.token_ids) for p in req.prompts), 0))
        return len(req.prompts) * (width + steps)
    return 0


def check_request_tokens(method: str, req, max_len: Optional[int], limit: int) -> None:
    """Raises EngineError(INVALID_ARGUMENT) naming the field and the limit when `req` is over it."""
    n = request_tokens(method, req, max_len)
    if n <= limit:
        return
    if method == "Sample":
        raise invalid(f"prompts: {len(req.prompts)} prompts × (longest prompt + max_tokens) make {n} tokens; "
                      f"at most {limit} per request (--max-request-tokens); send fewer prompts or a smaller max_tokens")
    raise invalid(f"sequences: {len(req.sequences)} sequences hold {n} tokens; at most {limit} per request "
                  f"(--max-request-tokens); split them into smaller requests")
