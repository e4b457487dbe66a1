"""Partition trees: routing, few-shot as a one-level tree, GM-NAS splits, inherit/restart and resume."""
from __future__ import annotations

import copy
import io
import itertools
import math

import numpy as np
import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules, shared_labels
from nni_dynamic_supernet.training.build import build_engine, partition_for
from nni_dynamic_supernet.training.partition import (ExhaustivePartition, GradientMatchingPartition,
                                                     even_split_epochs)

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)
SPACE = {f"e{i}": ["a", "b", "c", "d", "e"] for i in range(3)}


def _all_archs(space):
    labels = list(space)
    for combo in itertools.product(*(space[label] for label in labels)):
        yield dict(zip(labels, combo))


def _covers_once(partition) -> None:
    for arch in _all_archs(partition.space):
        owners = [i for i, leaf in enumerate(partition.leaves) if all(arch[k] in v for k, v in leaf.items())]
        assert owners == [partition.route(arch)]


def test_exhaustive_partition_is_a_one_level_tree() -> None:
    p = ExhaustivePartition(SPACE, "e1")
    assert p.num_leaves == 5 and p.max_leaves == 5
    assert p.leaves == [{**SPACE, "e1": [c]} for c in SPACE["e1"]]  # the order few-shot NAS always had
    root = p.tree()["nodes"][0]
    assert root["split"]["label"] == "e1" and root["split"]["groups"] == [[c] for c in SPACE["e1"]]
    assert len(root["children"]) == 5
    _covers_once(p)


def test_gm_routing_covers_every_arch_once_after_splits() -> None:
    p = GradientMatchingPartition(SPACE, [1, 2], [2, 3], batches=1, edge_rule="random", seed=0)
    assert p.max_leaves == 6
    p._split_leaf(0, "e0", [["a", "c"], ["b", "d", "e"]], 1, {})
    for slot in range(2):
        p._split_leaf(slot, "e2", [["a", "b"], ["c", "d"], ["e"]], 2, {})
    assert p.num_leaves == 6
    _covers_once(p)
    leaves = p.tree()["leaves"]
    assert sorted(p.tree()["nodes"][n]["slot"] for n in leaves) == list(range(6))


def test_even_split_epochs_give_the_paper_schedule() -> None:
    assert even_split_epochs(60, 2) == [20, 40]
    assert even_split_epochs(3, 1) == [1]


@pytest.mark.parametrize("overrides,field", [
    ({"training.split_epochs": [40, 20]}, "training.split_epochs"),
    ({"training.split_epochs": [20, 60]}, "training.split_epochs"),
    ({"training.split_epochs": [20]}, "training.split_epochs"),
    ({"training.split_branching": [1, 2]}, "training.split_branching"),
    ({"training.gm_edge_rule": "best"}, "training.gm_edge_rule"),
    ({"training.gm_restart": "all"}, "training.gm_restart"),
    ({"training.gm_batches": 0}, "training.gm_batches"),
])
def test_bad_gm_settings_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        Recipe.from_dict({"strategy": "gm_spos", "training": {"epochs": 60}}, overrides)


def test_branching_larger_than_every_label_is_refused() -> None:
    with pytest.raises(ConfigError, match="split_branching"):
        GradientMatchingPartition(SPACE, [1], [6])
    with pytest.raises(ConfigError, match="gm_labels"):
        GradientMatchingPartition(SPACE, [1], [2], labels=["nope"])


# ---------------------------------------------------------------------------------------------- with an engine
def _engine(recipe: Recipe, seed: int = 0):
    torch.manual_seed(seed)
    supernet = mutate_to_supernet(create_space("nas_bench_201", **TINY))
    partition = partition_for(recipe.training, supernet, seed=recipe.seed)
    models = [supernet] + [copy.deepcopy(supernet) for _ in range(partition.max_leaves - 1)]
    partition.remember_initial_weights(supernet.state_dict())
    t = recipe.training
    optimizer = torch.optim.SGD(models[0].parameters(), lr=0.05, momentum=0.9, weight_decay=t.weight_decay)
    for m in models[1:]:
        optimizer.add_param_group({"params": list(m.parameters())})
    return build_engine(recipe.training, models, [arch_setter(m) for m in models], optimizer, partition, 50,
                        shared_labels(models[0]), op_modules=[op_modules(m) for m in models], seed=recipe.seed)


