"""Host-device synchronisations per training step.

On a GPU every read of a device value on the host (``.item()``, ``.tolist()``, ``bool()``,
``float()``, ``int()``) stalls the CPU until the GPU has caught up, so the hot loop keeps
them to one per optimizer step (the gradient check that keeps the weights of the last good
step). On the CPU the test counts the calls through patched ``torch.Tensor`` methods (``.numpy()``
included: the CPU gradient check reads its flat copy that way); with
CUDA, ``torch.cuda.set_sync_debug_mode`` counts the real ones.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from nni_dynamic_supernet.pipeline import prepare
from nni_dynamic_supernet.recipe import Recipe
from tests.tiny_recipe import tiny_recipe

torch.set_num_threads(1)
READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


class _CountReads:
    """Count host reads of tensors while active (patched methods of ``torch.Tensor``)."""

    def __init__(self) -> None:
        self.count = 0
        self.saved: dict = {}

    def __enter__(self) -> "_CountReads":
        for name in READS:
            original = getattr(torch.Tensor, name)
            self.saved[name] = original

            def counted(tensor, *args, _original=original, **kwargs):
                self.count += 1
                return _original(tensor, *args, **kwargs)
            setattr(torch.Tensor, name, counted)
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)


def _engine(strategy: str, device: str = "cpu", **training):
    from benchmarks.common import batches
    run = prepare(Recipe.from_dict(tiny_recipe(strategy=strategy, training=training)))
    run.module.to(device)
    engine = run.module.build_engine(100)
    data = [tuple(t.to(device) for t in batch) for batch in batches(run, 8)]
    return engine, data


@pytest.mark.parametrize("strategy", ["spos", "spos_calr_ms", "fairnas"])
def test_one_host_read_per_step(strategy: str) -> None:
    engine, data = _engine(strategy)
    for step, batch in enumerate(data[:3]):  # warm-up: caches, lazily built tables
        engine.train_step(batch, step)
    with _CountReads() as reads:
        for step, batch in enumerate(data[3:], start=3):
            engine.train_step(batch, step)
    assert reads.count == len(data[3:]), f"{reads.count} host reads in {len(data[3:])} steps"
    with _CountReads() as reads:
        engine.check_deferred()  # the deferred loss checks: one read for the whole epoch
    assert reads.count == 1


def test_deferred_loss_check_names_the_step() -> None:
    from nni_dynamic_supernet.training.engine import NonFiniteLossError
    engine, data = _engine("spos")
    engine.train_step(data[0], 0)
    engine._loss_flags[-1] = torch.tensor(False)  # as if step 0's loss had been NaN with finite gradients
    with pytest.raises(NonFiniteLossError, match="at step 0"):
        engine.check_deferred()
    engine.check_deferred()  # consumed: nothing left to raise


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_syncs_per_step() -> None:
    """With CUDA: the synchronisations torch reports per spos step are at most one (the gradient check)."""
    engine, data = _engine("spos", "cuda")
    for step, batch in enumerate(data[:3]):
        engine.train_step(batch, step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step, batch in enumerate(data[3:], start=3):
                engine.train_step(batch, step)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) <= len(data[3:]), [str(w.message) for w in syncs[:5]]


@pytest.mark.parametrize("strategy", ["spos", "fairnas"])
def test_clipping_from_the_check_norms_is_clip_grad_norm(strategy: str, monkeypatch) -> None:
    """Clipping with the norms the gradient check computed gives bit-identical weights to ``clip_grad_norm_``."""
    from nni_dynamic_supernet.training.engine import SupernetEngine
    fused, data = _engine(strategy, grad_clip=0.05)  # small enough to clip every step
    reference, _ = _engine(strategy, grad_clip=0.05)
    monkeypatch.setattr(reference, "_one_kind", lambda: False)  # the torch.nn.utils.clip_grad_norm_ path
    assert isinstance(reference, SupernetEngine) and fused._one_kind()
    for step, batch in enumerate(data):
        fused.train_step(batch, step)
        reference.train_step(batch, step)
    for a, b in zip(fused.params, reference.params):
        assert torch.equal(a, b)


@pytest.mark.parametrize("strategy,grad_clip", [("spos", 5.0), ("spos", 0.05), ("spos_calr_ms", 5.0), ("fairnas", 5.0)])
def test_flat_gradient_check_trains_what_the_per_tensor_norms_train(strategy: str, grad_clip: float, monkeypatch) -> None:
    """The CPU flat check (one flattened copy) nulls, skips clipping and clips exactly as the per-tensor norms do."""
    from nni_dynamic_supernet.training import grad_checks
    flat, data = _engine(strategy, grad_clip=grad_clip)
    reference, _ = _engine(strategy, grad_clip=grad_clip)
    monkeypatch.setattr(reference, "_flat_check", lambda: None)  # every step on checked_grads' norms
    decided = []
    real = grad_checks.flat_check
    monkeypatch.setattr(grad_checks, "flat_check", lambda params: decided.append(real(params)) or decided[-1])
    for step, batch in enumerate(data):
        flat.train_step(batch, step)
        reference.train_step(batch, step)
        for a, b in zip(flat.params, reference.params):
            assert (a.grad is None) == (b.grad is None)  # the same gradients nulled (all-zero ones)
    assert len(decided) >= len(data) and all(d is not None for d in decided)  # the flat path ran every step
    for a, b in zip(flat.params, reference.params):
        assert torch.equal(a, b)
    for a, b in zip(flat.optimizer.state.values(), reference.optimizer.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))


def test_flat_gradient_check_leaves_tiny_nonfinite_and_empty_gradients_to_the_norms() -> None:
    """Gradients whose squares underflow, NaN, inf, huge or too many: undecided (None), never a wrong nulling."""
    from nni_dynamic_supernet.training.grad_checks import FLAT_MAX as _FLAT_MAX
    from nni_dynamic_supernet.training.grad_checks import flat_check as _flat_check
    from nni_dynamic_supernet.training.grad_checks import null_zero_grads
    params = [torch.nn.Parameter(torch.ones(3)) for _ in range(3)]
    for p, g in zip(params, ([1.0, -2.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0])):
        p.grad = torch.tensor(g)
    kept, total = _flat_check(params)
    assert kept == [params[0], params[2]] and params[1].grad is None
    assert total == pytest.approx(float(torch.linalg.vector_norm(torch.tensor([1.0, 2.0, 0.5]))), rel=1e-6)
    for bad in (1e-25, float("nan"), float("inf"), 1e35):
        params[1].grad = torch.tensor([0.0, bad, 0.0])
        assert _flat_check(params) is None
        assert params[0].grad is not None and params[1].grad is not None  # nothing it could not decide was nulled
    params[1].grad = torch.tensor([0.0, 1e-25, 0.0])  # a zero norm (float32 squares underflow): the norms null it
    assert null_zero_grads(params) is True and params[1].grad is None
    assert _flat_check([]) == ([], 0.0)
    big = torch.nn.Parameter(torch.ones(_FLAT_MAX + 1))
    big.grad = torch.ones(_FLAT_MAX + 1)
    assert _flat_check([big]) is None  # large gradients: the per-tensor norms are not overhead-bound
