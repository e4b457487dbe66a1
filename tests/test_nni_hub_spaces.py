"""Every registered strategy trains and exports a valid architecture on NNI's hub spaces, through NasExperiment.

The list of hub spaces is :data:`nni_dynamic_supernet.spaces.nni_hub.HUB_SPACES` (the README's hub-space
table is generated from it). The default run trains every strategy on ``NasBench201`` and ``spos`` on
every hub space; the rest of the grid is marked slow. A user's own one-channel LayerChoice space trains
with every strategy (the input shape comes from the data, never a guess).
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.experiment import NasExperiment
from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from nni_dynamic_supernet import create_strategy
from nni_dynamic_supernet.registry import list_strategies
from nni_dynamic_supernet.spaces.nni_hub import HUB_SPACES, create_hub_space

torch.set_num_threads(1)

FAST_SPACE = "NasBench201"
FAST_STRATEGY = "spos"


def _evaluator(channels: int = 3, size: int = 32) -> Classification:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, channels, size, size, generator=g), torch.randint(0, 10, (32,), generator=g))
    return Classification(train_dataloaders=DataLoader(data, batch_size=8, shuffle=True),
                          val_dataloaders=DataLoader(data, batch_size=16), num_classes=10, max_epochs=1,
                          learning_rate=0.05, accelerator="cpu", limit_train_batches=2, enable_progress_bar=False,
                          logger=False, enable_checkpointing=False)


def _train(space: ModelSpace, strategy_name: str, tmp_path: Path, evaluator: Classification) -> tuple:
    strategy = create_strategy(strategy_name, searcher="random", max_evaluations=2, bn_batches=1)
    exp = NasExperiment(space, evaluator, strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    exp.run()
    return exp, strategy


def _check(exp: NasExperiment, strategy, fresh_space: ModelSpace) -> None:
    module = strategy._nds_module
    assert module.engine.steps_done >= 2  # two training batches, at least one optimizer step each
    assert all(math.isfinite(float(p.detach().abs().sum())) for p in module.model.parameters())
    top = exp.export_top_models(top_k=1, formatter="dict")
    assert len(top) == 1
    arch = top[0]
    assert set(arch) == {label for label in fresh_space.simplify() if label in arch}
    assert fresh_space.contains(arch), arch  # a valid architecture of the untouched space (constraints included)
    frozen = fresh_space.freeze(arch)
    assert frozen(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def _grid() -> list:
    params = []
    for hub in HUB_SPACES:
        for name in list_strategies():
            fast = hub.name == FAST_SPACE or name == FAST_STRATEGY
            marks = () if fast else (pytest.mark.slow,)
            params.append(pytest.param(hub.name, name, marks=marks, id=f"{hub.name}-{name}"))
    return params


@pytest.mark.parametrize("hub,strategy", _grid())
def test_strategy_trains_and_exports_on_hub_space(hub: str, strategy: str, tmp_path: Path) -> None:
    exp, nds_strategy = _train(create_hub_space(hub), strategy, tmp_path, _evaluator())
    _check(exp, nds_strategy, create_hub_space(hub))


class OneChannelSpace(ModelSpace):
    """A user's own LayerChoice space for one-channel 16 x 16 inputs (no ``nds_input_shape``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.block = LayerChoice({"conv3": nn.Conv2d(4, 4, 3, padding=1), "conv1": nn.Conv2d(4, 4, 1),
                                  "skip": nn.Identity()}, label="block")
        self.block2 = LayerChoice([nn.Conv2d(4, 4, 3, padding=1), nn.Identity()], label="block2")
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block(self.stem(x))))


# CaLR traces the space with the data's shape: spos_calr_ms is the default-run witness, the rest are slow.
@pytest.mark.parametrize("strategy", [pytest.param(name, marks=() if name in ("spos", "spos_calr_ms")
                                                   else (pytest.mark.slow,)) for name in list_strategies()])
def test_one_channel_space_trains_with_every_strategy(strategy: str, tmp_path: Path) -> None:
    exp, nds_strategy = _train(OneChannelSpace(), strategy, tmp_path, _evaluator(channels=1, size=16))
    assert nds_strategy.pristine_space.nds_input_shape == (1, 16, 16)  # read from the data
    assert nds_strategy._nds_module.engine.steps_done >= 2
    top = exp.export_top_models(top_k=1, formatter="dict")
    assert top[0]["block"] in ("conv3", "conv1", "skip")