def _batch(i: int):
    g = torch.Generator().manual_seed(1000 + i)
    return torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)


def _draw(rng: np.random.RandomState):
    return _batch(int(rng.randint(100)))


def _gm_recipe(**overrides) -> Recipe:
    base = {"training.epochs": 4, "training.split_epochs": [1, 2], "training.gm_batches": 2,
            "training.optimizer_state": "separated"}
    base.update(overrides)
    return Recipe.from_dict({"strategy": "gm_spos", "seed": 0}, base)


def _train(engine, steps: range) -> None:
    for step in steps:
        engine.train_step(_batch(step), step)


def _opt_states(engine, leaf: int) -> dict:
    store = engine.state_policy._states()
    index = {id(p): i for i, p in enumerate(engine.params)}
    out = {}
    for key, state in store.items():
        if (key[0] if isinstance(key, tuple) else key) == leaf:
            out[key[1:] if isinstance(key, tuple) else ()] = {index[id(p)]: s for p, s in state.items()}
    return out


def test_non_final_split_inherits_weights_and_every_optimizer_state() -> None:
    engine = _engine(_gm_recipe())
    _train(engine, range(6))
    made = engine.partition.maybe_split(1, engine, _draw)
    assert len(made) == 1 and made[0]["slots"] == [0, 1]
    assert engine.partition.num_leaves == 2
    for (k0, v0), (k1, v1) in zip(engine.models[0].state_dict().items(), engine.models[1].state_dict().items()):
        assert torch.equal(v0, v1)
    parent, child = _opt_states(engine, 0), _opt_states(engine, 1)
    assert parent and set(parent) == set(child)  # every MS cluster was handed over
    offset = sum(1 for _ in engine.models[0].parameters())
    for cluster, states in parent.items():
        for i, s in states.items():
            t = child[cluster][i + offset]["momentum_buffer"]
            assert torch.equal(s["momentum_buffer"], t) and s["momentum_buffer"] is not t
    node = engine.partition.tree()["nodes"][0]
    assert node["split"]["label"] == made[0]["label"]
    sim = np.array(node["split"]["similarity"])
    assert sim.shape == (5, 5) and node["split"]["cut_cost"] is not None


def test_final_split_restarts_leaves_from_the_initial_weights() -> None:
    engine = _engine(_gm_recipe(**{"training.gm_fix_schedule": True}))
    initial = copy.deepcopy(engine.models[0].state_dict())
    _train(engine, range(4))
    engine.partition.maybe_split(1, engine, _draw)
    _train(engine, range(4, 8))
    made = engine.partition.maybe_split(2, engine, _draw)
    assert len(made) == 2 and engine.partition.num_leaves == 4
    for slot in range(4):
        state = engine.models[slot].state_dict()
        assert all(torch.equal(state[k], initial[k]) for k in initial)
        assert _opt_states(engine, slot) == {}
    assert engine.partition.initial_weights is None
    # fix_sche: the LR schedule starts again at the restart and spans the remaining steps (total 50).
    assert engine.partition.restart_step == 8
    assert engine.partition.schedule_step(8, 50) == 0 and engine.partition.schedule_step(29, 50) == 25
    # Training after the split samples each path inside its leaf's mask.
    for step in range(8, 14):
        engine.train_step(_batch(step), step)
        path = engine.last_paths[0]
        assert sum(all(path[k] in v for k, v in leaf.items()) for leaf in engine.partition.leaves) == 1


