"""A truecost config as a Hugging Face Trainer (or TRL DPOTrainer): arguments, data, and the FSDP-on-CPU switch.

Everything the training loop does is the Trainer's; this module only translates `TrainConfig` into
`TrainingArguments` and datasets, so that what the Trainer supports (FSDP, DeepSpeed, loggers, mixed precision)
comes with it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from truecost.errors import MissingExtra, UserError
from truecost.train.config import TrainConfig

if TYPE_CHECKING:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from truecost.train.data import Dataset

# Sharded like ZeRO-3 (parameters, gradients and optimizer state split over the processes); the checkpoint holds
# a full safetensors state dict, so it loads anywhere. `distributed.fsdp_config` overrides any of these.
FSDP_DEFAULTS: dict[str, Any] = {"version": 2, "state_dict_type": "FULL_STATE_DICT", "cpu_ram_efficient_loading": False}
DEEPSPEED_DEFAULTS: dict[str, Any] = {"zero_optimization": {"stage": 3}, "bf16": {"enabled": "auto"},
                                      "fp16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
                                      "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}


@dataclass
class Blocks:
    """Packed token blocks as a map-style dataset: each item trains on every next token of one block."""

    blocks: torch.Tensor

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.blocks[index], "labels": self.blocks[index]}


def _schedule(config: TrainConfig) -> dict[str, Any]:
    """The Trainer's own schedulers for ours: warm-up, then cosine or linear decay to lr x min_lr_ratio."""
    optim = config.optim
    if optim.schedule == "constant":
        return {"lr_scheduler_type": "constant_with_warmup"}
    return {"lr_scheduler_type": "warmup_stable_decay",
            "lr_scheduler_kwargs": {"num_decay_steps": max(1, config.max_steps - optim.warmup_steps),
                                    "decay_type": optim.schedule,
                                    "min_lr_ratio": optim.min_lr_ratio}}


def _sharding(config: TrainConfig, device: str, world_size: int) -> dict[str, Any]:
    """FSDP or DeepSpeed arguments from `distributed` (nothing for DDP or a single process)."""
    strategy = config.distributed.strategy
    if world_size <= 1 or strategy == "ddp":
        return {}
    if strategy == "fsdp":
        # On CPU, gloo cannot broadcast the initial weights FSDP-style; every rank builds them from one seed.
        cpu = {"sync_module_states": False} if device == "cpu" else {}
        options = {**FSDP_DEFAULTS, **cpu, **config.distributed.fsdp_config}
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": options}
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise UserError("distributed.strategy: deepspeed needs the deepspeed package (pip install deepspeed) and "
                        "GPUs; on CPUs use fsdp")
    return {"deepspeed": config.distributed.deepspeed_config or DEEPSPEED_DEFAULTS}


def _recompute(on: bool) -> dict[str, Any]:
    """Gradient checkpointing under the argument names of the installed transformers (renamed in v5)."""
    from transformers import TrainingArguments

    name = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"
    return {name: on, f"{name}_kwargs": {"use_reentrant": False}}


