"""The engine's state and operations (model, frozen reference, optimizer, step) over parley.v1 request
messages; transport-free so tests drive it directly. Not thread-safe: the server serialises calls."""

import copy
import math
import os
import time
from typing import Dict, List, Optional, Tuple

import torch

from . import batching, checkpoint, limits
from .config import EngineConfig, parse_config
from .errors import aborted, invalid, permission_denied, precondition
from .hf_model import export_pretrained, load_hf
from .losses import LossSettings, aggregate, ppo_loss, sft_loss, token_entropy, token_logprobs
from .model import TinyTransformer
from .optim import build_optimizer, grad_norm_and_clip, lr_at
from .sampling import Completion, SampleParams, sample

_ARCHITECTURE = ("layers", "d_model", "heads", "max_len", "vocab_size")
MAX_LEARNING_RATE = 1.0  # OptimStep.learning_rate and config_json.lr (config.schema.json says the same)


class Engine:
    def __init__(self, weights_root: Optional[str] = None, max_request_tokens: int = 0):
        """weights_root: when set, SaveWeights writes only under it (symlinks and .. resolved first).
        max_request_tokens: tokens one request may carry (see limits.token_limit; 0 = derived from max_len)."""
        self.weights_root = os.path.realpath(weights_root) if weights_root else None
        self.max_request_tokens = max_request_tokens
        self.cfg: Optional[EngineConfig] = None
        self.model_name = ""
        self.device = torch.device("cpu")
        self.policy: Optional[torch.nn.Module] = None
        self.reference: Optional[torch.nn.Module] = None
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.step = 0
        self.pending_micro_batches = 0  # ForwardBackward calls since the last OptimStep
        self.step_dropped = False  # a ForwardBackward failed mid-way since the last OptimStep
        self.generator = torch.Generator()

    # --- Init -----------------------------------------------------------------------------------
    def init(self, req) -> Dict[str, object]:
        """Builds the model, its frozen reference and the optimizer, replacing any earlier state.
        Raises EngineError: INVALID_ARGUMENT for bad config, FAILED_PRECONDITION for a model whose
        packages are missing."""
        cfg, config_has_seed = parse_config(req.config_json)
        if config_has_seed and req.seed and req.seed != cfg.seed:
            raise invalid(f"seed is {req.seed} but config_json.seed is {cfg.seed}; set one of them")
        seed = cfg.seed if config_has_seed else req.seed
        model = req.model or "builtin"
        device = _pick_device(cfg.device)
        _apply_threads(cfg, device)
        torch.manual_seed(seed)
        if model == "builtin":
            policy = TinyTransformer(cfg).to(device)
            reference = copy.deepcopy(policy)
        else:
            policy, reference = load_hf(model, cfg, device)
        reference.requires_grad_(False).eval()
        self.cfg, self.model_name, self.device = cfg, model, device
        self.policy, self.reference = policy, reference
        self.optimizer = build_optimizer(policy.parameters(), cfg)
        self.step, self.pending_micro_batches, self.step_dropped = 0, 0, False
        self.generator = torch.Generator(device=device).manual_seed(seed)
        return {"parameters": sum(p.numel() for p in policy.parameters()), "device": device.type,
                "vocab_size": policy.vocab_size}

    def _require_init(self) -> None:
        if self.policy is None:
            raise precondition("the engine is not initialised; call Init first")
        _apply_threads(self.cfg, self.device)

    @property
    def max_len(self) -> Optional[int]:
        return self.policy.max_len if self.policy is not None else None

    def admit(self, method: str, req) -> None:
        """The checks that need no lock and no tensor: the request's size. Safe to call from any thread
        while another call runs. Raises EngineError(INVALID_ARGUMENT) naming the field and the limit."""
        max_len = self.max_len
        limits.check_request_tokens(method, req, max_len, limits.token_limit(self.max_request_tokens, max_len))

    def _logits(self, module: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits that predict tokens 1..T-1, i.e. [B, T-1, V] from positions 0..T-2."""
        return module(input_ids[:, :-1])

    # --- ForwardBackward ------------------------------------------------------------------------
    def forward_backward(self, req) -> Dict[str, float]:
        """Accumulates gradients of loss * loss_scale for one micro-batch.
        Raises EngineError: FAILED_PRECONDITION before Init, INVALID_ARGUMENT for bad input (state
        untouched). A later failure drops this step's accumulated gradients and the next OptimStep
        answers ABORTED, so the caller redoes the whole step."""
        self._require_init()
        s = LossSettings.from_proto(req.loss)
        if not (math.isfinite(req.loss_scale) and req.loss_scale >= 0):
            raise invalid(f"loss_scale must be >= 0 (0 means 1), got {req.loss_scale}")
        batching.validate(req.sequences, self.policy.vocab_size, self.max_len, s.kind)
        started = time.perf_counter()
        try:
            metrics = self._forward_backward(req, s)
        except BaseException:
            self.optimizer.zero_grad(set_to_none=True)
            self.pending_micro_batches, self.step_dropped = 0, True
            raise
        elapsed = time.perf_counter() - started
        metrics["tokens_per_s"] = metrics["tokens"] / max(elapsed, 1e-9)
        return metrics

    def _forward_backward(self, req, s: LossSettings) -> Dict[str, float]:
        b = batching.collate(req.sequences, self.device, training=True)
        targets, mask = b.input_ids[:, 1:], b.loss_mask[:, 1:]
        self.policy.train()
        logits = self._logits(self.policy, b.input_ids)
        logp = token_logprobs(logits, targets)
        if s.kind == "sft":
            loss = sft_loss(logp, mask, s.aggregation)
            metrics = {}
        else:
            ref_logp = None
            if s.kl_coef > 0:
                with torch.no_grad():
                    ref_logp = token_logprobs(self._logits(self.reference, b.input_ids), targets)
            entropy = token_entropy(logits) if s.entropy_coef != 0 else None
            loss, metrics = ppo_loss(logp, b.old_logprobs[:, 1:], b.behaviour_logprobs[:, 1:],
                                     b.advantages[:, 1:], mask, b.off_policy, s, ref_logp, entropy)
            with torch.no_grad():
                if entropy is None:  # metric only: one sequence at a time bounds the extra memory
                    entropy = torch.cat([token_entropy(logits[i:i + 1]) for i in range(logits.shape[0])])
                metrics["entropy"] = aggregate(entropy, mask, "token_mean")
        (loss * (req.loss_scale or 1.0)).backward()
        self.pending_micro_batches += 1
        out = {k: float(v) for k, v in metrics.items()}
        out.update(loss=float(loss), tokens=float(b.tokens), loss_tokens=float(mask.sum()))
        return out

    # --- OptimStep ------------------------------------------------------------------------------
    def optim_step(self, req) -> Tuple[int, Dict[str, float]]:
        """Applies the accumulated gradients (clipped to max_grad_norm when > 0) and zeroes them; a
        non-finite gradient norm skips the update. Raises EngineError: FAILED_PRECONDITION before
        Init or when no ForwardBackward ran since the last step, ABORTED (once) when one failed."""
        self._require_init()
        if not (math.isfinite(req.learning_rate) and 0 <= req.learning_rate <= MAX_LEARNING_RATE):
            raise invalid(f"learning_rate must be in (0, {MAX_LEARNING_RATE:g}] (0 means config_json.lr), "
                          f"got {req.learning_rate}")
        if not (math.isfinite(req.max_grad_norm) and req.max_grad_norm >= 0):
            raise invalid(f"max_grad_norm must be finite and >= 0 (0 means no clipping), got {req.max_grad_norm}")
        if self.step_dropped:
            self.optimizer.zero_grad(set_to_none=True)
            self.pending_micro_batches, self.step_dropped = 0, False
            raise aborted("a ForwardBackward of this step failed and its gradients were dropped; redo the step")
        if self.pending_micro_batches == 0:
            raise precondition("no gradients to apply; call ForwardBackward before OptimStep")
        params = [p for p in self.policy.parameters() if p.requires_grad]
        grad_norm = grad_norm_and_clip(params, req.max_grad_norm)
        lr = lr_at(self.step, req.learning_rate if req.learning_rate > 0 else self.cfg.lr, self.cfg)
        skipped = not math.isfinite(grad_norm)
        if not skipped:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.step += 1
        self.optimizer.zero_grad(set_to_none=True)
        micro_batches, self.pending_micro_batches = self.pending_micro_batches, 0
        return self.step, {"grad_norm": grad_norm, "lr": lr, "skipped": float(skipped),
                           "micro_batches": float(micro_batches)}

    # --- ComputeLogprobs ------------------------------------------------------------------------
    @torch.no_grad()
    def compute_logprobs(self, req) -> List[List[float]]:
        """Per-token log-probs aligned with token_ids (entry 0 is 0.0: nothing predicts token 0).
        Raises EngineError: FAILED_PRECONDITION before Init, INVALID_ARGUMENT for bad sequences."""
        self._require_init()
        batching.validate(req.sequences, self.policy.vocab_size, self.max_len, "logprobs")
        module = self.reference if req.reference else self.policy
        module.eval()
        out: List[List[float]] = []
        size = self.cfg.logprob_batch_size
        for start in range(0, len(req.sequences), size):
            chunk = req.sequences[start:start + size]
            b = batching.collate(chunk, self.device, training=False)
            if b.input_ids.shape[1] == 1:  # only single tokens: nothing to predict
                out.extend([0.0] for _ in chunk)
                continue
            logp = token_logprobs(self._logits(module, b.input_ids), b.input_ids[:, 1:]).cpu()
            out.extend([0.0] + logp[i, : n - 1].tolist() for i, n in enumerate(b.lengths))
        return out

    # --- Sample ---------------------------------------------------------------------------------
    def sample(self, req) -> List[Completion]:
        """Raises EngineError: FAILED_PRECONDITION before Init, INVALID_ARGUMENT for bad prompts or
        parameters."""
        self._require_init()
        if not req.prompts:
            raise invalid("prompts is empty; send at least one prompt")
        if req.max_tokens <= 0:
            raise invalid(f"max_tokens must be > 0, got {req.max_tokens}")
        if not req.temperature >= 0:
            raise invalid(f"temperature must be >= 0 (0 = greedy), got {req.temperature}")
        if not 0 <= req.top_p <= 1:
            raise invalid(f"top_p must be in (0, 1] (0 means 1), got {req.top_p}")
        vocab = self.policy.vocab_size
        for i, prompt in enumerate(req.prompts):
            n = len(prompt.token_ids)
            if n == 0:
                raise invalid(f"prompts[{i}].token_ids is empty")
            if self.max_len is not None and n >= self.max_len:
                raise invalid(f"prompts[{i}].token_ids has {n} tokens; prompts must be shorter than "
                              f"max_len {self.max_len}")
            if max(prompt.token_ids) >= vocab:
                raise invalid(f"prompts[{i}].token_ids contains {max(prompt.token_ids)}; token ids must be < {vocab}")
            if prompt.seed < 0:
                raise invalid(f"prompts[{i}].seed is {prompt.seed}; seeds must be >= 0 (0 = unseeded)")
        for tok in req.stop_token_ids:
            if tok >= vocab:
                raise invalid(f"stop_token_ids contains {tok}; token ids must be < {vocab}")
        generator = self.generator
        if req.seed:
            generator = torch.Generator(device=self.device).manual_seed(req.seed)
        rows = None
        if any(prompt.seed for prompt in req.prompts):
            rows = [torch.Generator(device=self.device).manual_seed(prompt.seed) if prompt.seed else None
                    for prompt in req.prompts]
        params = SampleParams(max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p or 1.0,
                              stop_token_ids=set(req.stop_token_ids), generator=generator, row_generators=rows)
        self.policy.eval()
        return sample(self.policy, [list(p.token_ids) for p in req.prompts], params, self.max_len)

    # --- SaveWeights / LoadWeights --------------------------------------------------------------
    def save_weights(self, req) -> Tuple[str, int]:
        """Writes <path>/v<version> atomically; returns (folder, bytes). Raises EngineError:
        FAILED_PRECONDITION before Init, PERMISSION_DENIED naming path when it is outside weights_root,
        INVALID_ARGUMENT, ALREADY_EXISTS (see checkpoint.save)."""
        self._require_init()
        self._check_weights_path(req.path)
        weights = {n: p for n, p in self.policy.named_parameters() if p.requires_grad}
        meta = {"model": self.model_name, "step": self.step, "config": self.cfg.to_json()}
        folder = checkpoint.save(req.path, req.version, weights, self.optimizer.state_dict(), meta,
                                 export=lambda d: export_pretrained(self.policy, d))
        return folder, checkpoint.folder_bytes(folder)

    def _check_weights_path(self, path: str) -> None:
        if self.weights_root is None or not path:  # an empty path is checkpoint.save's INVALID_ARGUMENT
            return
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.weights_root]) != self.weights_root:
            raise permission_denied(f"path {path!r} resolves to {real!r}, outside the weights root "
                                    f"{self.weights_root!r} (--weights-root); save under it")

    def load_weights(self, req) -> int:
        """Loads weights, optimizer state and step from a version folder (or the latest version
        under a base folder) into the policy, or only the weights into the frozen reference when
        req.reference is set; returns its version. Raises EngineError: FAILED_PRECONDITION before
        Init or when the checkpoint is of another model or shape, NOT_FOUND when missing."""
        self._require_init()
        ck = checkpoint.load(req.path, self.device)
        if ck.model != self.model_name:
            raise precondition(f"checkpoint is of model {ck.model!r}, the engine runs {self.model_name!r}")
        if self.model_name == "builtin":
            for name in _ARCHITECTURE:
                if ck.config.get(name) != getattr(self.cfg, name):
                    raise precondition(f"checkpoint has {name}={ck.config.get(name)}, the engine has "
                                       f"{getattr(self.cfg, name)}; Init with the checkpoint's sizes")
        if req.reference:
            trainable = dict(self.reference.named_parameters())
            if not trainable:  # a LoRA policy's reference is the same network with its adapters off
                raise precondition("LoadWeights with reference: true is not supported with config_json.lora "
                                   "yet: the reference is the Init model (adapters disabled)")
        else:
            trainable = {n: p for n, p in self.policy.named_parameters() if p.requires_grad}
        if set(ck.weights) != set(trainable):
            missing, extra = sorted(set(trainable) - set(ck.weights)), sorted(set(ck.weights) - set(trainable))
            raise precondition(f"checkpoint weights do not match the model: missing {missing[:5]}, "
                               f"unexpected {extra[:5]}")
        for name, tensor in ck.weights.items():
            if tensor.shape != trainable[name].shape:
                raise precondition(f"checkpoint weight {name} has shape {list(tensor.shape)}, "
                                   f"the model's is {list(trainable[name].shape)}")
        if req.reference:
            with torch.no_grad():
                for name, tensor in ck.weights.items():
                    trainable[name].copy_(tensor)
            return ck.version
        if ck.optimizer is not None:  # first: it checks its own shape before changing anything
            self.optimizer.load_state_dict(ck.optimizer)
        with torch.no_grad():
            for name, tensor in ck.weights.items():
                trainable[name].copy_(tensor)
        self.optimizer.zero_grad(set_to_none=True)
        self.step, self.pending_micro_batches, self.step_dropped = ck.step, 0, False
        return ck.version


def _apply_threads(cfg: EngineConfig, device: torch.device) -> None:
    # OpenMP keeps the thread count per OS thread, and gRPC runs calls on a pool of them: set it on
    # the calling thread every time.
    if device.type == "cpu" and cfg.num_threads > 0 and torch.get_num_threads() != cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise precondition(f"config_json.device is {name!r} but CUDA is not available")
    return torch.device(name)
