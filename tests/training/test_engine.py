"""Tests of the supernet training step on a tiny NNI-mutated NAS-Bench-201 supernet.

The engine is assembled the way the bridge does it (``build_engine`` over NNI's one-shot
mutation), without Lightning: one step is ``engine.train_step(batch, step)``.
"""
from __future__ import annotations

import copy
import io
import itertools

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules, shared_labels
from nni_dynamic_supernet.spaces.introspection import search_space_of_model
from nni_dynamic_supernet.training.build import build_engine, partition_for
from nni_dynamic_supernet.training.engine import NonFiniteLossError
from nni_dynamic_supernet.training.partition import ExhaustivePartition
from nni_dynamic_supernet.training.paths import PathSampler

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)
TOTAL = 20
LR = 0.05
_PRISTINE: list = []


def _pristine():
    """One pristine space for the whole module: its complexity model (CaLR) is built once."""
    if not _PRISTINE:
        _PRISTINE.append(create_space("nas_bench_201", **TINY))
    return _PRISTINE[0]


def _recipe(strategy, **overrides):
    return Recipe.from_dict({"strategy": strategy, "seed": 0}, overrides)


def _engine(recipe, total=TOTAL, models=None):
    torch.manual_seed(0)
    if models is None:
        supernet = mutate_to_supernet(copy.deepcopy(_pristine()))
        partition = partition_for(recipe.training, supernet, seed=recipe.seed)
        models = [supernet] + [copy.deepcopy(supernet) for _ in range(partition.num_leaves - 1)]
    else:
        partition = partition_for(recipe.training, models[0], seed=recipe.seed)
    t = recipe.training
    optimizer = torch.optim.SGD(models[0].parameters(), lr=LR, momentum=t.momentum, nesterov=t.nesterov,
                                weight_decay=t.weight_decay)
    for leaf in models[1:]:
        optimizer.add_param_group({"params": list(leaf.parameters())})
    return build_engine(recipe.training, models, [arch_setter(m) for m in models], optimizer, partition, total,
                        shared_labels(models[0]), pristine_space=_pristine(),
                        op_modules=[op_modules(m) for m in models], seed=recipe.seed)


def _batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _all_states(engine):
    return list(engine.state_policy._states().values())


def _has_state(engine, p):
    return any(p in state and state[p] for state in _all_states(engine))


def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


class FixedPaths(PathSampler):
    """A path sampler that trains given paths (to force a particular architecture)."""

    def __init__(self, paths):
        super().__init__(0)
        self.paths = paths

    def sample(self, space):
        return [dict(p) for p in self.paths]


def _param_ops(engine, leaf=0):
    """(label, choice, module) of candidate ops that hold parameters."""
    return [(label, choice, m) for label, choice, m in engine.op_modules[leaf] if any(True for _ in m.parameters())]


# ---------------------------------------------------------------------------------------------- (a) SPOS
@pytest.mark.parametrize("strategy", ["spos", "spos_calr_ms"])
def test_spos_step_leaves_ops_off_the_path_untouched(strategy):
    engine = _engine(_recipe(strategy, **{"training.unused_grads": "none"}))
    model = engine.models[0]
    ops = _param_ops(engine)
    before = {id(m): [p.detach().clone() for p in m.parameters()] for _, _, m in ops}
    classifier_before = model.classifier.weight.detach().clone()
    used = set()
    for step in range(3):
        engine.zero_grad()  # fresh grads: the check below is about this step only
        snap = {id(m): [p.detach().clone() for p in m.parameters()] for _, _, m in ops}
        engine.train_step(_batch(step), step)
        assert len(engine.last_paths) == 1
        arch = engine.last_paths[0]
        used |= set(arch.items())
        off = [(label, choice, m) for label, choice, m in ops if arch[label] != choice]
        on = [(label, choice, m) for label, choice, m in ops if arch[label] == choice]
        assert off, "every label has an unused conv"
        for label, choice, m in off:
            for p, old in zip(m.parameters(), snap[id(m)]):
                assert torch.equal(p, old), (label, choice)
                assert p.grad is None, (label, choice)
        for label, choice, m in on:
            for p, old in zip(m.parameters(), snap[id(m)]):
                if p.grad is not None:
                    assert not torch.equal(p, old), (label, choice)
    # Ops never chosen in these steps are unchanged and hold no optimizer state in any cluster.
    never = [(label, choice, m) for label, choice, m in ops if (label, choice) not in used]
    assert never
    for label, choice, m in never:
        for p, old in zip(m.parameters(), before[id(m)]):
            assert torch.equal(p, old)
            assert not _has_state(engine, p), (label, choice)
    # Shared, always-active parameters were trained.
    assert not torch.equal(model.classifier.weight, classifier_before)
    assert _has_state(engine, model.classifier.weight)


