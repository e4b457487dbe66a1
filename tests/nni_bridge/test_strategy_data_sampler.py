"""DA under NNI's Python API: DynamicSupernetStrategy rebuilds the evaluator's train loader around the sampler."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from nni_dynamic_supernet.data.samplers import ImportanceDataSampler
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.nni_bridge import DynamicSupernetStrategy, make_training_module
from nni_dynamic_supernet.recipe import Recipe

torch.set_num_threads(1)


def _strategy(name):
    recipe = Recipe.from_dict({"strategy": name})
    strategy = DynamicSupernetStrategy(recipe)
    module = strategy.configure_oneshot_module(make_training_module(recipe, 3))
    return strategy, module


def _loader(n=20, **kwargs):
    return DataLoader(TensorDataset(torch.randn(n, 2), torch.randint(0, 3, (n,))), batch_size=4, **kwargs)


def test_importance_rebuilds_the_loader_and_shares_the_sampler():
    strategy, module = _strategy("pada")
    user = _loader(drop_last=True, shuffle=True)
    loader = strategy.train_dataloader(lambda: user, lambda: None)
    assert isinstance(loader.sampler, ImportanceDataSampler) and module.data_sampler is loader.sampler
    assert loader.batch_size == 4 and loader.drop_last
    batches = list(loader)
    assert all(len(b) == 3 for b in batches)  # (x, y, index)
    assert torch.cat([b[2] for b in batches]).tolist() == list(loader.sampler)


def test_uniform_keeps_the_users_loader():
    strategy, module = _strategy("spos")
    user = _loader()
    assert strategy.train_dataloader(lambda: user, lambda: None) is user
    assert module.data_sampler is None


class _Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2), 0


def test_importance_refuses_loaders_it_cannot_rebuild():
    strategy, _ = _strategy("spos_da")
    with pytest.raises(ConfigError) as info:
        strategy.train_dataloader(lambda: DataLoader(_Stream(), batch_size=2), lambda: None)
    assert info.value.field == "training.data_sampler"
    with pytest.raises(ConfigError):
        strategy.train_dataloader(lambda: [_loader(), _loader()], lambda: None)


def test_pada_runs_under_nas_experiment(tmp_path):
    """PA and DA through NasExperiment on a user's chain space (per-label PA distributions)."""
    import torch.nn as nn
    from nni.nas.evaluator.pytorch import Classification
    from nni.nas.evaluator.pytorch import DataLoader as NniDataLoader
    from nni.nas.experiment import NasExperiment
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

    from nni_dynamic_supernet import build_splits, create_strategy

    class Chain(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.block = LayerChoice({"conv": nn.Conv2d(4, 4, 3, padding=1), "skip": nn.Identity()}, label="block")
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

        def forward(self, x):
            return self.head(self.block(self.stem(x)))

    data = build_splits("digits_hard")
    train = NniDataLoader(torch.utils.data.Subset(data.train, range(256)), batch_size=64, shuffle=True, drop_last=True)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=NniDataLoader(data.val, batch_size=200),
                               num_classes=10, max_epochs=2, learning_rate=0.05, optimizer=torch.optim.SGD,
                               accelerator="cpu", enable_progress_bar=False, logger=False, enable_checkpointing=False)
    strategy = create_strategy("pada", searcher="random", max_evaluations=2, bn_batches=1)
    exp = NasExperiment(Chain(), evaluator, strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    exp.run()
    engine = strategy._nds_module.engine
    assert not engine.path_sampler.shared_across_labels
    assert [row["delta"] for row in engine.path_sampler.history] == [0.0, 0.5]
    assert [row["tau"] for row in engine.data_sampler.history] == [0.0, 0.5]
    assert engine.data_sampler.history[0]["seen_fraction"] == 1.0  # every example of epoch 0 was scored
    assert len(exp.export_top_models(top_k=1, formatter="dict")) == 1
