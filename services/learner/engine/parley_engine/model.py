"""The builtin model: a small decoder-only transformer (learned or ALiBi positions, pre-LN blocks,
hand-written causal attention so it runs on torch 1.13 and 2.x alike), an optional copy head, and a
preallocated KV cache for sampling."""

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import EngineConfig


class KVCache:
    """Keys and values of every layer for a batch, preallocated up to `capacity` positions."""

    def __init__(self, layers: int, batch: int, heads: int, capacity: int, head_dim: int,
                 device: torch.device, dtype: torch.dtype):
        shape = (batch, heads, capacity, head_dim)
        self.keys: List[torch.Tensor] = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.values: List[torch.Tensor] = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.length = 0  # positions already written, shared by the batch (prompts are left-padded)
        # The copy head's keys and the token ids it copies from (allocated by the model when it has one).
        self.copy_keys: Optional[torch.Tensor] = None
        self.token_ids: Optional[torch.Tensor] = None


class CopyHead(nn.Module):
    """A pointer-generator output (See et al., 2017): from the final hidden state, one attention over the
    earlier positions gives a distribution over the tokens found there, and a gate mixes it with the
    vocabulary distribution. A tool call's arguments are mostly words the user or a tool said earlier;
    pointing at them is learned far sooner by a small model than mapping each rare word through its
    embedding and back. The forward returns log-probabilities, which log_softmax leaves unchanged."""

    def __init__(self, d_model: int):
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, 1)

    def forward(self, h: torch.Tensor, vocab_logits: torch.Tensor, keys: torch.Tensor, source_ids: torch.Tensor,
                allowed: torch.Tensor) -> torch.Tensor:
        """h [B, T, D] final hidden states; vocab_logits [B, T, V]; keys [B, S, D] of every position so far;
        source_ids [B, S] their token ids; allowed [B or 1, T, S]. Returns log-probabilities [B, T, V]."""
        scores = (self.query(h) @ keys.transpose(-2, -1)) * (1.0 / math.sqrt(h.shape[-1]))
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)  # [B, T, S]
        b, t, _ = h.shape
        copy = torch.zeros(b, t, vocab_logits.shape[-1], dtype=attn.dtype, device=attn.device)
        copy.scatter_add_(-1, source_ids[:, None, :].expand(b, t, source_ids.shape[-1]), attn)
        gate = self.gate(h)  # [B, T, 1]; log sigmoid(x) and log(1 - sigmoid(x)) computed stably
        from_vocab = F.logsigmoid(-gate) + torch.log_softmax(vocab_logits, dim=-1)
        from_copy = F.logsigmoid(gate) + torch.log(copy.clamp_min(1e-30))
        return torch.logaddexp(from_vocab, from_copy)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cache: Optional[KVCache], layer: int) -> torch.Tensor:
        """x: [B, T, D]; bias: [B or 1, 1, T, S], 0 where a query may attend to a key, very negative elsewhere."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, self.head_dim).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            start = cache.length
            cache.keys[layer][:, :, start:start + t] = k
            cache.values[layer][:, :, start:start + t] = v
            k = cache.keys[layer][:, :, :start + t]
            v = cache.values[layer][:, :, :start + t]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)) + bias
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cache: Optional[KVCache], layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), bias, cache, layer)
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """Token ids [B, T] -> next-token logits [B, T, V]. The output projection is tied to the token
    embedding (and computed from it, so the state dict holds each tensor once)."""

    def __init__(self, cfg: EngineConfig):
        super().__init__()
        self.vocab_size = cfg.vocab_size
        self.max_len = cfg.max_len
        self.heads = cfg.heads
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        # ALiBi: each head penalises attention linearly with distance (geometric slopes), so attending to
        # "the token n back" is the same at every position: small models learn to copy much sooner.
        self.alibi = cfg.positions == "alibi"
        slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / cfg.heads) for h in range(cfg.heads)])
        self.register_buffer("alibi_slopes", slopes, persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.heads) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.copy_head = CopyHead(cfg.d_model) if cfg.copy_head else None
        self.apply(_init_weights)

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        head_dim = self.tok_emb.embedding_dim // self.heads
        weight = self.tok_emb.weight
        cache = KVCache(len(self.blocks), batch, self.heads, capacity, head_dim, weight.device, weight.dtype)
        if self.copy_head is not None:
            cache.copy_keys = torch.zeros(batch, capacity, weight.shape[1], device=weight.device, dtype=weight.dtype)
            cache.token_ids = torch.zeros(batch, capacity, dtype=torch.long, device=weight.device)
        return cache

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
                key_valid: Optional[torch.Tensor] = None, cache: Optional[KVCache] = None) -> torch.Tensor:
        """input_ids: [B, T] new tokens. position_ids: [B, T] (default: consecutive after the cache).
        key_valid: [B, S] bool over every key so far (cache + new; default all valid), False on
        padding. cache: filled in place and advanced by T."""
        b, t = input_ids.shape
        past = cache.length if cache is not None else 0
        device = input_ids.device
        if position_ids is None:
            position_ids = torch.arange(past, past + t, device=device).expand(b, t)
        query_pos = torch.arange(past, past + t, device=device)
        key_pos = torch.arange(past + t, device=device)
        allowed = (key_pos[None, :] <= query_pos[:, None])[None, None]  # [1, 1, T, S]
        if key_valid is not None:
            allowed = allowed & key_valid[:, None, None, :]
        x = self.tok_emb(input_ids)
        if not self.alibi:
            x = x + self.pos_emb(position_ids)
        # A finite floor rather than -inf: a padding query that may see nothing then gets a uniform
        # (ignored) row instead of NaNs that would leak into the values other queries read.
        floor = torch.finfo(x.dtype).min
        bias = torch.zeros(allowed.shape, dtype=x.dtype, device=device).masked_fill(~allowed, floor)
        if self.alibi:
            # Distances in cache slots: padding sits only on the left and is masked, so slot distance
            # between real tokens equals their true distance.
            distance = (query_pos[:, None] - key_pos[None, :]).clamp(min=0).to(x.dtype)  # [T, S]
            bias = bias + (-self.alibi_slopes.to(x.dtype)[None, :, None, None] * distance[None, None])
        for i, block in enumerate(self.blocks):
            x = block(x, bias, cache, i)
        h = self.ln_f(x)
        logits = F.linear(h, self.tok_emb.weight)
        if self.copy_head is not None:
            keys, source = self.copy_head.key(h), input_ids
            if cache is not None:
                assert cache.copy_keys is not None and cache.token_ids is not None
                cache.copy_keys[:, past:past + t] = keys
                cache.token_ids[:, past:past + t] = input_ids
                keys, source = cache.copy_keys[:, :past + t], cache.token_ids[:, :past + t]
            logits = self.copy_head(h, logits, keys, source, allowed[:, 0])
        if cache is not None:
            cache.length += t
        return logits


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
