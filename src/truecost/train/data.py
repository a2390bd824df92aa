"""Training text in, packed token blocks out: read, split by document, tokenize, pack, batch.

Sources: `builtin:python-docs` (docstrings of the Python standard library, read at run time, so a demo needs no
files), a JSONL or Parquet file, or a folder of them (such as `truecost curate` output).
"""

from __future__ import annotations

import ast
import gzip
import json
import random
import sysconfig
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
from truecost.outputs import require_complete
from truecost.train.config import BUILTIN_TEXT, TrainConfig

if TYPE_CHECKING:
    import torch

EOS_TOKEN = "<|endoftext|>"
_DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".txt", ".md")


# -- reading --------------------------------------------------------------------------------------------------
def python_docstrings(max_chars: int) -> list[str]:
    """Docstrings of the standard library's modules, classes and functions, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py")) + sorted(
        p for p in root.glob("*/*.py") if not any(part in ("test", "tests", "idle_test") for part in p.parts))
    docs: list[str] = []
    total = 0
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 40:  # one-liners like "Return x." teach little
                    docs.append(doc)
                    total += len(doc)
        if total >= max_chars:
            break
    if not docs:
        raise UserError(f"data.source {BUILTIN_TEXT}: no docstrings found under {root}")
    return docs


def is_curate_output(path: Path) -> bool:
    """A folder `truecost curate -o` wrote: it holds curate's report.json or manifest.json."""
    return path.is_dir() and ((path / "report.json").is_file() or (path / "manifest.json").is_file())


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if is_curate_output(path):
        # A kill while curate wrote this folder leaves a complete-looking report beside partial outputs.
        require_complete(path, "curate output folder")
        if (path / "kept").is_dir():
            path = path / "kept"  # train on what curate kept, not on what it removed
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(_DATA_SUFFIXES))
    if not found:
        raise UserError(f"data.source {path}: no .jsonl(.gz), .parquet, .txt or .md files in this folder")
    return found


def read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for every record of one file: JSONL(.gz)/JSON lines, Parquet rows, or a text file as
    {"text": ...}. `where` names the file and line for error messages."""
    try:
        yield from _read_rows(path)
    # Not UTF-8, a corrupt gzip or Parquet file (pyarrow's errors are ValueErrors): the user's file, not a bug.
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise UserError(f"data.source: cannot read {path} ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from exc


def _read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield f"{path} row {number}", row
    elif path.suffix in (".txt", ".md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            yield str(path), {"text": text}  # one file, one document (as `truecost curate` keeps folders of text)
    else:
        opener: Any = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise UserError(f"{path}:{number}: expected a JSON object per line")
                yield f"{path}:{number}", row


def source_rows(source: str, max_chars: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a file or folder (a curate output folder only when complete), until `max_chars` were read."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"data.source: {source} does not exist (a JSONL/Parquet file, a folder of them, "
                        f"or {BUILTIN_TEXT})")
    total = 0
    for file in _files(path):
        for where, row in read_rows(file):
            yield where, row
            total += sum(len(str(v)) for v in row.values())
            if total >= max_chars:
                return


def read_texts(source: str, text_field: str = "text", max_chars: int = 1_500_000) -> list[str]:
    """Documents from `source`, stopping once `max_chars` characters have been read."""
    if source == BUILTIN_TEXT:
        return python_docstrings(max_chars)
    docs: list[str] = []
    for where, row in source_rows(source, max_chars):
        if text_field not in row:
            fields = ", ".join(map(str, row)) or "none"
            raise UserError(f"data.text_field: {where} has no field {text_field!r} (fields: {fields})")
        text = row[text_field]
        if text is not None and not isinstance(text, str):  # str() would train on "42" or "{'a': 1}"
            raise UserError(f"data.text_field: {where}: {text_field!r} is a {type(text).__name__}, not text")
        if text:
            docs.append(text)
    if not docs:
        raise UserError(f"data.source {source}: no text found")
    return docs


def split_documents(docs: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle documents and hold out about `val_fraction` of the characters, whole documents only."""
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    target = val_fraction * sum(len(d) for d in docs)
    held_out: list[int] = []
    held = 0
    for index in order:
        if held >= target:
            break
        held_out.append(index)
        held += len(docs[index])
    chosen = set(held_out)
    val = [docs[i] for i in held_out]
    train = [docs[i] for i in order if i not in chosen]
    if not train or not val:
        raise UserError("data: too little text to hold out a validation split; raise data.max_chars")
    return train, val


# -- tokenizer ------------------------------------------------------------------------------------------------
def train_tokenizer(docs: list[str], vocab_size: int, extra_tokens: tuple[str, ...] = ()) -> Any:
    """A byte-level BPE tokenizer trained on `docs` with the `tokenizers` library, as a HF fast tokenizer;
    `extra_tokens` become single special tokens (the chat template's turn markers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN, *extra_tokens], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN,
                                   pad_token=EOS_TOKEN)


def load_tokenizer(path: str | Path, gguf_file: str | None = None) -> Any:
    """A tokenizer saved in a Hugging Face folder (or inside a GGUF file there)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), **({"gguf_file": gguf_file} if gguf_file else {}))
    except (OSError, ValueError) as exc:
        raise UserError(f"tokenizer.path: cannot load a tokenizer from {path} ({str(exc).splitlines()[0]})") from exc