def arguments(config: TrainConfig, *, device: str, precision: str, recompute: bool, world_size: int,
              resuming: bool) -> TrainingArguments:
    """TrainingArguments (DPOConfig for `task: dpo`) that run `config` as truecost's own loop did."""
    from transformers import TrainingArguments

    kwargs: dict[str, Any] = {
        "output_dir": str(config.run_dir), "run_name": config.name, "seed": config.seed, "data_seed": config.seed,
        "per_device_train_batch_size": config.micro_batch, "per_device_eval_batch_size": config.micro_batch,
        "gradient_accumulation_steps": config.grad_accum, "max_steps": config.max_steps,
        "learning_rate": config.optim.lr, "weight_decay": config.optim.weight_decay,
        "adam_beta1": config.optim.beta1, "adam_beta2": config.optim.beta2, "optim": "adamw_torch_fused",
        "max_grad_norm": config.optim.max_grad_norm or 0.0, "warmup_steps": config.optim.warmup_steps,
        **_schedule(config), "bf16": precision == "bf16", "fp16": precision == "fp16", "use_cpu": device == "cpu",
        **_recompute(recompute),
        "eval_strategy": "steps", "eval_steps": config.eval.every_steps, "eval_on_start": not resuming,
        "logging_strategy": "steps", "logging_steps": config.log_every, "logging_nan_inf_filter": False,
        "save_strategy": "no",  # truecost's CheckpointCallback decides when, seals and prunes
        "report_to": list(config.report_to) or "none", "disable_tqdm": True, "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "include_num_input_tokens_seen": "all" if config.task == "lm" else "non_padding",
        **_sharding(config, device, world_size)}
    if config.task == "dpo":
        try:
            from trl import DPOConfig
        except ImportError as exc:
            raise MissingExtra("trl", "train", "task: dpo") from exc

        return DPOConfig(beta=config.dpo.beta, max_length=config.seq_len, **kwargs)
    return TrainingArguments(**kwargs)


class _CpuFsdp:
    """accelerate switches FSDP on only for accelerators; torch's FSDP2 also shards over gloo on CPUs, so for a
    CPU job configured with FSDP the accelerator is told to use it (the tests run FSDP this way)."""

    args: TrainingArguments
    accelerator: Any
    is_fsdp_enabled: bool

    def create_accelerator_and_postprocess(self) -> None:
        from accelerate.state import PartialState
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        super().create_accelerator_and_postprocess()  # type: ignore[misc]
        state = self.accelerator.state
        if state.distributed_type == DistributedType.MULTI_CPU and self.args.fsdp_plugin_args is not None:
            # Both shared states: every later AcceleratorState() copies the process-level one over its own.
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            state.distributed_type = DistributedType.FSDP
            state.fsdp_plugin = FullyShardedDataParallelPlugin(**self.args.fsdp_plugin_args)
            self.is_fsdp_enabled = True


def build_trainer(config: TrainConfig, args: TrainingArguments, model: Any, data: Dataset,
                  callbacks: list[TrainerCallback]) -> Trainer:
    """The Trainer for `config.task`: packed causal LM, chat SFT with the prompt masked, or TRL's DPO."""
    from transformers import PrinterCallback

    trainer = _trainer(config, args, model, data, callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout, which is for --json alone
    return trainer


def _trainer(config: TrainConfig, args: TrainingArguments, model: Any, data: Dataset,
             callbacks: list[TrainerCallback]) -> Trainer:
    from transformers import DataCollatorForSeq2Seq, Trainer

    evaluated = config.eval.batches * config.micro_batch  # a fixed held-out slice, as the loop always used
    if config.task == "dpo":
        import datasets
        from trl import DPOTrainer

        datasets.disable_progress_bars()  # stderr is for truecost's progress lines
        cls: Any = type("TruecostDPOTrainer", (_CpuFsdp, DPOTrainer), {})
        reference = None if config.method != "full" else copy.deepcopy(model).eval()  # LoRA: adapters off
        return cls(model=model, ref_model=reference, args=args, processing_class=data.tokenizer,
                   train_dataset=datasets.Dataset.from_list(data.train),
                   eval_dataset=datasets.Dataset.from_list(data.val[:evaluated]), callbacks=callbacks)
    cls = type("TruecostTrainer", (_CpuFsdp, Trainer), {})
    if config.task == "sft":
        collator = DataCollatorForSeq2Seq(data.tokenizer, label_pad_token_id=-100, padding=True)
        return cls(model=model, args=args, train_dataset=data.train, eval_dataset=data.val[:evaluated],
                   data_collator=collator, processing_class=data.tokenizer, callbacks=callbacks)
    return cls(model=model, args=args, train_dataset=Blocks(data.train), eval_dataset=Blocks(data.val[:evaluated]),
               processing_class=data.tokenizer, callbacks=callbacks)