def test_restart_none_inherits_at_the_final_split_too() -> None:
    engine = _engine(_gm_recipe(**{"training.gm_restart": "none", "training.split_epochs": [1],
                                   "training.split_branching": [3]}))
    _train(engine, range(4))
    engine.partition.maybe_split(1, engine, _draw)
    assert engine.partition.num_leaves == 3
    ref = engine.models[0].state_dict()
    for slot in (1, 2):
        assert all(torch.equal(engine.models[slot].state_dict()[k], ref[k]) for k in ref)


def test_checkpoint_round_trip_restores_tree_leaves_and_optimizer_states() -> None:
    recipe = _gm_recipe()
    a = _engine(recipe)
    _train(a, range(5))
    a.partition.maybe_split(1, a, _draw)
    _train(a, range(5, 10))
    buffer = io.BytesIO()
    torch.save({"engine": a.state_dict(), "models": [m.state_dict() for m in a.models]}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    b = _engine(recipe, seed=1)  # other initial weights: everything must come from the checkpoint
    for model, state in zip(b.models, saved["models"]):
        model.load_state_dict(state)
    b.load_state_dict(saved["engine"])
    b.steps_done = a.steps_done  # the bridge restores it from the trainer's step count (on_train_start)
    assert b.partition.leaves == a.partition.leaves
    assert b.partition.tree() == a.partition.tree()
    assert b.partition.levels_done == 1
    for leaf in range(2):
        sa, sb = _opt_states(a, leaf), _opt_states(b, leaf)
        assert sa.keys() == sb.keys() and sa
        for cluster in sa:
            for i in sa[cluster]:
                assert torch.equal(sa[cluster][i]["momentum_buffer"], sb[cluster][i]["momentum_buffer"])
    # Resumed and uninterrupted runs make the same final split (restart from the saved initial weights) and steps.
    for engine in (a, b):
        engine.partition.maybe_split(2, engine, _draw)
        _train(engine, range(10, 14))
    assert a.partition.leaves == b.partition.leaves
    for ma, mb in zip(a.models, b.models):
        for (ka, va), (kb, vb) in zip(ma.state_dict().items(), mb.state_dict().items()):
            assert torch.equal(va, vb), ka


# ---------------------------------------------------------------------------------------------- fidelity (issue 15)
def _to_final_split(**overrides):
    """An engine (50 scheduled steps) trained 4 steps, split, 4 more steps, split again with a restart at step 8."""
    engine = _engine(_gm_recipe(**overrides))
    _train(engine, range(4))
    engine.partition.maybe_split(1, engine, _draw)
    _train(engine, range(4, 8))
    engine.partition.maybe_split(2, engine, _draw)
    return engine


@pytest.mark.parametrize("mode,t_max", [("fresh", 50), ("stretched", 42)])
def test_restarted_leaves_start_at_the_schedule_top_like_a_new_torch_cosine(mode: str, t_max: int) -> None:
    # Official train_search.py: each restarted child gets a new optimizer and a new CosineAnnealingLR,
    # over the whole run (fix_sche=0, our `fresh`) or over the epochs left (fix_sche=1, `stretched`).
    engine = _to_final_split(**{"training.gm_restart_schedule": mode})
    assert engine.partition.restart_step == 8
    param = torch.nn.Parameter(torch.zeros(1))
    official = torch.optim.SGD([param], lr=0.05)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(official, float(t_max))
    for step in range(8, 20):
        engine.train_step(_batch(step), step)
        expected = official.param_groups[0]["lr"]
        if mode == "fresh":
            assert engine.last_lr == pytest.approx(expected, rel=1e-9, abs=1e-12)
        else:  # whole schedule mapped onto the steps left: the same curve up to rounding to a step
            assert engine.last_lr == pytest.approx(expected, abs=0.05 * math.pi / t_max)
        if step == 8:
            assert engine.last_lr == 0.05  # the top of the schedule, in both official modes
        official.step()
        cosine.step()


def test_continue_schedule_is_the_old_behaviour_and_gm_fix_schedule_means_stretched() -> None:
    engine = _to_final_split(**{"training.gm_restart_schedule": "continue"})
    engine.train_step(_batch(8), 8)
    assert engine.last_lr == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 8 / 50)))
    assert _gm_recipe().training.gm_restart_schedule is None
    assert partition_for(_gm_recipe().training, mutate_to_supernet(create_space("nas_bench_201", **TINY)),
                         seed=0).restart_schedule == "fresh"
    fixed = _gm_recipe(**{"training.gm_fix_schedule": True})
    assert partition_for(fixed.training, mutate_to_supernet(create_space("nas_bench_201", **TINY)),
                         seed=0).restart_schedule == "stretched"