# -- packing and batching -------------------------------------------------------------------------------------
def pack(docs: list[str], tokenizer: Any, seq_len: int) -> torch.Tensor:
    """Tokenize, join documents with EOS and cut into full blocks of `seq_len` tokens (no padding wasted)."""
    import torch

    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("tokenizer: it has no end-of-text token to separate packed documents")
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    blocks = len(stream) // seq_len
    if blocks == 0:
        raise UserError(f"data: only {len(stream)} tokens, fewer than one block of seq_len={seq_len}")
    return torch.tensor(stream[: blocks * seq_len], dtype=torch.long).view(blocks, seq_len)


@dataclass
class Dataset:
    """Train and validation data and the tokenizer that made them: packed token blocks (`task: lm`), tokenized
    conversations with their loss mask (`sft`), or conversational preference rows (`dpo`, tokenized by TRL)."""

    train: Any
    val: Any
    tokenizer: Any
    documents: int
    characters: int

    @property
    def train_tokens(self) -> int:
        """Tokens in one epoch of the training split (packed text; conversations count their tokens)."""
        if hasattr(self.train, "numel"):
            return int(self.train.numel())
        return sum(len(example.get("input_ids", ())) for example in self.train)


_CACHE: dict[str, Dataset] = {}


def prepare(config: TrainConfig, tokenizer_dir: Path | None = None) -> Dataset:
    """Read, split and tokenize the data for `config`; train a tokenizer when the config has none.

    A tokenizer found in `tokenizer_dir` (a run's own folder, on resume) wins over training a new one.
    The last result is kept in memory, so tuning trials over the same data prepare it once.
    """
    key = json.dumps([config.task, config.data.model_dump(), config.tokenizer.model_dump(), config.model.path,
                      config.seq_len, config.seed, str(tokenizer_dir) if tokenizer_dir else None], sort_keys=True)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _prepare_chat(config, tokenizer_dir) if config.task != "lm" else _prepare(config, tokenizer_dir)
    return _CACHE[key]


def pick_tokenizer(config: TrainConfig, tokenizer_dir: Path | None, train_docs: list[str],
                   extra_tokens: tuple[str, ...] = ()) -> Any:
    """The run's own saved tokenizer (resume), else tokenizer.path, else the model's, else one trained here."""
    from truecost.train.model import model_source

    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").exists():
        tokenizer = load_tokenizer(tokenizer_dir)
    elif config.tokenizer.path:
        tokenizer = load_tokenizer(config.tokenizer.path)
    elif config.model.path:
        tokenizer = load_tokenizer(*model_source(config))
    else:
        tokenizer = train_tokenizer(train_docs, config.tokenizer.vocab_size, extra_tokens)
    if tokenizer.eos_token_id is None and tokenizer.pad_token_id is not None:
        tokenizer.eos_token = tokenizer.pad_token
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # batches of conversations are padded
    return tokenizer


def _prepare(config: TrainConfig, tokenizer_dir: Path | None) -> Dataset:
    docs = read_texts(config.data.source, config.data.text_field, config.data.max_chars)
    train_docs, val_docs = split_documents(docs, config.data.val_fraction, config.seed)
    tokenizer = pick_tokenizer(config, tokenizer_dir, train_docs)
    train = pack(train_docs, tokenizer, config.seq_len)
    val = pack(val_docs, tokenizer, config.seq_len)
    return Dataset(train=train, val=val, tokenizer=tokenizer, documents=len(docs),
                   characters=sum(len(d) for d in docs))


def _prepare_chat(config: TrainConfig, tokenizer_dir: Path | None) -> Dataset:
    """Conversations (sft) or preference pairs (dpo), split by row; the chat template from the tokenizer."""
    from truecost.train import chat

    if config.data.source == BUILTIN_TEXT:
        rows_needed = "messages" if config.task == "sft" else "prompt/chosen/rejected"
        raise UserError(f"data.source: task {config.task} needs chat data (a JSONL/Parquet file of {rows_needed} "
                        f"rows), not {BUILTIN_TEXT}")
    rows = list(source_rows(config.data.source, config.data.max_chars))
    if config.task == "sft":
        items: list[Any] = [chat.messages_of(row, where) for where, row in rows]
    else:
        items = [chat.preference_of(row, where) for where, row in rows]
    if len(items) < 2:
        raise UserError(f"data.source {config.data.source}: {len(items)} rows; at least 2 are needed to hold one "
                        "out")
    order = list(range(len(items)))
    random.Random(config.seed).shuffle(order)
    held = max(1, round(config.data.val_fraction * len(items)))
    texts = [m["content"] for item in items for m in _all_messages(item)]
    tokenizer = chat.ensure_chat_template(pick_tokenizer(config, tokenizer_dir, texts, chat.CHATML_TOKENS))
    if config.task == "sft":
        encoded = [chat.sft_example(tokenizer, items[i], config.seq_len) for i in order]
        split: tuple[Any, Any] = ([e for e in encoded[held:] if e], [e for e in encoded[:held] if e])
    else:
        split = ([items[i] for i in order[held:]], [items[i] for i in order[:held]])
    if not split[0] or not split[1]:
        raise UserError(f"data.source {config.data.source}: no conversation keeps an assistant token within "
                        f"seq_len={config.seq_len}; raise seq_len or add rows")
    return Dataset(train=split[0], val=split[1], tokenizer=tokenizer, documents=len(items),
                   characters=sum(len(t) for t in texts))


def _all_messages(item: Any) -> list[dict[str, str]]:
    return list(item) if isinstance(item, list) else [m for part in item.values() for m in part]
