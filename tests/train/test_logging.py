"""`report_to` is passed to the Trainer: TensorBoard event files and a local MLflow store get the run's losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import tiny
from truecost.train import train


def test_report_to_tensorboard_and_mlflow_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    # A local file store: no server, no network. MLflow 3 keeps it behind an opt-out (its SQLite store works as
    # well, but builds its schema through ~60 migrations, 30 s here).
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "truecost-test")
    result = train(tiny(tmp_path, max_steps=10, log_every=5, eval={"every_steps": 5, "batches": 2},
                        report_to=["tensorboard", "mlflow"]))
    assert result.status == "completed"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = Path(result.output_dir).glob("runs/*/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    train_loss = [e.step for e in accumulator.Scalars("train/loss")]
    eval_loss = {e.step: e.value for e in accumulator.Scalars("eval/loss")}
    assert train_loss == [5, 10] and sorted(eval_loss) == [0, 5, 10]
    assert eval_loss[10] == pytest.approx(result.eval_loss_end, rel=1e-5)

    client = mlflow.tracking.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("truecost-test").experiment_id])
    history: Any = client.get_metric_history(run.info.run_id, "eval_loss")
    assert [m.step for m in history] == [0, 5, 10]
    assert history[-1].value == pytest.approx(result.eval_loss_end, rel=1e-5)
