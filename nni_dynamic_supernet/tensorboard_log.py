"""What a run adds to its TensorBoard log besides Lightning's per-epoch scalars.

Lightning's ``TensorBoardLogger`` already holds the per-epoch scalars (``epoch/loss``,
``epoch/lr``, ``epoch/probe_acc``, ``epoch/kendall_tau`` ...). After the run, this module
adds the result figures as images (``figures/<stem>``), the final metrics as scalars
(``final/<key>``) and the flattened recipe as hyperparameters against them (the HPARAMS tab), so
NNI's TensorBoard button shows everything the trial made.

NNI 3.0's local training service looks for a trial's logs in
``<experiment root>/trials/<trial id>/output/tensorboard``, which is not under
``NNI_OUTPUT_DIR`` in NNI 3.0's local training service; :func:`link_for_nni_webui` links that path to the
trial's real output directory.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["log_figures_and_final", "nni_webui_output_path", "link_for_nni_webui"]


def log_figures_and_final(tb_dir: Path, figures: Sequence[Path], final: Mapping[str, object], step: int,
                          hparams: Optional[Mapping[str, object]] = None) -> None:
    """Append the PNG ``figures`` as images and the numeric ``final`` metrics as scalars at ``step``.

    Parameters
    ----------
    tb_dir
        The run's TensorBoard folder.
    figures
        PNG files, logged as ``figures/<stem>``.
    final
        The final metrics; each finite number is logged as ``final/<key>``.
    step
        The step of the images and scalars (the run's epochs).
    hparams
        The run's hyperparameters (scalars by name): when given, TensorBoard's HPARAMS tab shows
        the run with these values and its ``final/<key>`` metrics.
    """
    # TensorBoard's writer and matplotlib load only for a run that logs to TensorBoard.
    import matplotlib.image as mpimg
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        for path in figures:
            image = mpimg.imread(str(path))  # HxWx{3,4} floats in [0, 1]
            writer.add_image(f"figures/{Path(path).stem}", image[..., :3], global_step=step, dataformats="HWC")
        metrics = {}
        for key, value in final.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
                writer.add_scalar(f"final/{key}", float(value), global_step=step)
                metrics[f"final/{key}"] = float(value)
        if hparams:
            # The HPARAMS plugin pairs this session's hyperparameters with the latest value of each metric tag
            # in the same folder: the final/<key> scalars above.
            from torch.utils.tensorboard.summary import hparams as hparams_summary
            file_writer = writer._get_file_writer()
            for summary in hparams_summary(dict(hparams), metrics):
                file_writer.add_summary(summary, step)
    finally:
        writer.close()


def nni_webui_output_path(env: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """Where NNI's TensorBoard feature expects this trial's ``output`` folder; ``None`` outside a trial.

    ``NNI_OUTPUT_DIR`` is ``<experiment root>/environments/<env>/trials/<trial id>``; the
    manager reads ``<experiment root>/trials/<trial id>/output/tensorboard``.
    """
    env = os.environ if env is None else env
    output, trial = env.get("NNI_OUTPUT_DIR"), env.get("NNI_TRIAL_JOB_ID")
    if not output or not trial:
        return None
    parts = Path(output).parts
    if len(parts) < 5 or parts[-2] != "trials" or parts[-4] != "environments":
        return None  # another training service's layout: it fetches the logs itself
    return Path(output).parents[3] / "trials" / trial / "output"


def link_for_nni_webui(out_dir: Path, env: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """Symlink the path NNI's TensorBoard feature reads to ``out_dir`` (in an nnictl trial); returns the link.

    Nothing happens outside a trial, or when that path already exists (a resumed trial).
    """
    link = nni_webui_output_path(env)
    if link is None:
        return None
    target = Path(out_dir).resolve()
    if link.resolve() == target:
        return link
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)
    except OSError as exc:  # TensorBoard in the web UI is a nicety; the trial must still run
        _logger.warning("cannot link %s for NNI's TensorBoard: %s", link, exc)
        return None
    return link
