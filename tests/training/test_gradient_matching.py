"""Gradient-matching scores: which weights are shared, and the distance matrix's properties."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nni_dynamic_supernet.nni_bridge import arch_setter, mutate_to_supernet, op_modules
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.training.build import search_space_of_model
from nni_dynamic_supernet.training.gradient_matching import draw_context, gradient_distances, shared_parameters

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return mutate_to_supernet(create_space("nas_bench_201", **TINY))


def _batches(rng: np.random.RandomState):
    g = torch.Generator().manual_seed(int(rng.randint(2 ** 31)))
    return torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)


def test_shared_parameters_follow_the_nb201_code(supernet) -> None:
    ops = op_modules(supernet)
    shared = {id(p) for p in shared_parameters(supernet, ops, "cell/0_1")}
    names = {name for name, p in supernet.named_parameters() if id(p) in shared}
    assert not any(n.startswith(("stem", "classifier", "lastact")) for n in names)
    # The reduction blocks between the cells and the other labels' ops are shared ...
    assert any(n.startswith("cells.1.") for n in names)
    other = {id(p) for label, _, m in ops if label == "cell/1_2" for p in m.parameters()}
    assert other and other <= shared
    # ... the scored label's own ops are not.
    own = {id(p) for label, _, m in ops if label == "cell/0_1" for p in m.parameters()}
    assert own and not own & shared


def test_distances_are_symmetric_bounded_and_leave_the_model_untouched(supernet) -> None:
    model = supernet
    space = search_space_of_model(model)
    set_arch = arch_setter(model)
    shared = shared_parameters(model, op_modules(model), "cell/0_1")
    before = copy.deepcopy(model.state_dict())
    for p in model.parameters():
        p.grad = None

    def forward(arch, x):
        set_arch(arch)
        return model(x)

    d = gradient_distances(forward, F.cross_entropy, model, shared, space, "cell/0_1", _batches, 3,
                           np.random.RandomState(0))
    assert d.shape == (5, 5)
    assert np.allclose(d, d.T, atol=1e-9)
    assert (d >= -1e-9).all() and (d <= 2 + 1e-9).all()
    assert np.allclose(np.diag(d), 0.0, atol=1e-6)
    assert d[np.triu_indices(5, 1)].max() > 1e-3  # ops do disagree somewhat
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN buffers restored
    assert all(p.grad is None for p in model.parameters())  # no .grad written
    again = gradient_distances(forward, F.cross_entropy, model, shared, space, "cell/0_1", _batches, 3,
                               np.random.RandomState(0))
    assert np.allclose(d, again)  # same rng -> same batches and context paths -> same scores


def test_context_paths_stay_inside_the_mask() -> None:
    mask = {"a": [1, 2], "b": ["x"]}
    rng = np.random.RandomState(0)
    for _ in range(20):
        ctx = draw_context(mask, rng)
        assert ctx["a"] in (1, 2) and ctx["b"] == "x"