def test_zero_gradient_of_dead_op_is_not_stepped():
    """An op on the path whose output is multiplied away (NB201 'none' edges) gets an all-zero gradient.

    Like the official SPOS code (``src/Supernet/train.py`` nulls all-zero gradients before the
    step) it must get neither weight decay nor momentum.
    """
    engine = _engine(_recipe("spos"))
    # conv on 0_1 feeds node 1, whose outgoing edges are both 'none': the conv is dead.
    arch = {"cell/0_1": "conv_3x3", "cell/0_2": "none", "cell/1_2": "none", "cell/0_3": "skip_connect",
            "cell/1_3": "none", "cell/2_3": "none"}
    engine.path_sampler = FixedPaths([arch])
    dead = [m for label, choice, m in engine.op_modules[0] if (label, choice) == ("cell/0_1", "conv_3x3")]
    assert len(dead) == 3  # one per cell
    before = [[p.detach().clone() for p in m.parameters()] for m in dead]
    stem_before = engine.models[0].stem[0].weight.detach().clone()
    for step in range(2):
        engine.train_step(_batch(step), step)
    for m, old in zip(dead, before):
        for p, o in zip(m.parameters(), old):
            assert torch.equal(p, o)
            assert not _has_state(engine, p)
    assert not torch.equal(engine.models[0].stem[0].weight, stem_before)


# ---------------------------------------------------------------------------------------------- (b) FairNAS
def test_fairnas_step_runs_every_candidate_once():
    engine = _engine(_recipe("fairnas"))
    calls: dict = {}
    handles = []
    for label, choice, m in engine.op_modules[0]:
        handles.append(m.register_forward_hook(
            lambda mod, inp, out, key=(label, choice, id(m)): calls.__setitem__(key, calls.get(key, 0) + 1)))
    before = {id(m): [p.detach().clone() for p in m.parameters()] for _, _, m in engine.op_modules[0]}
    try:
        engine.train_step(_batch(), 0)
    finally:
        for h in handles:
            h.remove()
    paths = engine.last_paths
    assert len(paths) == 5
    # Every candidate module of every cell ran exactly once in the step.
    assert len(calls) == len(engine.op_modules[0])
    assert set(calls.values()) == {1}
    # One accumulated optimizer step: every op whose summed gradient was non-zero moved.
    moved = 0
    for label, choice, m in _param_ops(engine):
        for p, old in zip(m.parameters(), before[id(m)]):
            if p.grad is not None:
                assert not torch.equal(p, old)
                moved += 1
    assert moved > 0
    assert engine.state_policy.num_states == 1


def test_fairnas_updates_more_ops_than_spos():
    def changed_ops(strategy):
        engine = _engine(_recipe(strategy))
        before = {id(m): [p.detach().clone() for p in m.parameters()] for _, _, m in _param_ops(engine)}
        engine.train_step(_batch(), 0)
        return {(label, choice) for label, choice, m in _param_ops(engine)
                if any(not torch.equal(p, b) for p, b in zip(m.parameters(), before[id(m)]))}

    fair, spos = changed_ops("fairnas"), changed_ops("spos")
    assert len(spos) <= 6
    assert len(fair) > len(spos)


