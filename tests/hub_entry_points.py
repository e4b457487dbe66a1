"""NNI's DARTS and NAS-Bench-101 hub cell spaces registered as our spaces, as a third-party package would.

:func:`hub_cell_spaces` adds them to the ``nni_dynamic_supernet.spaces`` entry points for a test
module, so ``nds train`` and ``nds export`` reach them by name like any registered space.
"""
from __future__ import annotations

import importlib.metadata
from typing import Any, Iterator

import pytest

from nni_dynamic_supernet import catalog
from nni_dynamic_supernet.spaces.nni_hub import create_hub_space

#: NNI hub cell spaces, registered under these names by :func:`hub_cell_spaces`.
HUB_CELL_SPACES = {"hub_darts": "DARTS", "hub_nasbench101": "NasBench101"}


def _hub_factory(hub: str) -> Any:
    def factory(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> Any:
        return create_hub_space(hub, num_classes)  # both take 3-channel images of any size
    return factory


class _EntryPoint:
    def __init__(self, name: str, hub: str) -> None:
        self.name, self.hub = name, hub

    def load(self) -> Any:
        return _hub_factory(self.hub)


@pytest.fixture(scope="module")
def hub_cell_spaces() -> Iterator[None]:
    """DARTS and NAS-Bench-101 registered as spaces, as a package's entry points would."""
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") != catalog.SPACE_GROUP:
            return real(**kwargs)  # other groups (and the no-argument form torch's plugins call) unchanged
        return [*real(**kwargs), *(_EntryPoint(name, hub) for name, hub in HUB_CELL_SPACES.items())]

    mp = pytest.MonkeyPatch()
    catalog._entry_points.cache_clear()
    mp.setattr(catalog.metadata, "entry_points", entry_points)
    yield
    mp.undo()
    catalog._entry_points.cache_clear()
