"""StandaloneAccuracy: table entries first, then a per-seed cache of archs trained with the table's protocol."""
from __future__ import annotations

import json

from nni_dynamic_supernet.bench.build import sample_architectures
from nni_dynamic_supernet.bench.standalone_lookup import StandaloneAccuracy, _key
from nni_dynamic_supernet.bench.tables import get_table
from nni_dynamic_supernet.ranking import GroundTruth


def test_standalone_cache_is_per_seed(tmp_path) -> None:
    """Off-table archs come from the per-seed cache, table archs from the table, each over the chosen seeds."""
    spec = get_table("v2")
    truth = GroundTruth.load(spec.path)
    in_table = truth.archs()[0]
    off, legacy = [a for a in sample_architectures(400, 7) if truth.accuracy(a) is None][:2]
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({_key(off): {"0": 50.0, "1": 60.0}, _key(legacy): 55.0}))
    both = StandaloneAccuracy(cache, spec)
    assert both(off) == 55.0 and both(in_table) == truth.accuracy(in_table) and both.trained == 0
    one = StandaloneAccuracy(cache, spec, seeds=[1])
    assert one(off) == 60.0 and one(in_table) == truth.entries[0]["per_seed"]["1"]
    # A seed nobody has, and a cache entry of the old one-mean format, are jobs to train.
    more = StandaloneAccuracy(cache, spec, seeds=[0, 2])
    assert more.missing([off, in_table, off, legacy]) == [(off, 2), (in_table, 2), (legacy, 0), (legacy, 2)]


def test_cache_update_adds_known_accuracies(tmp_path) -> None:
    spec = get_table("v2")
    truth = GroundTruth.load(spec.path)
    off = next(a for a in sample_architectures(400, 7) if truth.accuracy(a) is None)
    lookup = StandaloneAccuracy(tmp_path / "cache.json", "v2", seeds=[0, 1])
    assert lookup.missing([off]) == [(off, 0), (off, 1)]
    lookup.cache_update({_key(off): {"0": 40.0, 1: 42.0}})
    assert lookup.missing([off]) == [] and lookup(off) == 41.0 and lookup.trained == 0