# ---------------------------------------------------------------------------------------------- (c) FairNAS + MS
def test_cluster_fair_steps_only_the_chosen_cluster_state():
    engine = _engine(_recipe("fairnas_calr_ms"))
    labels = engine.state_policy.labels
    assert len(labels) == 1 and labels[0] in engine.partition.space
    label = labels[0]
    store = engine.state_policy._states()
    engine.train_step(_batch(0), 0)
    first = engine.last_paths[0][label]
    assert all(p[label] == first for p in engine.last_paths)
    assert list(store) == [(0, first)]
    saved = {id(p): {k: v.clone() for k, v in s.items()} for p, s in store[(0, first)].items()}
    assert saved
    # Step until another cluster is trained; the first cluster's momentum must not move.
    for step in range(1, 30):
        engine.train_step(_batch(step), step)
        if engine.last_paths[0][label] != first:
            break
    else:
        pytest.fail("cluster sampler never left the first cluster")
    other = engine.last_paths[0][label]
    assert set(store) == {(0, first), (0, other)}
    for p, s in store[(0, first)].items():
        for k, v in s.items():
            assert torch.equal(v, saved[id(p)][k])
    assert engine.optimizer.state is store[(0, other)]


def test_spos_ms_uses_one_state_per_visited_cluster():
    engine = _engine(_recipe("spos_ms"))
    label = engine.state_policy.labels[0]
    visited = set()
    for step in range(12):
        engine.train_step(_batch(step), step)
        visited.add(engine.last_paths[0][label])
    assert set(engine.state_policy._states()) == {(0, v) for v in visited}
    assert len(visited) > 1


# ---------------------------------------------------------------------------------------------- (d) CaLR weighting
def test_calr_multi_path_weights_losses_by_path_factor():
    engine = _engine(_recipe("fairnas_calr_ms"))
    assert engine.grad_clip is None
    space = engine.partition.space
    labels = list(space)
    # Three paths in one cluster (same choice on the MS label) with different complexities.
    ms = engine.state_policy.labels[0]
    paths = []
    for ops in (["none"] * 6, ["conv_3x3"] * 6, ["conv_1x1", "skip_connect", "conv_3x3"] * 2):
        arch = dict(zip(labels, ops))
        arch[ms] = "conv_1x1"
        paths.append(arch)
    step = TOTAL // 2
    factors = [engine.lr_policy.path_factor(step, a) for a in paths]
    assert len({round(f, 6) for f in factors}) == 3 and all(0 < f < 1 for f in factors)

    captured = {}

    def capture():
        captured["grads"] = [None if p.grad is None else p.grad.clone() for p in engine.params]

    engine.step_fn = capture
    x, y = _batch(3)
    index = torch.arange(len(y))
    loss = engine.update_rule.apply(engine, 0, paths, (x, y, index), step)
    assert engine.last_lr == pytest.approx(LR)  # constant base LR: CaLR lives in the loss weights

    # Manual computation of the weighted gradient sum.
    engine.optimizer.zero_grad(set_to_none=True)
    losses = []
    for arch, factor in zip(paths, factors):
        engine.set_arch_fns[0](arch)
        value = torch.nn.functional.cross_entropy(engine.models[0](x), y)
        (value * factor).backward()
        losses.append(value.item())
    assert float(loss) == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    compared = 0
    for p, g in zip(engine.params, captured["grads"]):
        if g is None or (p.grad is None and not g.any()):  # unused_grads zero (the preset) fills zeros
            assert p.grad is None or not p.grad.any()
            continue
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)
        compared += 1
    assert compared > 0

    # Unweighted sum differs: the weighting is real.
    engine.optimizer.zero_grad(set_to_none=True)
    for arch in paths:
        engine.set_arch_fns[0](arch)
        torch.nn.functional.cross_entropy(engine.models[0](x), y).backward()
    assert not torch.allclose(engine.models[0].classifier.weight.grad,
                              captured["grads"][[id(p) for p in engine.params].index(id(engine.models[0].classifier.weight))])


