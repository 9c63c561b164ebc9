"""The PPO loss against an independent, token-by-token computation: clip, dual clip, k3 KL, entropy,
masks, both aggregations and truncated importance weights; then the same through ForwardBackward."""

import math
import random
import unittest

import support  # noqa: F401  (import path)
import torch

from parley_engine.losses import LossSettings, ppo_loss, sft_loss
from support import new_engine, pb, sequence


def expected_loss(seqs, s: LossSettings, entropy_coef_terms=True):
    """seqs: [{"off": bool, "tokens": [dict(logp, old, beh, adv, mask, ref, ent)]}] -> loss, metrics."""
    per_seq, total, count = [], 0.0, 0
    clipped = weights = weight_n = 0
    for seq in seqs:
        seq_sum, seq_n = 0.0, 0
        for t in seq["tokens"]:
            if not t["mask"]:
                continue
            # verl: the log-ratio is clamped to [-20, 20] before exp.
            ratio = math.exp(min(max(t["logp"] - t["old"], -20.0), 20.0))
            clipped_ratio = min(max(ratio, 1 - s.clip_low), 1 + s.clip_high)
            a = t["adv"]
            pg = max(-a * ratio, -a * clipped_ratio)
            if -a * clipped_ratio > -a * ratio:
                clipped += 1
            if s.dual_clip > 0 and a < 0:
                pg = min(pg, -a * s.dual_clip)
            if seq["off"]:
                # The importance weight multiplies the policy-gradient term only (verl's rollout_is_weights).
                w = min(math.exp(min(max(t["old"] - t["beh"], -20.0), 20.0)), s.is_cap)
                pg *= w
                weights += w
                weight_n += 1
            loss = pg
            if s.kl_coef > 0:
                # verl kl_penalty "low_var_kl": d clamped to [-20, 20], k3 clamped to [-10, 10].
                d = min(max(t["ref"] - t["logp"], -20.0), 20.0)
                loss += s.kl_coef * min(max(math.exp(d) - d - 1, -10.0), 10.0)
            if entropy_coef_terms and s.entropy_coef:
                loss -= s.entropy_coef * t["ent"]
            seq_sum += loss
            seq_n += 1
        total += seq_sum
        count += seq_n
        if seq_n:
            per_seq.append(seq_sum / seq_n)
    loss = total / count if s.aggregation == "token_mean" else sum(per_seq) / len(per_seq)
    metrics = {"clip_frac": clipped / count}
    if weight_n:
        metrics["importance_weight_mean"] = weights / weight_n
    return loss, metrics


def tok(logp, old, adv, mask=1, beh=None, ref=-1.0, ent=1.0):
    return dict(logp=logp, old=old, beh=old if beh is None else beh, adv=adv, mask=mask, ref=ref, ent=ent)


# Hand-picked tokens: each exercises one branch.
FIXED = [
    {"off": False, "tokens": [
        tok(math.log(1.5), 0.0, 1.0),             # ratio above 1+clip, A > 0: clipped
        tok(math.log(0.5), 0.0, 1.0),             # ratio below 1-clip, A > 0: unclipped wins
        tok(math.log(0.5), 0.0, -1.0),            # ratio below 1-clip, A < 0: clipped
        tok(math.log(5.0), 0.0, -1.0),            # ratio 5, A < 0: dual clip caps at 3
        tok(math.log(9.0), 0.0, 7.0, mask=0),     # masked: must not count
    ]},
    {"off": True, "tokens": [
        tok(-1.0, -1.2, 0.5, beh=-1.2 - math.log(3.0)),   # importance weight 3, capped at 2
        tok(-2.0, -1.5, -0.3, beh=-1.0, ref=-2.5),        # importance weight exp(-0.5)
        tok(-0.7, -0.9, 2.0, beh=-0.8, ref=-0.1),
    ]},
    {"off": False, "tokens": [tok(-0.3, -0.35, 0.8, ref=-0.2, ent=2.0)]},  # short: padded
]


def as_tensors(seqs):
    t = max(len(s["tokens"]) for s in seqs)
    fields = ("logp", "old", "beh", "adv", "mask", "ref", "ent")
    out = {f: torch.zeros(len(seqs), t) for f in fields}
    for i, s in enumerate(seqs):
        for j, token in enumerate(s["tokens"]):
            for f in fields:
                out[f][i, j] = float(token[f])
    out["off"] = torch.tensor([s["off"] for s in seqs])
    out["logp"].requires_grad_(True)
    return out


def settings(**overrides) -> LossSettings:
    base = dict(kind="ppo", clip_low=0.2, clip_high=0.28, dual_clip=3.0, kl_coef=0.05, entropy_coef=0.01,
                aggregation="token_mean", is_cap=2.0)
    return LossSettings(**dict(base, **overrides))


