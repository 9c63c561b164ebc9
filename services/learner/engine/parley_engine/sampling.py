"""Batched sampling over left-padded prompts, with or without a KV cache. Log-probs are the model's own
(temperature 1, no top-p), as ComputeLogprobs and the PPO ratio compute them."""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Set

import torch


@dataclass
class SampleParams:
    max_tokens: int
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0  # nucleus mass kept, in (0, 1]
    stop_token_ids: Set[int] = field(default_factory=set)
    generator: Optional[torch.Generator] = None
    # One generator per prompt (None entries use `generator`): a seeded prompt's draws do not depend on
    # the prompts it is batched with.
    row_generators: Optional[List[Optional[torch.Generator]]] = None


@dataclass
class Completion:
    token_ids: List[int] = field(default_factory=list)
    logprobs: List[float] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" when a stop token ended it (the token is included)


def choose_tokens(logits: torch.Tensor, p: SampleParams) -> torch.Tensor:
    """logits [B, V] -> token ids [B]."""
    if p.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / p.temperature, dim=-1)
    if p.top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = sorted_probs.cumsum(-1) - sorted_probs >= p.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    if p.row_generators is None:
        return torch.multinomial(probs, 1, generator=p.generator).squeeze(-1)
    return torch.cat([torch.multinomial(probs[i], 1, generator=g if g is not None else p.generator)
                      for i, g in enumerate(p.row_generators)])


@torch.no_grad()
def sample(model, prompts: Sequence[Sequence[int]], p: SampleParams, max_len: Optional[int],
           use_cache: bool = True) -> List[Completion]:
    """Samples one completion per prompt. A completion ends at a stop token, after max_tokens, or
    when prompt + completion reaches max_len (finish_reason "length"). Prompts must be non-empty
    and shorter than max_len (checked by the caller)."""
    device = next(model.parameters()).device
    b = len(prompts)
    width = max(len(x) for x in prompts)
    budgets = [p.max_tokens if max_len is None else min(p.max_tokens, max_len - len(x)) for x in prompts]
    steps = max(budgets)
    ids = torch.zeros(b, width, dtype=torch.long)
    valid = torch.zeros(b, width, dtype=torch.bool)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        valid[i, width - len(prompt):] = True
    ids, valid = ids.to(device), valid.to(device)
    positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
    last_pos = positions[:, -1]

    out = [Completion() for _ in prompts]
    done = [budget <= 0 for budget in budgets]
    cache = model.new_cache(b, width + steps) if use_cache else None
    logits = model(ids, position_ids=positions, key_valid=valid, cache=cache)[:, -1]
    for _ in range(steps):
        if all(done):
            break
        tokens = choose_tokens(logits, p)
        logp = torch.log_softmax(logits.float(), -1).gather(-1, tokens[:, None]).squeeze(-1)
        for i, (tok, lp) in enumerate(zip(tokens.tolist(), logp.tolist())):
            if done[i]:
                continue
            out[i].token_ids.append(tok)
            out[i].logprobs.append(lp)
            if tok in p.stop_token_ids:
                out[i].finish_reason, done[i] = "stop", True
            elif len(out[i].token_ids) >= budgets[i]:
                done[i] = True
        if all(done):
            break
        # Finished rows keep decoding (batched) but are ignored; their positions must stay in range.
        last_pos = last_pos + 1
        if max_len is not None:
            last_pos = last_pos.clamp(max=max_len - 1)
        new_valid = torch.ones(b, 1, dtype=torch.bool, device=device)
        valid = torch.cat([valid, new_valid], dim=1)
        if use_cache:
            logits = model(tokens[:, None], position_ids=last_pos[:, None], key_valid=valid, cache=cache)[:, -1]
        else:
            ids = torch.cat([ids, tokens[:, None]], dim=1)
            positions = torch.cat([positions, last_pos[:, None]], dim=1)
            logits = model(ids, position_ids=positions, key_valid=valid)[:, -1]
    return out