def test_calr_single_path_scales_the_lr():
    engine = _engine(_recipe("spos_calr"))
    for step in (0, 5, 15, TOTAL + 3):
        engine.train_step(_batch(step), step)
        arch = engine.last_paths[0]
        expected = LR * engine.lr_policy.path_factor(step, arch)
        assert engine.last_lr == pytest.approx(expected)
        assert all(g["lr"] == pytest.approx(expected) for g in engine.optimizer.param_groups)
    assert engine.lr_policy.gamma_max == 4.0
    lo, hi = engine.lr_policy.c_min, engine.lr_policy.c_max
    assert 0 < lo < hi


def test_static_lr_follows_cosine():
    import math
    engine = _engine(_recipe("spos"))
    for step in (0, 10, 19):
        engine.train_step(_batch(step), step)
        assert engine.last_lr == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * step / TOTAL)))


# ---------------------------------------------------------------------------------------------- (e) partition
def test_exhaustive_partition_routes_every_arch_to_one_leaf():
    recipe = _recipe("fsnas")
    supernet = mutate_to_supernet(copy.deepcopy(_pristine()))
    partition = partition_for(recipe.training, supernet, seed=recipe.seed)
    assert isinstance(partition, ExhaustivePartition)
    space = search_space_of_model(supernet)
    assert partition.num_leaves == len(space[partition.split_label]) == 5
    counts = [0] * partition.num_leaves
    labels = list(space)
    for values in itertools.product(*space.values()):
        arch = dict(zip(labels, values))
        owners = [i for i, leaf in enumerate(partition.leaves)
                  if all(arch[label] in allowed for label, allowed in leaf.items())]
        assert len(owners) == 1
        assert partition.route(arch) == owners[0]
        counts[owners[0]] += 1
    assert sum(counts) == 5 ** 6
    assert counts == [5 ** 5] * 5
    with pytest.raises(ConfigError):
        partition.route({**dict(zip(labels, [space[l][0] for l in labels])), labels[0]: "sep_conv"})


def test_partition_split_label_must_exist():
    supernet = mutate_to_supernet(copy.deepcopy(_pristine()))
    with pytest.raises(ConfigError) as info:
        partition_for(_recipe("fsnas", **{"training.split_label": "nope"}).training, supernet, seed=0)
    assert info.value.field == "training.split_label"


@pytest.mark.parametrize("budget", ["shared", "per_leaf"])
def test_fsnas_leaves_do_not_share_parameters_and_train_separately(budget):
    from nni_dynamic_supernet.nni_bridge import SupernetModule, make_training_module
    recipe = _recipe("fsnas_calr_ms", **{"training.partition_budget": budget})
    space = copy.deepcopy(_pristine())
    mutate_to_supernet(space)
    training_module = make_training_module(recipe, num_classes=3)
    training_module.set_model(space)
    module = SupernetModule(training_module, recipe, pristine_space=_pristine())
    module.ensure_partition()
    models = module.supernets()
    assert len(models) == 5
    pointers = [{p.data_ptr() for p in m.parameters()} for m in models]
    for a, b in itertools.combinations(range(len(models)), 2):
        assert not pointers[a] & pointers[b]
    engine = _engine(recipe, models=models)
    # MS must not cluster on the few-shot split label.
    assert engine.partition.split_label not in engine.state_policy.labels
    if budget == "per_leaf":  # every sub-supernet trains on every step, each on its own split choice
        for step in range(2):
            before = [_snapshot(m) for m in models]
            engine.train_step(_batch(step), step)
            assert [engine.partition.route(a) for a in engine.last_paths] == list(range(5))
            for i, m in enumerate(models):
                assert not all(torch.equal(p, before[i][n]) for n, p in m.named_parameters()), (step, i)
        assert {key[0] for key in engine.state_policy._states()} == set(range(5))
        return
    for step in range(6):
        before = [_snapshot(m) for m in models]
        engine.train_step(_batch(step), step)
        arch = engine.last_paths[0]
        leaf = engine.partition.route(arch)
        assert arch[engine.partition.split_label] == engine.partition.leaves[leaf][engine.partition.split_label][0]
        for i, m in enumerate(models):
            same = all(torch.equal(p, before[i][n]) for n, p in m.named_parameters())
            assert same == (i != leaf), (step, i, leaf)
        # The step used an optimizer state of its own leaf.
        active = [key for key, state in engine.state_policy._states().items() if state is engine.optimizer.state]
        assert len(active) == 1 and active[0][0] == leaf
    assert {key[0] for key in engine.state_policy._states()} <= set(range(5))


