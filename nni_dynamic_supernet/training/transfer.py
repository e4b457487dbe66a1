"""Supernet transfer: a trained supernet gets a new classifier head for another label set.

Supernet Shifting (Zhang et al., CVPR 2024, transfer mode) transfers a supernet to a new dataset
by keeping the feature extractor, replacing the classifier with a fresh fully connected layer of the
new class count, and fine-tuning during the shifted search. The paper fine-tunes the
whole network (better than freezing the encoder); freezing is offered as an option.

The head is found, not configured: it is the last ``nn.Linear`` in ``modules()`` order,
which is NAS-Bench-201's ``classifier`` and the final FC of the chain spaces. A space
whose head is not the last ``nn.Linear`` is rejected only if it has none at all.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ..errors import ConfigError

__all__ = ["find_classifier", "replace_classifier", "freeze_features", "head_parameters"]


def find_classifier(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """``(parent module, attribute name, linear layer)`` of the model's classifier: its last ``nn.Linear``."""
    found: Optional[tuple[nn.Module, str, nn.Linear]] = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                found = (parent, name, child)
    if found is None:
        raise ConfigError("search.transfer_to", type(model).__name__,
                          "the space has no nn.Linear classifier to replace; transfer needs one")
    return found


def replace_classifier(model: nn.Module, num_classes: int, seed: int) -> nn.Linear:
    """Put a fresh ``nn.Linear(in_features, num_classes)`` in place of the classifier; return it.

    The new layer has PyTorch's default initialisation drawn under ``seed`` (without
    touching the global RNG stream of the caller), on the old layer's device and dtype,
    and keeps the old layer's bias setting. Every other weight is left as it was.
    """
    if num_classes < 2:
        raise ConfigError("search.transfer_to", num_classes, "the target needs at least 2 classes")
    parent, name, old = find_classifier(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    head = head.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, name, head)
    return head


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The classifier's parameters."""
    return list(find_classifier(model)[2].parameters())


def freeze_features(model: nn.Module) -> int:
    """Stop gradients to everything but the classifier; return the number of frozen tensors."""
    head = {id(p) for p in head_parameters(model)}
    frozen = 0
    for p in model.parameters():
        if id(p) not in head:
            p.requires_grad_(False)
            frozen += 1
    return frozen