class PpoLossTest(unittest.TestCase):
    def check(self, s: LossSettings):
        x = as_tensors(FIXED)
        loss, metrics = ppo_loss(x["logp"], x["old"], x["beh"], x["adv"], x["mask"], x["off"], s, x["ref"], x["ent"])
        want, want_metrics = expected_loss(FIXED, s)
        self.assertAlmostEqual(float(loss), want, places=5)
        self.assertAlmostEqual(float(metrics["clip_frac"]), want_metrics["clip_frac"], places=6)
        self.assertAlmostEqual(float(metrics["importance_weight_mean"]), want_metrics["importance_weight_mean"],
                               places=5)
        return x, loss

    def test_token_mean(self):
        self.check(settings())

    def test_seq_mean(self):
        self.check(settings(aggregation="seq_mean"))

    def test_without_dual_clip_kl_or_entropy(self):
        self.check(settings(dual_clip=0.0, kl_coef=0.0, entropy_coef=0.0))

    def test_clipped_and_masked_tokens_get_no_policy_gradient(self):
        x, loss = self.check(settings(kl_coef=0.0))
        loss.backward()
        grad = x["logp"].grad
        self.assertEqual(float(grad[0, 0]), 0.0)  # clipped high
        self.assertEqual(float(grad[0, 2]), 0.0)  # clipped low
        self.assertEqual(float(grad[0, 3]), 0.0)  # dual-clipped
        self.assertEqual(float(grad[0, 4]), 0.0)  # masked
        self.assertNotEqual(float(grad[0, 1]), 0.0)  # unclipped

    def test_importance_weight_leaves_kl_and_entropy_unweighted(self):
        # One off-policy token with weight 2 (capped from 3): only the policy-gradient term doubles.
        seqs = [{"off": True, "tokens": [tok(-1.0, -1.0, 0.5, beh=-1.0 - math.log(3.0), ref=-2.0, ent=1.5)]}]
        s = settings(is_cap=2.0, kl_coef=0.1, entropy_coef=0.01)
        x = as_tensors(seqs)
        loss, _ = ppo_loss(x["logp"], x["old"], x["beh"], x["adv"], x["mask"], x["off"], s, x["ref"], x["ent"])
        k3 = math.exp(-1.0) + 1.0 - 1.0
        self.assertAlmostEqual(float(loss), 2.0 * -0.5 + 0.1 * k3 - 0.01 * 1.5, places=6)

    def test_extreme_inputs_are_bounded_like_verl(self):
        inf, nan = float("inf"), float("nan")
        seqs = [
            {"off": False, "tokens": [
                tok(0.0, -60.0, 1.0, ref=0.0),            # log-ratio 60 -> clamped to 20; clipped anyway
                tok(-60.0, 0.0, 1.0, ref=-60.0),          # log-ratio -60 -> ratio e^-20, unclipped
                tok(-50.0, -50.0, -2.0, ref=-1.0),        # ref - logp = 49: k3 clamps at 10
                tok(-1.0, -1.0, 1.0, ref=-45.0),          # ref - logp = -44 -> -20: k3 = e^-20 + 19, clamps at 10
                tok(-inf, -inf, nan, mask=0, beh=nan, ref=inf, ent=nan),  # masked: must not leak
            ]},
            {"off": True, "tokens": [
                tok(-1.0, -1.0, 0.5, beh=-100.0),         # weight e^99 -> cap
                tok(-1.0, -1.0, 0.5, beh=100.0),          # weight e^-101 -> e^-20
                tok(inf, nan, inf, mask=0, beh=-inf, ref=nan, ent=inf),
            ]},
        ]
        for aggregation in ("token_mean", "seq_mean"):
            s = settings(aggregation=aggregation, dual_clip=3.0, kl_coef=0.5, entropy_coef=0.01, is_cap=2.0)
            x = as_tensors(seqs)
            loss, metrics = ppo_loss(x["logp"], x["old"], x["beh"], x["adv"], x["mask"], x["off"], s, x["ref"], x["ent"])
            want, want_metrics = expected_loss(seqs, s)
            self.assertTrue(math.isfinite(float(loss)), aggregation)
            self.assertAlmostEqual(float(loss), want, places=5, msg=aggregation)
            self.assertAlmostEqual(float(metrics["kl"]), (0 + 0 + 10 + 10 + 0 + 0) / 6, places=5)
            for name, value in metrics.items():
                self.assertTrue(math.isfinite(float(value)), f"{aggregation}: {name}")
            loss.backward()
            grad = x["logp"].grad
            self.assertTrue(bool(torch.isfinite(grad).all()), aggregation)
            self.assertEqual(float(grad[0, 4]), 0.0)
            self.assertEqual(float(grad[1, 2]), 0.0)

    def test_sft_loss_ignores_inf_at_masked_positions(self):
        logp = torch.tensor([[-1.0, -float("inf")], [-2.0, float("nan")]], requires_grad=True)
        mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        loss = sft_loss(logp, mask, "token_mean")
        self.assertAlmostEqual(float(loss), 1.5, places=6)
        loss.backward()
        self.assertTrue(bool(torch.isfinite(logp.grad).all()))

    def test_loss_config_defaults_and_validation(self):
        s = LossSettings.from_proto(pb.LossConfig())
        self.assertEqual((s.kind, s.clip_low, s.clip_high, s.dual_clip, s.aggregation),
                         ("ppo", 0.2, 0.2, 0.0, "token_mean"))
        for bad in (pb.LossConfig(kind="dpo"), pb.LossConfig(aggregation="sum"), pb.LossConfig(dual_clip=0.5)):
            with self.assertRaises(Exception) as ctx:
                LossSettings.from_proto(bad)
            self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT")


