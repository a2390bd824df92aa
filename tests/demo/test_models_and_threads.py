"""Small pieces of the demo's model handling: the GGUF marker a converted config must lose, and thread choice."""

from __future__ import annotations

import json

from truecost.demo.models import _drop_gguf_marker
from truecost.demo.pipeline import pick_threads


def test_converted_config_loses_the_gguf_marker(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}))
    _drop_gguf_marker(config)
    assert json.loads(config.read_text()) == {"model_type": "llama"}
    _drop_gguf_marker(config)  # idempotent
    assert json.loads(config.read_text()) == {"model_type": "llama"}


def test_threads_as_asked_else_idle_cores() -> None:
    assert pick_threads(3) == 3
    assert 1 <= pick_threads(None) <= (len(__import__("os").sched_getaffinity(0)))
