"""Chat data for supervised fine-tuning and preference tuning: rows to messages, the chat template, the loss mask.

SFT rows are `{"messages": [{"role": ..., "content": ...}, ...]}` or `{"prompt": ..., "response": ...}`
(`completion` is read as `response`); DPO rows are `{"prompt", "chosen", "rejected"}` with strings or message
lists. Only assistant turns are learned: every other token's label is -100, which the loss ignores.
"""

from __future__ import annotations

from typing import Any

from truecost.errors import UserError

IGNORE_INDEX = -100  # labels with this value do not count in the cross-entropy loss (PyTorch's default)
Messages = list[dict[str, str]]

CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")  # one token each in a tokenizer trained here
# For tokenizers trained here, which have no template of their own: the ChatML layout many chat models use.
CHATML_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _as_messages(value: Any, role: str, where: str) -> Messages:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise UserError(f"{where}: expected a string or a list of {{role, content}} messages")


def messages_of(row: dict[str, Any], where: str) -> Messages:
    """The conversation in an SFT row (`messages`, or `prompt` + `response`/`completion`)."""
    if "messages" in row:
        messages = _as_messages(row["messages"], "user", where)
    elif "prompt" in row and ("response" in row or "completion" in row):
        answer = row.get("response", row.get("completion"))
        messages = _as_messages(row["prompt"], "user", where) + _as_messages(answer, "assistant", where)
    else:
        raise UserError(f"{where}: a chat row needs `messages`, or `prompt` with `response` (task: sft); "
                        f"found fields: {', '.join(map(str, row)) or 'none'}")
    if not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant turn to learn from")
    return messages


def preference_of(row: dict[str, Any], where: str) -> dict[str, Messages]:
    """A DPO row in TRL's conversational form: prompt messages, then the chosen and the rejected answer."""
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
    if missing:
        raise UserError(f"{where}: a preference row needs prompt, chosen and rejected (task: dpo); missing: "
                        f"{', '.join(missing)}")
    return {"prompt": _as_messages(row["prompt"], "user", where),
            "chosen": _as_messages(row["chosen"], "assistant", where),
            "rejected": _as_messages(row["rejected"], "assistant", where)}


def ensure_chat_template(tokenizer: Any) -> Any:
    """Give a tokenizer without a chat template the ChatML one (tokenizers trained here have none)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def render(tokenizer: Any, messages: Messages, *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it, through the tokenizer's chat template."""
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt))


def assistant_spans(tokenizer: Any, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of each assistant turn in it (answer + end marker).

    A turn's span runs from the end of the conversation before it, rendered with the generation prompt, to the
    end of the conversation including it; so whatever the template puts around turns, only the answer counts.
    """
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1])
        if not text.startswith(through) or not through.startswith(before):
            raise UserError("tokenizer: its chat template does not render a conversation as a prefix of the next "
                            "turn, so the prompt cannot be masked reliably; set tokenizer.path to another tokenizer")
        spans.append((len(before), len(through)))
    return text, spans


def sft_example(tokenizer: Any, messages: Messages, max_tokens: int) -> dict[str, list[int]] | None:
    """input_ids and labels for one conversation: labels copy the assistant tokens and are -100 elsewhere.
    Truncated to `max_tokens`; None when no assistant token is left to learn from."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])[:max_tokens]
    offsets = list(encoded["offset_mapping"])[: len(ids)]
    labels = [token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
              for token, (begin, _) in zip(ids, offsets, strict=True)]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}