def test_per_leaf_budget_trains_every_sub_supernet_for_its_whole_phase() -> None:
    engine = _to_final_split()
    assert engine.partition.budget == "per_leaf"
    trained = []
    for step in range(8, 14):
        engine.train_step(_batch(step), step)
        trained.append(sorted(engine.partition.route(p) for p in engine.last_paths))
    assert trained == [[0, 1, 2, 3]] * 6  # every leaf, every step, each on its own mask
    report = engine.partition.budget_report()
    # 4 steps of the root, 4 of each of 2 leaves, 6 of each of 4 restarted leaves.
    assert report == {"budget": "per_leaf", "steps_per_leaf": [6, 6, 6, 6], "total_steps": 4 + 2 * 4 + 4 * 6,
                      "loop_steps": 14, "cost_factor": 36 / 14}


def test_shared_budget_is_the_equal_compute_ablation() -> None:
    engine = _to_final_split(**{"training.partition_budget": "shared"})
    for step in range(8, 14):
        engine.train_step(_batch(step), step)
        assert len(engine.last_paths) == 1
    report = engine.partition.budget_report()
    assert report["budget"] == "shared" and report["total_steps"] == report["loop_steps"] == 14
    assert sum(report["steps_per_leaf"]) == 6


def test_few_shot_sub_supernets_each_get_the_whole_run() -> None:
    p = ExhaustivePartition(SPACE, "e1")  # as the fsnas presets build it: per_leaf by default
    assert [p.step_leaves() for _ in range(5)] == [[0, 1, 2, 3, 4]] * 5
    report = p.budget_report()
    assert report["steps_per_leaf"] == [5] * 5 and report["total_steps"] == 25 and report["loop_steps"] == 5


@pytest.mark.parametrize("strategy", ["gm_spos", "gm_spos_calr_ms", "gm_fairnas", "fsnas", "fsnas_calr_ms"])
def test_partitioned_presets_default_to_the_papers_budget_and_repeats(strategy: str) -> None:
    t = Recipe.from_dict({"strategy": strategy}).training
    assert t.partition_budget == "per_leaf" and t.gm_batches == 100


def test_split_reports_how_stable_the_edge_choice_is() -> None:
    engine = _engine(_gm_recipe(**{"training.gm_batches": 4}))
    _train(engine, range(3))
    engine.partition.maybe_split(1, engine, _draw)
    split = engine.partition.tree()["nodes"][0]["split"]
    stability = split["stability"]
    assert stability["repeats"] == 4 and set(stability["scores"]) == set(split["candidates"])
    # The across-cut distance is linear in the matrix: the mean of the per-repeat scores is the chosen score.
    for label, score in stability["scores"].items():
        assert score["mean"] == pytest.approx(split["candidates"][label]["across"], rel=1e-9, abs=1e-12)
        assert score["se"] >= 0
    runner = stability["runner_up"]
    chosen = stability["scores"][split["label"]]
    assert stability["margin"] == pytest.approx(chosen["mean"] - stability["scores"][runner]["mean"])
    assert stability["margin"] >= 0  # max_cut picks the largest mean score
    assert stability["noise"] == pytest.approx(math.hypot(chosen["se"], stability["scores"][runner]["se"]))
    assert 0.0 <= stability["group_agreement"] <= 1.0
