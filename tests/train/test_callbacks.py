"""truecost's callbacks in a plain `transformers.Trainer` script, and in TRL's SFTTrainer: the three lines work."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from truecost.errors import UserError

ARCH = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 64}


def _model(layers: int = 1, vocab: int = 256) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    arch = {**ARCH, "num_hidden_layers": layers, "vocab_size": vocab}
    return AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", **arch))


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Random token blocks: what matters here is the run's cost and control flow, not what it learns."""

    def __init__(self, rows: int = 256, seq_len: int = 32) -> None:
        self.data = torch.randint(0, 256, (rows, seq_len), generator=torch.Generator().manual_seed(1))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.data[i], "labels": self.data[i]}


def _args(tmp_path: Path, **overrides: Any) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(**{"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 8,
                                "max_steps": 400, "learning_rate": 1e-3, "use_cpu": True, "report_to": "none",
                                "save_strategy": "no", "disable_tqdm": True, "logging_strategy": "no", **overrides})


def test_plain_trainer_stops_at_its_dollar_budget_with_a_checkpoint_and_a_ledger_run(tmp_path: Path,
                                                                                     ledger: Any) -> None:
    from transformers import Trainer

    from truecost.config import Config
    from truecost.train.callbacks import truecost_callbacks
    from truecost.train.checkpoints import verify

    # A CPU core-hour at $36: the 400-step run would cost several cents, the budget allows about one.
    project = Config.model_validate({"hardware": {"cpu_usd_per_core_hour": 36.0}})
    budget = 0.01
    trainer = Trainer(model=_model(), args=_args(tmp_path), train_dataset=Tokens(),
                      callbacks=truecost_callbacks(max_usd=budget, ledger=ledger, project=project, name="plain"))
    trainer.train()

    steps = trainer.state.global_step
    assert 1 < steps < 400
    run = ledger.list_runs(kind="train")[0]
    assert run.status == "stopped" and run.results["stopped_by"] == "budget"
    assert run.results["budget_limit"] == "max_usd"
    per_step = run.cost_usd / steps
    assert budget <= run.cost_usd < budget + 3 * per_step + 0.002  # stopped at the first step past the budget
    compare = run.results["measured_vs_estimate"]["cost_usd"]
    assert compare["measured"] == pytest.approx(run.cost_usd, rel=0.05) and compare["estimated"] > 0
    assert run.params["estimate"]["memory_gib"] > 0
    verify(tmp_path / "out" / f"checkpoint-{steps}")  # the stop left a whole, checksummed checkpoint


def test_plain_trainer_refuses_a_run_that_cannot_fit_and_records_nothing(tmp_path: Path, ledger: Any) -> None:
    from transformers import Trainer

    from truecost.train.callbacks import truecost_callbacks

    # a device with 0.1 MiB cannot hold even this model, checkpointing or not
    callbacks = truecost_callbacks(max_usd=1.0, ledger=ledger, device_memory_gib=1e-4)
    trainer = Trainer(model=_model(), args=_args(tmp_path), train_dataset=Tokens(), callbacks=callbacks)
    with pytest.raises(UserError, match=r"pre-flight: this run needs ~0\.\d+ GiB per device"):
        trainer.train()
    assert trainer.state.global_step == 0 and ledger.list_runs() == []


def test_preflight_turns_checkpointing_on_when_only_that_fits(tmp_path: Path) -> None:
    from transformers import Trainer

    from truecost.config import Config
    from truecost.train.callbacks import PreflightCallback, shape_of_trainer
    from truecost.train.preflight import memory_per_process, target_for

    args = _args(tmp_path, per_device_train_batch_size=64)
    trainer = Trainer(model=_model(layers=4), args=args, train_dataset=Tokens())  # deep enough to gain from it
    shape = shape_of_trainer(args, trainer.state, trainer.model, dataset=trainer.train_dataset)
    assert shape.seq_len == 32 and shape.micro_batch == 64 and shape.method == "full"
    target = target_for(shape, Config())
    plain = memory_per_process(shape, target).total
    recomputed = memory_per_process(dataclasses.replace(shape, recompute=True), target).total
    assert recomputed < plain
    callback = PreflightCallback(device_memory_gib=(plain + recomputed) / 2)
    callback.on_train_begin(args, trainer.state, trainer.control, model=trainer.model,
                            train_dataloader=trainer.get_train_dataloader())
    assert any(getattr(m, "gradient_checkpointing", False) for m in trainer.model.modules())
    assert callback.session.check is not None
    assert callback.session.check.recompute


def test_callbacks_work_inside_trl_sft_trainer(tmp_path: Path, ledger: Any) -> None:
    import datasets
    from trl import SFTConfig, SFTTrainer

    from truecost.train.callbacks import truecost_callbacks
    from truecost.train.data import train_tokenizer

    tokenizer = train_tokenizer(["a few words to train a byte-level tokenizer on"] * 4, 260)
    rows = [{"input_ids": row.tolist()} for row in Tokens(rows=32).data]
    args = SFTConfig(output_dir=str(tmp_path / "sft"), per_device_train_batch_size=4, max_steps=6, use_cpu=True,
                     report_to="none", save_strategy="no", disable_tqdm=True, max_length=32,
                     dataset_kwargs={"skip_prepare_dataset": True})
    trainer = SFTTrainer(model=_model(vocab=len(tokenizer)), args=args, processing_class=tokenizer,
                         train_dataset=datasets.Dataset.from_list(rows),
                         callbacks=truecost_callbacks(max_tokens=4 * 32 * 3, ledger=ledger, name="sft"))
    trainer.train()
    run = ledger.list_runs(kind="train")[0]
    assert trainer.state.global_step == 3 and run.results["budget_limit"] == "max_tokens"
    assert run.tokens == 4 * 32 * 3 and run.cost_usd > 0
