"""Gradient-matching scores: which weights are shared, and the distance matrix's properties."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules
from nni_dynamic_supernet.spaces.introspection import search_space_of_model
from nni_dynamic_supernet.training.partition.gradient_matching import (cell_connected, draw_context, gradient_distances,
                                                              shared_parameters)

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


NB201_OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
# The official code's edge order (eid 0..5: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) in NNI's labels.
OFFICIAL_EDGES = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]


def _official_check_connect(arch: dict) -> bool:
    """GM-NAS search_model_ws.py ``check_connect``, written over op names instead of one-hot rows."""
    e = [arch[label] != "none" for label in OFFICIAL_EDGES]
    return e[3] or (e[1] and e[5]) or (e[0] and e[4]) or (e[0] and e[2] and e[5])


def test_connectivity_is_the_official_check_connect_on_every_nb201_cell() -> None:
    import itertools
    disconnected = 0
    for ops in itertools.product(NB201_OPS, repeat=6):
        arch = dict(zip(OFFICIAL_EDGES, ops))
        assert cell_connected(arch) == _official_check_connect(arch), arch
        disconnected += not cell_connected(arch)
    assert 0 < disconnected < 5 ** 6


def test_context_paths_are_connected_cells_only() -> None:
    mask = {label: list(NB201_OPS) for label in OFFICIAL_EDGES}
    rng = np.random.RandomState(0)
    draws = [draw_context(mask, rng) for _ in range(3000)]
    assert all(cell_connected(arch) for arch in draws)
    # Uniform draws without the check would give disconnected cells (about 1 in 45 here): the rejection matters.
    plain = np.random.RandomState(0)
    raw = [{label: ops[plain.randint(len(ops))] for label, ops in mask.items()} for _ in range(3000)]
    assert sum(not cell_connected(arch) for arch in raw) > 20
    # Labels that are not cell edges are ignored; a mask with no connected path still returns a draw.
    assert cell_connected({"layer1": "none", "cell/0_1": "conv_3x3"})
    stuck = {label: ["none"] for label in OFFICIAL_EDGES}
    assert draw_context(stuck, rng) == {label: "none" for label in OFFICIAL_EDGES}
