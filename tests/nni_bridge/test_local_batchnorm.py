"""SyncBatchNorm for multi-GPU DDP: one rank alone computes local statistics (BN recalibration, search)."""
from __future__ import annotations

import copy

import torch

from nni_dynamic_supernet.nni_bridge import local_batchnorm, revert_sync_batchnorm


def _nets():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain))
    return plain, synced


def test_local_batchnorm_is_plain_batchnorm_and_is_undone() -> None:
    plain, synced = _nets()
    bn = synced[1]
    assert isinstance(bn, torch.nn.SyncBatchNorm)
    x = torch.randn(5, 3, 6, 6)
    plain.train(), synced.train()
    with local_batchnorm(synced):
        assert not isinstance(bn, torch.nn.SyncBatchNorm)  # no process group needed: one rank alone runs it
        out = synced(x)
    assert torch.equal(out, plain(x))
    assert torch.equal(bn.running_mean, plain[1].running_mean)  # the same module object, updated in place
    assert isinstance(bn, torch.nn.SyncBatchNorm) and synced[1] is bn


def test_revert_keeps_the_modules_and_their_state() -> None:
    _, synced = _nets()
    bn = synced[1]
    params = [id(p) for p in synced.parameters()]
    revert_sync_batchnorm(synced)
    assert synced[1] is bn and not isinstance(bn, torch.nn.SyncBatchNorm)
    assert [id(p) for p in synced.parameters()] == params
    synced.train()
    synced(torch.randn(2, 3, 6, 6))