def test_gm_on_a_label_without_own_weights_fails_at_start(tmp_path: Path) -> None:
    from nni_dynamic_supernet import ConfigError
    strategy = create_strategy("gm_spos", gm_labels=["s1_i0_exp"])
    space = create_hub_space("MobileNetV3Space")
    exp = NasExperiment(space, _evaluator(), strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    with pytest.raises(ConfigError, match=r"training\.gm_labels.*s1_i0_exp.*own no distinct weights") as info:
        strategy.mutate_model(space)  # what NasExperiment.run calls first, before any training
    assert "\n" not in str(info.value)


def test_input_choice_values_are_subsets_and_round_trip() -> None:
    from nni_dynamic_supernet.spaces.introspection import arch_for_nni, normalize_arch, search_space_of
    space = create_hub_space("DARTS")
    ss = search_space_of(space)
    label = "normal/input_3_0"
    assert ss[label] == [(0,), (1,), (2,)]  # node 3 picks one of its three predecessors
    arch = {k: v[-1] for k, v in ss.items()}
    exported = arch_for_nni(arch)
    assert exported[label] == [2] and space.contains(exported)
    assert normalize_arch(exported, ss) == arch


def test_nasbench101_supernet_cell_matches_the_constraint() -> None:
    import numpy as np

    from nni_dynamic_supernet.spaces.introspection import arch_is_valid, search_space_of
    from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet
    pristine = create_hub_space("NasBench101")
    supernet = mutate_to_supernet(create_hub_space("NasBench101"))
    ss = search_space_of(supernet)
    assert ss == search_space_of(pristine)
    set_arch = arch_setter(supernet)
    rng = np.random.RandomState(0)
    valid = 0
    for _ in range(12):
        arch = {label: values[rng.randint(len(values))] for label, values in ss.items()}
        set_arch(arch)  # every sampled graph runs, valid or not
        assert supernet(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        valid += arch_is_valid(pristine, arch)
    assert 0 < valid < 12  # the constraint does reject some random graphs


def test_sliced_choices_report_their_slice_gradient() -> None:
    """PA's importance of a kernel value: the mixed conv's gradient lies inside the sampled kernel slice."""
    from nni_dynamic_supernet.spaces.introspection import search_space_of
    from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules
    supernet = mutate_to_supernet(create_hub_space("MobileNetV3Space"))
    ss = search_space_of(supernet)
    entries = [(label, value, m) for label, value, m in op_modules(supernet, slices=True) if label == "stem_ks"]
    assert {value for _, value, _ in entries} == set(ss["stem_ks"]) == {3, 5}
    assert not [e for e in op_modules(supernet) if e[0] == "stem_ks"]  # no distinct weights: GM cannot split it
    arch = {label: values[0] for label, values in ss.items()}  # stem_ks = 3 of a 5 x 5 weight
    arch_setter(supernet)(arch)
    supernet(torch.randn(2, 3, 32, 32)).sum().backward()
    weight = entries[0][2].weight
    assert weight.shape[-1] == 5
    grad = weight.grad
    assert float(grad[..., 1:4, 1:4].abs().sum()) > 0  # the centred 3 x 3 slice trained
    outside = grad.clone()
    outside[..., 1:4, 1:4] = 0
    assert float(outside.abs().sum()) == 0.0  # so the tensor's gradient norm is the slice's


def test_ms_clusters_on_a_label_with_several_values() -> None:
    from nni_dynamic_supernet.recipe import Recipe
    from nni_dynamic_supernet.supernet import mutate_to_supernet, shared_labels
    from nni_dynamic_supernet.spaces.introspection import search_space_of_model
    from nni_dynamic_supernet.training.build import partition_for
    from nni_dynamic_supernet.training.optimizer_state.momentum import cluster_labels_for
    supernet = mutate_to_supernet(create_hub_space("MobileNetV3Space"))
    recipe = Recipe.from_dict({"strategy": "spos_ms"})
    space = search_space_of_model(supernet)
    partition = partition_for(recipe.training, supernet, seed=recipe.seed)
    labels = cluster_labels_for(recipe.training, space, shared_labels(supernet), partition, seed=recipe.seed)
    assert space["s0_width_mult"] == [0.25]  # the first label: one value, one cluster, no separation
    # Labels shared by several modules (the width multipliers) make it a cell-like space: a seeded random label.
    assert len(labels) == 1 and len(space[labels[0]]) >= 2