def test_leaf_sampling_is_proportional_and_seeded():
    supernet = mutate_to_supernet(copy.deepcopy(_pristine()))
    a, b = (partition_for(_recipe("fsnas").training, supernet, seed=0) for _ in range(2))
    draws = [a.sample_leaf() for _ in range(200)]
    assert draws == [b.sample_leaf() for _ in range(200)]
    assert set(draws) == set(range(5))


# ---------------------------------------------------------------------------------------------- robustness
def _weights(engine) -> list:
    return [p.detach().clone() for p in engine.params]


def _optimizer_state(engine) -> list:
    return [{k: v.clone() for k, v in engine.optimizer.state[p].items()} for p in engine.params
            if p in engine.optimizer.state]


@pytest.mark.parametrize("strategy", ["spos", "fairnas", "spos_calr_ms"])
def test_nonfinite_loss_stops_before_the_weights_move(strategy):
    engine = _engine(_recipe(strategy))
    engine.train_step(_batch(0), 0)  # momentum buffers exist: a late step would change them too
    before, state_before = _weights(engine), _optimizer_state(engine)
    x, y = _batch()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"step 4 training subnet \{"):
        engine.train_step((x, y), 4)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(engine)))
    after = _optimizer_state(engine)
    assert len(after) == len(state_before)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(state_before, after) for k in a)


def test_skip_nonfinite_drops_the_step_and_counts_it():
    engine = _engine(_recipe("spos"))
    engine.skip_nonfinite = True
    before = _weights(engine)
    x, y = _batch()
    x[0, 0, 0, 0] = float("nan")
    loss = engine.train_step((x, y), 5)
    assert not torch.isfinite(loss)
    assert engine.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(engine)))
    assert all(p.grad is None for p in engine.params)
    engine.train_step(_batch(1), 6)  # training goes on with the next good batch
    assert engine.skipped_steps == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, _weights(engine)))


def test_exploding_gradient_is_caught_before_clipping_hides_it():
    engine = _engine(_recipe("spos"))  # grad_clip 5 would rescale an inf norm to NaN weights
    x, y = _batch()
    before = _weights(engine)
    with pytest.raises(NonFiniteLossError, match="step 7"):
        engine.train_step((x * 1e38, y), 7)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(engine)))


