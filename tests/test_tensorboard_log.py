"""TensorBoard: figures and final metrics are appended, and trials link the folder NNI's button reads."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nni_dynamic_supernet.tensorboard_log import (link_for_nni_webui, log_figures_and_final,  # noqa: E402
                                                  nni_webui_output_path)


def _trial_env(root: Path) -> dict:
    out = root / "exp1" / "environments" / "local-env" / "trials" / "AbCdE"
    out.mkdir(parents=True)
    return {"NNI_OUTPUT_DIR": str(out), "NNI_TRIAL_JOB_ID": "AbCdE", "NNI_PLATFORM": "local"}


def test_trial_output_is_linked_where_nni_tensorboard_looks(tmp_path: Path) -> None:
    env = _trial_env(tmp_path)
    expected = tmp_path / "exp1" / "trials" / "AbCdE" / "output"
    assert nni_webui_output_path(env) == expected
    link = link_for_nni_webui(Path(env["NNI_OUTPUT_DIR"]), env)
    assert link == expected and expected.is_symlink()
    (Path(env["NNI_OUTPUT_DIR"]) / "tensorboard").mkdir()
    assert (expected / "tensorboard").is_dir()
    assert link_for_nni_webui(Path(env["NNI_OUTPUT_DIR"]), env) == expected  # a resumed trial: no error


def test_nothing_is_linked_outside_a_trial(tmp_path: Path) -> None:
    assert nni_webui_output_path({}) is None
    assert link_for_nni_webui(tmp_path, {}) is None
    assert nni_webui_output_path({"NNI_OUTPUT_DIR": str(tmp_path), "NNI_TRIAL_JOB_ID": "x"}) is None


def test_figures_and_final_metrics_reach_the_event_file(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    png = tmp_path / "curve.png"
    fig.savefig(png)
    plt.close(fig)
    log_figures_and_final(tmp_path / "tb", [png], {"default": 0.5, "best_arch": "a=b", "nan": float("nan")}, step=3)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert events.Tags()["images"] == ["figures/curve"]
    assert events.Tags()["scalars"] == ["final/default"]
    assert events.Scalars("final/default")[0].value == 0.5 and events.Scalars("final/default")[0].step == 3
