"""Chat SFT and DPO: the chat template applied, the prompt masked out of the loss, preference tuning through TRL."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import tiny
from truecost.errors import UserError
from truecost.train import train
from truecost.train.chat import CHATML_TOKENS, IGNORE_INDEX, ensure_chat_template, messages_of, sft_example
from truecost.train.data import train_tokenizer

# A template in the style of SmolLM2's and Qwen's: it adds a default system turn when the conversation has none,
# so the prompt is not simply "everything before the first assistant message".
DEFAULT_SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tokenizer(template: str | None = None) -> Any:
    text = "What is two plus three? It is five. Say hello. Hello there!"
    tokenizer = train_tokenizer([text] * 20, 300, CHATML_TOKENS)
    if template:
        tokenizer.chat_template = template
    return ensure_chat_template(tokenizer)


@pytest.mark.parametrize("template", [None, DEFAULT_SYSTEM_TEMPLATE])
def test_only_assistant_tokens_are_learned(template: str | None) -> None:
    tokenizer = _tokenizer(template)
    conversation = [{"role": "user", "content": "What is two plus three?"},
                    {"role": "assistant", "content": "It is five."},
                    {"role": "user", "content": "Say hello."},
                    {"role": "assistant", "content": "Hello there!"}]
    example = sft_example(tokenizer, conversation, max_tokens=512)
    assert example is not None
    ids, labels = example["input_ids"], example["labels"]
    assert len(ids) == len(labels)
    learned = [token for token, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(ids, labels, strict=True))
    # independent reference: the learned tokens read back as exactly the two answers and their end markers
    assert tokenizer.decode(learned) == "It is five.<|im_end|>\nHello there!<|im_end|>\n"
    masked = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label == IGNORE_INDEX])
    assert "What is two plus three?" in masked and "Say hello." in masked and "five" not in masked
    # the same exchange written as prompt/response is the same first turn
    pair = messages_of({"prompt": "What is two plus three?", "response": "It is five."}, "row")
    first = sft_example(tokenizer, pair, max_tokens=512)
    assert first is not None and tokenizer.decode([t for t in first["labels"] if t != IGNORE_INDEX]) == \
        "It is five.<|im_end|>\n"
    # truncated before any answer: nothing to learn, so the example is dropped
    assert sft_example(tokenizer, conversation, max_tokens=5) is None


def test_rows_without_an_answer_are_named() -> None:
    with pytest.raises(UserError, match=r"data.jsonl:3: a chat row needs `messages`"):
        messages_of({"text": "plain"}, "data.jsonl:3")
    with pytest.raises(UserError, match="no assistant turn"):
        messages_of({"messages": [{"role": "user", "content": "hi"}]}, "data.jsonl:4")


ADD = [(a, b) for a in range(10) for b in range(10)]


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_chat_sft_trains_on_the_answers(tmp_path: Path, ledger: Any) -> None:
    rows = [{"messages": [{"role": "user", "content": f"{a} plus {b}?"},
                          {"role": "assistant", "content": f"{a + b}"}]} for a, b in ADD]
    config = tiny(tmp_path, task="sft", max_steps=30, seq_len=48, data={"source": _write(tmp_path / "c.jsonl", rows),
                                                                         "val_fraction": 0.1},
                  tokenizer={"vocab_size": 300}, eval={"every_steps": 15, "batches": 2})
    result = train(config, ledger=ledger)
    assert result.task == "sft" and result.status == "completed" and result.steps == 30
    assert result.eval_loss_end < result.eval_loss_start - 1.0
    record = ledger.get_run(result.run_id)
    # tokens are counted without padding: fewer than 30 steps x 8 rows x 48 positions
    assert 0 < record.tokens < 30 * 8 * 48 and record.cost_usd > 0


def test_dpo_through_trl_starts_at_log_2_and_learns_the_preference(tmp_path: Path, ledger: Any) -> None:
    # a preference that generalises to held-out prompts: always answer, never refuse
    rows = [{"prompt": f"{a} plus {b}?", "chosen": f"It is {a + b}.", "rejected": "No."} for a, b in ADD]
    config = tiny(tmp_path, task="dpo", max_steps=12, seq_len=48, micro_batch=8, optim={"lr": 0.003, "warmup_steps": 0},
                  data={"source": _write(tmp_path / "p.jsonl", rows), "val_fraction": 0.1},
                  tokenizer={"vocab_size": 300}, eval={"every_steps": 12, "batches": 2}, dpo={"beta": 0.5})
    result = train(config, ledger=ledger)
    assert result.task == "dpo" and result.status == "completed" and result.steps == 12
    # policy == reference at the start, so the DPO loss is -log(sigmoid(0)) = log 2 exactly
    assert result.eval_loss_start == pytest.approx(math.log(2), abs=1e-4)
    assert result.eval_loss_end < math.log(2)
    record = ledger.get_run(result.run_id)
    assert record.tokens > 0 and record.cost_usd > 0 and record.results["measured_vs_estimate"]["cost_usd"]
