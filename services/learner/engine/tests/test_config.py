"""config.schema.json is the one declaration of the engine's settings: the typed dataclasses agree with it
field by field, parse_config fills its defaults and refuses what it refuses, naming the field."""

import dataclasses
import json
import typing
import unittest

import support  # noqa: F401  (import path)

from parley_engine.config import SCHEMA, EngineConfig, LoraConfig, parse_config
from parley_engine.errors import EngineError

_SCALARS = {"integer": int, "number": float, "boolean": bool, "string": str}


def expected_type(prop):
    """The Python type a dataclass field holds for a schema property."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    if kinds == ["object", "null"]:
        return typing.Optional[LoraConfig]
    if kinds == ["array"]:
        item = _SCALARS[prop["items"]["type"]]
        if prop.get("minItems") == prop.get("maxItems") == 2:
            return typing.Tuple[item, item]
        return typing.Tuple[item, ...]
    return _SCALARS[kinds[0]]


class SchemaAgreementTest(unittest.TestCase):
    def assertAgree(self, cls, schema):
        hints = typing.get_type_hints(cls)
        self.assertEqual([f.name for f in dataclasses.fields(cls)], list(schema["properties"]))
        for name, prop in schema["properties"].items():
            self.assertEqual(hints[name], expected_type(prop), name)
            self.assertIn("description", prop, name)
            self.assertIn("default", prop, name)

    def test_dataclasses_match_the_schema(self):
        self.assertAgree(EngineConfig, SCHEMA)
        self.assertAgree(LoraConfig, SCHEMA["properties"]["lora"])
        self.assertIs(SCHEMA["additionalProperties"], False)
        self.assertIs(SCHEMA["properties"]["lora"]["additionalProperties"], False)

    def test_an_empty_config_is_the_schema_defaults(self):
        cfg, has_seed = parse_config("")
        self.assertFalse(has_seed)
        defaults = {name: prop["default"] for name, prop in SCHEMA["properties"].items()}
        self.assertEqual(json.loads(json.dumps(cfg.to_json())), defaults)
        self.assertIsInstance(cfg.lr, float)

    def test_lora_fills_its_defaults_and_numbers_become_floats(self):
        cfg, _ = parse_config(json.dumps({"lora": {"r": 8}, "lr": 1, "betas": [0, 0.5]}))
        self.assertEqual(cfg.lora, LoraConfig(r=8, alpha=32, dropout=0.0, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")))
        self.assertEqual((cfg.lr, cfg.betas), (1.0, (0.0, 0.5)))
        self.assertIsInstance(cfg.lr, float)

    def test_refusals_name_the_field(self):
        cases = [
            ({"width": 128}, "config_json: unknown field(s) ['width']"),
            ({"layers": True}, "config_json.layers must be an integer"),
            ({"heads": 0}, "config_json.heads must be >= 1"),
            ({"lr": 0}, "config_json.lr must be > 0"),
            ({"min_lr_ratio": 1.5}, "config_json.min_lr_ratio must be <= 1"),
            ({"betas": [0.9]}, "config_json.betas must have at least 2"),
            ({"betas": [0.9, 1.0]}, "config_json.betas[1] must be < 1"),
            ({"positions": "rope"}, "config_json.positions must be one of"),
            ({"device": "cuda:x"}, "config_json.device must match"),
            ({"lora": {"rank": 8}}, "config_json.lora: unknown field(s) ['rank']"),
            ({"lora": {"target_modules": []}}, "config_json.lora.target_modules must have at least 1"),
            ({"lora": 3}, "config_json.lora must be an object or null"),
            ({"d_model": 30, "heads": 4}, "config_json.d_model (30) must be divisible by heads (4)"),
        ]
        for config, message in cases:
            with self.subTest(config=config):
                with self.assertRaises(EngineError) as ctx:
                    parse_config(json.dumps(config))
                self.assertEqual(ctx.exception.code.name, "INVALID_ARGUMENT")
                self.assertIn(message, ctx.exception.message)

    def test_devices_the_pattern_accepts(self):
        for device in ("auto", "cpu", "cuda", "cuda:1"):
            self.assertEqual(parse_config(json.dumps({"device": device}))[0].device, device)


if __name__ == "__main__":
    unittest.main()
