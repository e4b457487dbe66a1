"""NNI's Python API: our strategies swapped into NasExperiment, on our space and on a user's own space."""
from __future__ import annotations

from pathlib import Path

import nni
import pytest
import torch
import torch.nn as nn
from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.experiment import NasExperiment
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace

from nni_dynamic_supernet import ConfigError, build_splits, create_space, create_strategy

torch.set_num_threads(1)


def _evaluator(epochs: int = 1) -> Classification:
    data = build_splits("digits_hard")
    train = DataLoader(data.train, batch_size=64, shuffle=True, drop_last=True)
    val = DataLoader(data.val, batch_size=200)
    return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=epochs,
                          learning_rate=0.05, optimizer=torch.optim.SGD, accelerator="cpu", limit_train_batches=3,
                          enable_progress_bar=False, logger=False, enable_checkpointing=False)


def _run(space: ModelSpace, strategy_name: str, tmp_path: Path, **overrides) -> tuple:
    strategy = create_strategy(strategy_name, searcher="random", max_evaluations=6, bn_batches=1, **overrides)
    exp = NasExperiment(space, _evaluator(), strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    exp.run()
    return exp, strategy


class TwoChoiceSpace(ModelSpace):
    """A user's own space: two LayerChoices, one of which has an identity."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block1 = LayerChoice({"conv3": nn.Conv2d(8, 8, 3, padding=1), "conv5": nn.Conv2d(8, 8, 5, padding=2),
                                   "skip": nn.Identity()}, label="block1")
        self.block2 = LayerChoice([nn.Conv2d(8, 8, 1), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())],
                                  label="block2")
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x))))


def test_nas_experiment_on_registered_space_returns_searched_models(tmp_path: Path) -> None:
    space = create_space("nas_bench_201", channels=2, cells_per_stage=1, input_size=8)
    exp, strategy = _run(space, "spos", tmp_path)
    top = exp.export_top_models(top_k=3, formatter="dict")
    assert len(top) == 3
    searched = [record["arch"] for record in strategy.search_history]
    assert top == searched[:3]
    accuracies = [record["accuracy"] for record in strategy.search_history]
    assert accuracies == sorted(accuracies, reverse=True)


@pytest.mark.parametrize("name", ["spos_calr_ms", "fairnas"])
def test_nas_experiment_on_a_users_own_space(name: str, tmp_path: Path) -> None:
    exp, strategy = _run(TwoChoiceSpace(), name, tmp_path)
    top = exp.export_top_models(top_k=2, formatter="dict")
    assert len(top) == 2
    assert all(set(arch) == {"block1", "block2"} for arch in top)
    assert top[0]["block1"] in ("conv3", "conv5", "skip") and top[0]["block2"] in (0, 1)


class InputChoiceSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.pick = InputChoice(2, 1, label="pick")
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pick([self.a(x), self.b(x)]))


def test_input_choice_space_trains_and_exports_a_list(tmp_path: Path) -> None:
    exp, _ = _run(InputChoiceSpace(), "spos", tmp_path)
    top = exp.export_top_models(top_k=1, formatter="dict")
    assert top[0]["pick"] in ([0], [1])  # NNI's form of an input choice: a list of chosen indices
    assert InputChoiceSpace().contains(top[0])


class NumericalSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 3, padding=1)], label="op")
        self.add_mutable(nni.mutable.Numerical(0.0, 1.0, label="drop"))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


def test_unsupported_mutable_is_refused_with_its_label(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Numerical 'drop'"):
        _run(NumericalSpace(), "spos", tmp_path)