def test_engine_state_dict_round_trip_resumes_identically():
    recipe = _recipe("spos_ms")
    a = _engine(recipe)
    for step in range(3):
        a.train_step(_batch(step), step)
    buffer = io.BytesIO()
    torch.save({"engine": a.state_dict(), "models": [m.state_dict() for m in a.models]}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    b = _engine(recipe)
    for m, s in zip(b.models, saved["models"]):
        m.load_state_dict(s)
    b.load_state_dict(saved["engine"])
    for step in range(3, 6):
        a.train_step(_batch(step), step)
        b.train_step(_batch(step), step)
        assert a.last_paths == b.last_paths
    for pa, pb in zip(a.params, b.params):
        assert torch.equal(pa, pb)


def test_build_engine_rejects_constraint_with_fair_sampler():
    with pytest.raises(ConfigError) as info:
        _engine(_recipe("fairnas", **{"training.sampling_constraint": {"metric": "params", "max": 1e9}}))
    assert info.value.field == "training.sampling_constraint"


def test_impossible_sampling_constraint_is_config_error():
    engine = _engine(_recipe("spos", **{"training.sampling_constraint": {"metric": "params", "max": 1}}))
    with pytest.raises(ConfigError) as info:
        engine.train_step(_batch(), 0)
    assert info.value.field == "training.sampling_constraint"



class _UserSpace:
    """Factory of a user's own (unregistered) model space, built lazily so NNI imports stay in tests."""

    @staticmethod
    def build(width):
        from nni.nas.nn.pytorch import LayerChoice, ModelSpace
        from torch import nn

        class TinyUserSpace(ModelSpace):
            def __init__(self, width):
                super().__init__()
                self.conv = LayerChoice([nn.Conv2d(1, width, 1), nn.Conv2d(1, width, 3, padding=1)], label="op")
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.fc = nn.Linear(width, 3)

            def forward(self, x):
                return self.fc(self.pool(self.conv(x)).flatten(1))

        space = TinyUserSpace(width)
        space.nds_input_shape = (1, 8, 8)
        return space


@pytest.mark.parametrize("kind", ["registered", "user"])
def test_complexity_model_cache_is_per_space(kind, monkeypatch):
    """A space must never get the complexity model of a different space.

    Keying the cache by ``id(space)`` alone is unsafe: CPython reuses the id of a freed
    object, so a later space (another size, another run in the same process) could silently
    get stale CaLR bounds. Forcing equal ids simulates that reuse deterministically.
    """
    from nni_dynamic_supernet.spaces import measures
    monkeypatch.setattr(measures, "id", lambda obj: 12345, raising=False)
    if kind == "registered":
        small = create_space("nas_bench_201", **TINY)
        large = create_space("nas_bench_201", **{**TINY, "channels": 4})
    else:
        small, large = _UserSpace.build(2), _UserSpace.build(4)
    cm_small = measures.complexity_model_for(small)
    assert measures.complexity_model_for(small) is cm_small  # cached
    cm_large = measures.complexity_model_for(large)
    assert cm_large is not cm_small
    assert cm_large.bounds("params")[1] > cm_small.bounds("params")[1]
    assert measures.complexity_model_for(small).bounds("params") == cm_small.bounds("params")


def test_train_step_restores_train_mode_of_every_module_after_eval():
    """The step's cheap train-mode check still catches a model (or one submodule) left in eval mode."""
    engine = _engine(_recipe("spos"))
    model = engine.models[0]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    engine.train_step(_batch(), 0)
    model.eval()
    engine.train_step(_batch(1), 1)
    assert all(m.training for m in model.modules())
    bns[0].eval()  # one submodule only: the root still says training
    engine.train_step(_batch(2), 2)
    assert all(m.training for m in model.modules())


def test_unused_grads_zero_is_the_torch_1_8_zero_grad_step_of_the_dynas_code():
    """DYNAS (PyTorch 1.8) zero-filled gradients: off-path weights get weight decay and the active momentum."""
    assert _recipe("spos").training.unused_grads == "none"
    for strategy in ("spos_calr", "spos_ms", "spos_calr_ms", "fairnas_calr_ms", "fsnas_calr_ms"):
        assert _recipe(strategy).training.unused_grads == "zero", strategy
    recipe = _recipe("spos_calr_ms")
    engine = _engine(recipe)
    reference = copy.deepcopy(engine.models[0])
    t = recipe.training
    ops = _param_ops(engine)
    engine.train_step(_batch(0), 0)
    arch = engine.last_paths[0]
    # The reference: every parameter holds a gradient tensor (zeros where unused), clip, one SGD step.
    arch_setter(reference)(arch)
    torch.nn.functional.cross_entropy(reference(_batch(0)[0]), _batch(0)[1]).backward()
    for p in reference.parameters():
        if p.grad is None or not p.grad.any():
            p.grad = torch.zeros_like(p)
    torch.nn.utils.clip_grad_norm_([p for p in reference.parameters()], t.grad_clip)
    sgd = torch.optim.SGD(reference.parameters(), lr=engine.last_lr, momentum=t.momentum, nesterov=t.nesterov,
                          weight_decay=t.weight_decay)
    sgd.step()
    for (name, p), q in zip(engine.models[0].named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8, msg=name)
    off = [m for label, choice, m in ops if arch[label] != choice and any(True for _ in m.parameters())]
    moved = [m for m in off if any(_has_state(engine, p) for p in m.parameters())]
    assert off and moved == off  # every op off the path was stepped (decay + momentum state)