class ForwardBackwardLossTest(unittest.TestCase):
    """ForwardBackward's loss, with log-probs from ComputeLogprobs, equals the independent value:
    this checks the shift (token t from position t-1), token 0's mask, padding and the reference."""

    @classmethod
    def setUpClass(cls):
        cls.engine = new_engine(seed=3)
        rng = random.Random(5)
        cls.ids = [[rng.randrange(16) for _ in range(n)] for n in (9, 5, 12)]
        # Move the policy away from the reference so the KL term is not zero.
        sft = pb.ForwardBackwardRequest(sequences=[sequence(ids) for ids in cls.ids], loss=pb.LossConfig(kind="sft"))
        for _ in range(3):
            cls.engine.forward_backward(sft)
            cls.engine.optim_step(pb.OptimStepRequest(learning_rate=1e-2))

    def batch(self):
        rng = random.Random(11)
        seqs = [sequence(ids) for ids in self.ids]
        policy = self.engine.compute_logprobs(pb.ComputeLogprobsRequest(sequences=seqs))
        ref = self.engine.compute_logprobs(pb.ComputeLogprobsRequest(sequences=seqs, reference=True))
        rows, out = [], []
        for i, ids in enumerate(self.ids):
            n = len(ids)
            off = i == 1
            mask = [1] * n
            mask[2] = 0
            # Log-probs stay <= 0 (the engine refuses positive ones, as log-probs of sampled tokens never are).
            old = [min(0.0, lp + rng.uniform(-0.4, 0.4)) for lp in policy[i]]
            beh = [min(0.0, o + rng.uniform(-1.0, 1.0)) for o in old] if off else list(old)
            adv = [rng.uniform(-2, 2) for _ in range(n)]
            out.append(pb.Sequence(token_ids=ids, loss_mask=mask, behaviour_logprobs=beh, old_logprobs=old,
                                   advantages=adv, off_policy=off))
            # Token 0 never counts, whatever its mask says.
            tokens = [tok(policy[i][t], old[t], adv[t], mask=mask[t] if t else 0, beh=beh[t], ref=ref[i][t])
                      for t in range(n)]
            rows.append({"off": off, "tokens": tokens})
        return out, rows

    def test_loss_matches_independent_value(self):
        seqs, rows = self.batch()
        for aggregation in ("token_mean", "seq_mean"):
            cfg = pb.LossConfig(kind="ppo", clip_low=0.2, clip_high=0.2, dual_clip=3, kl_coef=0.1,
                                aggregation=aggregation, is_cap=1.5)
            metrics = self.engine.forward_backward(pb.ForwardBackwardRequest(sequences=seqs, loss=cfg))
            want, want_metrics = expected_loss(rows, LossSettings.from_proto(cfg), entropy_coef_terms=False)
            self.assertAlmostEqual(metrics["loss"], want, places=4, msg=aggregation)
            self.assertAlmostEqual(metrics["clip_frac"], want_metrics["clip_frac"], places=5)
            self.assertAlmostEqual(metrics["importance_weight_mean"], want_metrics["importance_weight_mean"], places=4)
            self.assertEqual(metrics["loss_tokens"], sum(len(r) - 2 for r in self.ids))
            self.assertGreater(metrics["kl"], 0.0)
        self.engine.optimizer.zero_grad(set_to_none=True)
        self.engine.pending_micro_batches = 0

    def test_loss_scale_scales_gradients(self):
        seqs, _ = self.batch()
        params = [p for p in self.engine.policy.parameters()]

        def grads(scale):
            self.engine.optimizer.zero_grad(set_to_none=True)
            req = pb.ForwardBackwardRequest(sequences=seqs, loss=pb.LossConfig(), loss_scale=scale)
            self.engine.forward_backward(req)
            return torch.cat([p.grad.flatten() for p in params])

        full, quarter = grads(1.0), grads(0.25)
        self.assertTrue(torch.allclose(quarter, full * 0.25, atol=1e-7))
        self.engine.optimizer.zero_grad(set_to_none=True)
        self.engine.pending_micro_batches = 0


if __name__ == "__main__":
    unittest.main()
