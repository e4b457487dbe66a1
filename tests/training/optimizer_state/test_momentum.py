"""Tests of the optimizer-state policies: shared momentum and momentum separation (MS)."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from nni_dynamic_supernet.training.optimizer_state.momentum import SeparatedState, SharedState, default_cluster_labels

torch.set_num_threads(1)

SGD_KW = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def _batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def _loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _assert_same(a, b):
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)


def _run_policy(policy, make_opt, archs, batches, seed=0):
    """Train with one optimizer whose state is switched by ``policy`` (what the engine does)."""
    model = _model(seed)
    opt = make_opt(model.parameters())
    for arch, batch in zip(archs, batches):
        opt.zero_grad(set_to_none=True)
        _loss(model, batch).backward()
        policy.activate(opt, policy.key(arch))
        opt.step()
    return model, opt


def _run_reference(make_opt, clusters, archs, batches, label="e", seed=0):
    """K independent torch optimizers over the same (shared) weights, as in the DYNAS code."""
    model = _model(seed)
    opts = {k: make_opt(model.parameters()) for k in clusters}
    for arch, batch in zip(archs, batches):
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        _loss(model, batch).backward()
        opts[arch[label]].step()
    return model, opts


@pytest.mark.parametrize("policy_factory", [SharedState, lambda: SeparatedState(["e"])], ids=["shared", "ms-1"])
def test_one_cluster_equals_plain_sgd(policy_factory):
    batches = _batches(5)
    archs = [{"e": "only"}] * 5
    make = lambda params: torch.optim.SGD(params, **SGD_KW)  # noqa: E731
    ours, opt = _run_policy(policy_factory(), make, archs, batches)
    ref, ref_opts = _run_reference(make, ["only"], archs, batches)
    _assert_same(_params(ours), _params(ref))
    # Momentum buffers too.
    ref_opt = ref_opts["only"]
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(opt.state[p]["momentum_buffer"], ref_opt.state[q]["momentum_buffer"])
    # And the run actually moved the weights.
    assert any(not torch.equal(a, b) for a, b in zip(_params(ours), _params(_model(0))))


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_k_clusters_equal_k_separate_optimizers(optim):
    make = ((lambda params: torch.optim.SGD(params, **SGD_KW)) if optim == "sgd"
            else (lambda params: torch.optim.Adam(params, lr=0.01, weight_decay=1e-4)))
    clusters = ["a", "b", "c"]
    order = ["a", "b", "a", "a", "c", "b", "a", "c"]
    archs = [{"e": k, "other": i % 2} for i, k in enumerate(order)]
    batches = _batches(len(order), seed=3)
    policy = SeparatedState(["e"])
    ours, opt = _run_policy(policy, make, archs, batches)
    ref, ref_opts = _run_reference(make, clusters, archs, batches)
    _assert_same(_params(ours), _params(ref))
    assert policy.num_states == 3
    store = policy._states()
    for k in clusters:
        state = store[(0, k)]
        ref_state = ref_opts[k].state
        for p, q in zip(ours.parameters(), ref.parameters()):
            assert set(state[p]) == set(ref_state[q])
            for name in state[p]:
                assert torch.equal(torch.as_tensor(state[p][name]), torch.as_tensor(ref_state[q][name])), (k, name)
    # The result differs from a single shared state (otherwise MS would be a no-op).
    shared, _ = _run_policy(SharedState(), make, archs, batches)
    assert any(not torch.equal(a, b) for a, b in zip(_params(ours), _params(shared)))


def test_states_allocated_lazily_and_untouched_by_other_clusters():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), **SGD_KW)
    policy = SeparatedState(["e"])
    batches = _batches(3)
    for batch, cluster in zip(batches, ["a", "a", "b"]):
        opt.zero_grad(set_to_none=True)
        _loss(model, batch).backward()
        if cluster == "b":
            before = {id(p): s["momentum_buffer"].clone() for p, s in policy._states()[(0, "a")].items()}
        policy.activate(opt, policy.key({"e": cluster}))
        opt.step()
    assert policy.num_states == 2
    for p, s in policy._states()[(0, "a")].items():
        assert torch.equal(s["momentum_buffer"], before[id(p)])
    assert opt.state is policy._states()[(0, "b")]


def test_keys_include_leaf_and_all_labels():
    policy = SeparatedState(["x", "y"])
    assert policy.key({"x": 1, "y": "b", "z": 0}, leaf=2) == (2, 1, "b")
    assert policy.key({"x": 1, "y": "b", "z": 5}) == policy.key({"x": 1, "y": "b", "z": 0})
    assert SharedState().key({"x": 1}, leaf=3) == 3
    with pytest.raises(ValueError):
        SeparatedState([])


@pytest.mark.parametrize("serialize", [False, True])
@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_state_dict_round_trip_by_parameter_index(serialize, optim):
    # Like torch's Optimizer.state_dict, the returned tensors alias the live state, so an in-memory
    # snapshot is deep-copied; a checkpoint goes through torch.save / torch.load(weights_only=True).
    make = ((lambda params: torch.optim.SGD(params, **SGD_KW)) if optim == "sgd"
            else (lambda params: torch.optim.Adam(params, lr=0.01)))
    order = ["a", "b", "a"]
    archs = [{"e": k} for k in order]
    batches = _batches(6, seed=5)
    policy = SeparatedState(["e"])
    model, opt = _run_policy(policy, make, archs, batches[:3])
    saved_weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = policy.state_dict(list(model.parameters()))
    if serialize:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    else:
        state = copy.deepcopy(state)
    # Keys are plain data: parameter indices and lists.
    assert all(isinstance(i, int) for entry in state["states"] for i in entry["state"])
    assert sorted(tuple(e["key"]) for e in state["states"]) == [(0, "a"), (0, "b")]

    # Continue the original run for three more steps.
    tail = [{"e": k} for k in ["b", "b", "a"]]
    for arch, batch in zip(tail, batches[3:]):
        opt.zero_grad(set_to_none=True)
        _loss(model, batch).backward()
        policy.activate(opt, policy.key(arch))
        opt.step()

    # A fresh model/optimizer/policy restored from the snapshot must follow exactly.
    fresh_model = _model(seed=42)
    fresh_model.load_state_dict(saved_weights)
    fresh_opt = make(fresh_model.parameters())
    fresh_policy = SeparatedState(["e"])
    fresh_policy.load_state_dict(state, list(fresh_model.parameters()))
    assert fresh_policy.num_states == 2
    for arch, batch in zip(tail, batches[3:]):
        fresh_opt.zero_grad(set_to_none=True)
        _loss(fresh_model, batch).backward()
        fresh_policy.activate(fresh_opt, fresh_policy.key(arch))
        fresh_opt.step()
    _assert_same(_params(fresh_model), _params(model))


def test_default_cluster_labels():
    labels = ["l0", "l1", "l2", "l3"]
    # Chain space: the first searchable layer(s).
    assert default_cluster_labels(labels, set(), seed=0) == ["l0"]
    assert default_cluster_labels(labels, set(), seed=0, count=2) == ["l0", "l1"]
    assert default_cluster_labels(labels, set(), seed=0, exclude=["l0"]) == ["l1"]
    # Cell space: seeded random labels, never the excluded split label.
    picks = {tuple(default_cluster_labels(labels, set(labels), seed=s)) for s in range(30)}
    assert len(picks) > 1
    assert default_cluster_labels(labels, set(labels), seed=5) == default_cluster_labels(labels, set(labels), seed=5)
    for s in range(30):
        assert "l2" not in default_cluster_labels(labels, set(labels), seed=s, exclude=["l2"])
    assert len(default_cluster_labels(labels, set(labels), seed=1, count=9)) == 4
    with pytest.raises(ValueError):
        default_cluster_labels(["a"], set(), seed=0, exclude=["a"])
