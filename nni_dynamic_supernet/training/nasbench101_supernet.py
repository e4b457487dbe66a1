"""Path-sampling supernet version of NNI's ``NasBench101Cell`` (which NNI's one-shot strategies refuse)."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

__all__ = ["PathSamplingNasBench101Cell"]


class PathSamplingNasBench101Cell(BaseSuperNetModule):
    """Placeholder: not implemented yet."""

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict, mutate_kwargs: dict) -> Any:
        return None
