"""Tests of supernet shifting: lr 0 is plain evolution, lr > 0 moves only sampled paths, re-evaluation."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from nni_dynamic_supernet.data import IndexedDataset
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.search.evaluate import SubnetEvaluator
from nni_dynamic_supernet.arch import arch_key
from nni_dynamic_supernet.search.searchers import Budget, EvolutionSearch, ScoreBoard
from nni_dynamic_supernet.search.shifting import ShiftedEvolution, SupernetShifter, shifting_optimizer
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)
LABELS = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]
# The searcher never proposes conv_1x1: its modules must stay bit-identical while the rest shifts.
NO_CONV1 = {label: ["none", "skip_connect", "conv_3x3", "avg_pool_3x3"] for label in LABELS}
EA = dict(population=6, generations=3, select_num=3, mutation_num=3, crossover_num=3, mutation_prob=0.3)


def _batches(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 8, 8, generator=g), torch.randint(0, 3, (size,), generator=g)) for _ in range(n)]


def _train_set(n=48, seed=5):
    g = torch.Generator().manual_seed(seed)
    return IndexedDataset(TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)))


def _supernet(seed=0):
    torch.manual_seed(seed)
    return mutate_to_supernet(create_space("nas_bench_201", **TINY))


def _evaluator(model):
    return SubnetEvaluator([model], [arch_setter(model)], lambda arch: 0, _batches(1, 1), _batches(2, 2))


def _shifter(evaluator, lr, update="per_generation", iters=2):
    return SupernetShifter(evaluator.models, evaluator.set_arch, evaluator.route, _train_set(), lr=lr,
                           iters=iters, batch_size=8, update=update, seed=3)


def _board(evaluator, limit=40):
    return ScoreBoard(lambda arch: evaluator.evaluate(arch), Budget(max_evaluations=limit))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("update,order", [("per_generation", "evaluate_first"), ("per_candidate", "train_first"),
                                          ("per_candidate", "evaluate_first")])
def test_lr_zero_is_exactly_plain_evolution(update, order):
    plain_model = _supernet()
    plain_board = _board(_evaluator(plain_model))
    plain = EvolutionSearch(7, None, **EA).run(NO_CONV1, plain_board)

    model = _supernet()
    before = _state(model)
    evaluator = _evaluator(model)
    shifter = _shifter(evaluator, lr=0.0, update=update)
    board = _board(evaluator)
    shifted = ShiftedEvolution(shifter, 7, None, order=order, **EA).run(NO_CONV1, board)

    assert shifter.candidates == len(board.history) > 0  # the shifting machinery really ran
    assert [r["arch"] for r in board.history] == [r["arch"] for r in plain_board.history]
    assert [r["accuracy"] for r in board.history] == [r["accuracy"] for r in plain_board.history]
    assert [r["loss"] for r in board.history] == [r["loss"] for r in plain_board.history]
    assert board.top(5) == plain_board.top(5)
    assert shifted["generations"] == plain["generations"]
    assert shifted["shift"]["reevaluations"] == 0 and shifted["shift"]["final_reevaluated"] == 0
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN buffers untouched


@pytest.mark.parametrize("update,order", [("per_generation", "evaluate_first"), ("per_candidate", "train_first")])
def test_positive_lr_moves_only_sampled_paths(update, order):
    model = _supernet()
    before = _state(model)
    evaluator = _evaluator(model)
    shifter = _shifter(evaluator, lr=0.05, update=update)
    trained: list[dict] = []
    original = shifter.train_candidate

    def spy(arch):
        trained.append(dict(arch))
        return original(arch)

    shifter.train_candidate = spy
    board = _board(evaluator)
    ShiftedEvolution(shifter, 7, None, order=order, **EA).run(NO_CONV1, board)
    after = _state(model)

    assert trained and shifter.steps > 1  # several steps: momentum and weight decay had a chance to leak
    assert any(not torch.equal(before[k], after[k]) for k in before)
    used = {(label, arch[label]) for arch in trained for label in arch}
    never = [(label, choice, module) for label, choice, module in op_modules(model) if (label, choice) not in used]
    assert any(choice == "conv_1x1" for _, choice, _ in never)
    names = {id(p): n for n, p in model.named_parameters()}
    for _, _, module in never:
        for p in module.parameters():
            assert torch.equal(before[names[id(p)]], p.detach()), names[id(p)]


def test_moved_supernet_reevaluates_and_rescores_the_final_top():
    model = _supernet()
    evaluator = _evaluator(model)
    shifter = _shifter(evaluator, lr=0.05, update="per_generation")
    board = _board(evaluator, limit=30)
    result = ShiftedEvolution(shifter, 7, None, final_reevaluate=3, **EA).run(NO_CONV1, board)

    assert len(board.history) <= 30  # every evaluation, re-evaluations included, is on the budget
    assert result["shift"]["reevaluations"] > 0
    keys = [arch_key(r["arch"]) for r in board.history]
    assert len(set(keys)) < len(keys)  # some architecture was scored twice, on different weights
    assert all(r["version"] == board.version for r in board.top(3))  # the final top is scored on the final weights
    assert board.version == shifter.version > 0


def test_per_generation_takes_one_step_per_generation():
    model = _supernet()
    evaluator = _evaluator(model)
    shifter = _shifter(evaluator, lr=0.01, update="per_generation")
    result = ShiftedEvolution(shifter, 7, None, **EA).run(NO_CONV1, _board(evaluator, limit=200))
    assert shifter.steps == len(result["generations"])


def test_shifting_optimizer_has_no_decay_on_vectors():
    model = _supernet()
    opt = shifting_optimizer(list(model.parameters()), 1e-4, 0.9, 4e-5)
    for group in opt.param_groups:
        assert all((p.ndim > 1) == (group["weight_decay"] > 0) for p in group["params"])


def test_train_first_needs_per_candidate_updates():
    evaluator = _evaluator(_supernet())
    with pytest.raises(ConfigError, match="per_candidate"):
        ShiftedEvolution(_shifter(evaluator, lr=0.0), 0, order="train_first")


def test_shift_batch_larger_than_training_split_is_refused():
    evaluator = _evaluator(_supernet())
    with pytest.raises(ConfigError, match="shift_batch_size"):
        SupernetShifter(evaluator.models, evaluator.set_arch, evaluator.route, _train_set(n=4), batch_size=8)


def test_shifter_batches_do_not_touch_the_global_rng():
    evaluator = _evaluator(_supernet())
    shifter = _shifter(evaluator, lr=0.0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    shifter.train_candidate({label: "conv_3x3" for label in LABELS})
    assert torch.equal(torch.rand(3), expected)


def test_copy_of_supernet_shifts_independently():
    model = _supernet()
    before = _state(model)
    clone = copy.deepcopy(model)
    evaluator = _evaluator(clone)
    shifter = _shifter(evaluator, lr=0.05, update="per_candidate")
    shifter.train_candidate({label: "conv_3x3" for label in LABELS})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in clone.state_dict().items())


def _official_shifter(evaluator, lr, update, iters=2):
    shifter = SupernetShifter(evaluator.models, evaluator.set_arch, evaluator.route, _train_set(), lr=lr,
                              iters=iters, batch_size=8, update=update, seed=3, bn_from_shift=True)
    evaluator.calibrator = shifter.calibrate
    return shifter


@pytest.mark.parametrize("update,order", [("per_generation", "evaluate_first"), ("per_candidate", "train_first")])
def test_official_bn_order_with_lr_zero_scores_like_plain_evolution_recalibrated_on_the_shift_batches(update, order):
    # Plain evolution in the official tester's BN order: reset the path's BN statistics, run the candidate
    # in train mode on the next `iters` shifting batches, score in eval mode. No separate recalibration.
    from nni_dynamic_supernet.search.shifter import _BatchStream
    plain_model = _supernet()
    plain_eval = _evaluator(plain_model)
    stream = _BatchStream(_train_set(), 8, 3, "cpu")

    def recalibrate_on_stream(leaf, arch):
        for _ in range(2):
            plain_model(stream.next()[0])
        return True

    plain_eval.calibrator = recalibrate_on_stream
    plain_board = _board(plain_eval)
    EvolutionSearch(7, None, **EA).run(NO_CONV1, plain_board)

    model = _supernet()
    before = _state(model)
    evaluator = _evaluator(model)
    shifter = _official_shifter(evaluator, 0.0, update)
    board = _board(evaluator)
    ShiftedEvolution(shifter, 7, None, order=order, **EA).run(NO_CONV1, board)

    assert shifter.candidates == len(board.history) == evaluator.calibrated_by_hook > 0  # shifts were the recalibration
    assert [r["arch"] for r in board.history] == [r["arch"] for r in plain_board.history]
    assert [r["accuracy"] for r in board.history] == [r["accuracy"] for r in plain_board.history]
    assert [r["loss"] for r in board.history] == [r["loss"] for r in plain_board.history]
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN buffers put back


def test_official_bn_order_pays_no_separate_recalibration_and_still_shifts():
    model = _supernet()
    evaluator = _evaluator(model)
    calls = []
    original = evaluator.calib_batches
    evaluator.calib_batches = [(x, y) for x, y in original]
    shifter = _official_shifter(evaluator, 0.05, "per_candidate")
    forward = model.forward

    def counting(x):
        calls.append(x.shape[0])
        return forward(x)

    model.forward = counting
    board = _board(evaluator, limit=12)
    ShiftedEvolution(shifter, 7, None, order="train_first", final_reevaluate=0, **EA).run(NO_CONV1, board)
    n = len(board.history)
    assert shifter.steps == 2 * n and evaluator.calibrated_by_hook == n
    # Per evaluation: 2 shifting batches of 8 (the recalibration) + 1 validation batch of 16; no calibration batch.
    assert sum(calls) == n * (2 * 8 + 16)


def test_parent_rescoring_is_opt_in():
    from nni_dynamic_supernet.recipe import Recipe
    assert Recipe().search.shift_reevaluate_parents is False
    assert ShiftedEvolution(_shifter(_evaluator(_supernet()), 0.0), 7).reevaluate_parents is False

    def parent_rescores(reevaluate):
        model = _supernet()
        evaluator = _evaluator(model)
        shifter = _shifter(evaluator, lr=0.05, update="per_generation")
        board = _board(evaluator, limit=200)
        searcher = ShiftedEvolution(shifter, 7, None, final_reevaluate=0, reevaluate_parents=reevaluate, **EA)
        paid = []
        original = searcher.refresh_parents

        def counting(parents, b):
            before = len(b.history)
            out = original(parents, b)
            paid.append(len(b.history) - before)
            return out

        searcher.refresh_parents = counting
        searcher.run(NO_CONV1, board)
        return sum(paid)

    assert parent_rescores(False) == 0  # the budget goes to candidates only, as in the paper and the code
    assert parent_rescores(True) > 0


def test_default_shifting_budget_is_the_papers_640_samples_per_candidate():
    from pathlib import Path

    from nni_dynamic_supernet.recipe import Recipe, load_recipe
    s = Recipe().search
    assert s.shift_iters * s.shift_batch_size == 640 and s.shift_bn == "shift"
    template = load_recipe(Path(__file__).resolve().parents[2] / "config_templates" / "shifting.yaml")
    assert template.search.shift_iters * template.search.shift_batch_size == 640


def test_official_bn_order_refuses_scores_taken_before_per_candidate_steps():
    from nni_dynamic_supernet.recipe import Recipe
    with pytest.raises(ConfigError, match="search.shift_bn"):
        Recipe.from_dict({"search": {"searcher": "shifted_evolution", "shift_update": "per_candidate",
                                     "shift_order": "evaluate_first"}})
    Recipe.from_dict({"search": {"searcher": "shifted_evolution", "shift_update": "per_candidate",
                                 "shift_order": "evaluate_first", "shift_bn": "recalibrate"}})
