"""``nds plot``: every figure of a results.json or compare.json, drawn whole or not at all.

The JSON is checked first for every field a figure reads
(:func:`~nni_dynamic_supernet.json_inputs.check_plot_input`). The figures are then drawn into
a hidden folder beside their destination and moved into place only when all of them are done,
so a JSON that cannot be drawn leaves the earlier figures as they were, and a wrong-typed
value deeper than the check looks is still one line, not a traceback.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["draw_figures"]


def draw_figures(data: Any, source: str, out: Path) -> list[Path]:
    """Draw the figures of ``data`` (the loaded JSON of ``source``) into ``out``; the paths written.

    Raises
    ------
    ConfigError
        When ``data`` is neither a results.json nor a compare.json, or a field has the wrong type.
    """
    from .json_inputs import check_plot_input
    from .plots import plot_compare, plot_prediction_scatter, plot_results
    base = Path(source).resolve().parent
    kind = check_plot_input(data, source, base)
    staging = Path(tempfile.mkdtemp(prefix=".nds-plot-", dir=out))
    try:
        try:
            if kind == "compare":
                drawn = [plot_compare(data["summary"], staging / "compare_tau.png", noise=data.get("noise_ceiling"),
                                        baselines=data.get("baselines"))]
                if data["runs"]:
                    runs = [r["results"] if isinstance(r["results"], dict) or Path(r["results"]).is_file()
                            else str(base / r["results"]) for r in data["runs"]]
                    drawn.append(plot_prediction_scatter(runs, staging / "compare_scatter.png"))
            else:
                drawn = plot_results(data, staging)
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
            raise ConfigError("RESULTS", source, f"has a field of the wrong type for its figures "
                                                 f"({type(exc).__name__}: {exc}); pass the file nds wrote") from None
        written = []
        for path in drawn:
            os.replace(path, out / path.name)
            written.append(out / path.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
