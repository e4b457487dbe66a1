"""The named ground-truth tables, as the benchmark commands import them.

The tables and their lookup live in :mod:`nni_dynamic_supernet.ranking.tables`, below the
pipeline that ranks against them; this module re-exports their names for the ``bench`` code.
"""
from ..ranking.tables import DATASET_DEFAULTS, TABLES, TableSpec, get_table, resolve_table_path, table_for_dataset

__all__ = ["TableSpec", "TABLES", "DATASET_DEFAULTS", "get_table", "table_for_dataset", "resolve_table_path"]
