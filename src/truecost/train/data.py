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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
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


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / "kept").is_dir() and (path / "report.json").is_file():
        path = path / "kept"  # a `truecost curate` output folder: train on what it kept, not on what it removed
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(_DATA_SUFFIXES))
    if not found:
        raise UserError(f"data.source {path}: no .jsonl(.gz), .parquet, .txt or .md files in this folder")
    return found


def _read_file(path: Path, text_field: str) -> Iterator[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if text_field not in table.column_names:
            raise UserError(f"data.text_field: {path} has no column {text_field!r} "
                            f"(columns: {', '.join(table.column_names)})")
        yield from (t for t in table.column(text_field).to_pylist() if t)
    elif path.suffix in (".txt", ".md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            yield text  # one file, one document (as `truecost curate` keeps folders of text files)
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
                if not isinstance(row, dict) or text_field not in row:
                    raise UserError(f"data.text_field: {path}:{number} has no field {text_field!r}")
                if row[text_field]:
                    yield str(row[text_field])


def read_texts(source: str, text_field: str = "text", max_chars: int = 1_500_000) -> list[str]:
    """Documents from `source`, stopping once `max_chars` characters have been read."""
    if source == BUILTIN_TEXT:
        return python_docstrings(max_chars)
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"data.source: {source} does not exist (a JSONL/Parquet file, a folder of them, "
                        f"or {BUILTIN_TEXT})")
    docs: list[str] = []
    total = 0
    for file in _files(path):
        for text in _read_file(file, text_field):
            docs.append(text)
            total += len(text)
            if total >= max_chars:
                return docs
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
def train_tokenizer(docs: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on `docs` with the `tokenizers` library, as a HF fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN], show_progress=False,
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
class Batches:
    """Stateless batching: micro-batch `i` is a pure function of (seed, i), so resuming needs only a counter."""

    blocks: torch.Tensor
    micro_batch: int
    seed: int
    rank: int = 0
    world_size: int = 1

    @property
    def per_epoch(self) -> int:
        """Micro-batches each process sees per pass over the data."""
        return max(1, len(self.blocks) // (self.micro_batch * self.world_size))

    def get(self, index: int) -> torch.Tensor:
        """The `index`-th micro-batch of this process; epochs reshuffle with a seed derived from the epoch."""
        import torch

        epoch, slot = divmod(index, self.per_epoch)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.blocks), generator=generator)
        start = (slot * self.world_size + self.rank) * self.micro_batch
        rows = order[start: start + self.micro_batch]
        if len(rows) < self.micro_batch:  # fewer blocks than one global batch: wrap around
            rows = order.repeat(self.micro_batch * self.world_size // len(order) + 2)[start: start + self.micro_batch]
        return self.blocks[rows]


@dataclass
class Dataset:
    """Packed train and validation blocks and the tokenizer that made them."""

    train: torch.Tensor
    val: torch.Tensor
    tokenizer: Any
    documents: int
    characters: int

    @property
    def train_tokens(self) -> int:
        """Tokens in one epoch of the training split."""
        return int(self.train.numel())


_CACHE: dict[str, Dataset] = {}


def prepare(config: TrainConfig, tokenizer_dir: Path | None = None) -> Dataset:
    """Read, split, tokenize and pack the data for `config`; train a tokenizer when the config has none.

    A tokenizer found in `tokenizer_dir` (a run's own folder, on resume) wins over training a new one.
    The last result is kept in memory, so tuning trials over the same data prepare it once.
    """
    key = json.dumps([config.data.model_dump(), config.tokenizer.model_dump(), config.model.path, config.seq_len,
                      config.seed, str(tokenizer_dir) if tokenizer_dir else None], sort_keys=True)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _prepare(config, tokenizer_dir)
    return _CACHE[key]


def _prepare(config: TrainConfig, tokenizer_dir: Path | None) -> Dataset:
    docs = read_texts(config.data.source, config.data.text_field, config.data.max_chars)
    train_docs, val_docs = split_documents(docs, config.data.val_fraction, config.seed)
    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").exists():
        tokenizer = load_tokenizer(tokenizer_dir)
    elif config.tokenizer.path:
        tokenizer = load_tokenizer(config.tokenizer.path)
    elif config.model.path:
        tokenizer = load_tokenizer(config.model.path, config.model.gguf_file)
    else:
        tokenizer = train_tokenizer(train_docs, config.tokenizer.vocab_size)
    if tokenizer.eos_token_id is None and tokenizer.pad_token_id is not None:
        tokenizer.eos_token = tokenizer.pad_token
    train = pack(train_docs, tokenizer, config.seq_len)
    val = pack(val_docs, tokenizer, config.seq_len)
    return Dataset(train=train, val=val, tokenizer=tokenizer, documents=len(docs),
                   characters=sum(len(d) for d in docs))
