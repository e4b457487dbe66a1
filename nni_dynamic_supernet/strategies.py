"""Named strategy presets.

A strategy is only a preset of training components and hyperparameters: no algorithm
code lives here. Each preset fills *every* component field of ``training`` so that
switching ``strategy`` (for example from an NNI tuner) never inherits components from
another preset. Users can still override single fields (``training.gamma_max``).

The presets below are the one list of built-in strategies: :data:`PRESETS` collects them in
the order they are defined, the catalog serves them, and a test checks ``setup.py``'s entry
points (group ``nni_dynamic_supernet.strategies``) against them. Another package can add its own
:class:`Preset` through the same entry-point group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Preset", "COMPONENT_DEFAULTS", "PRESETS"]


@dataclass(frozen=True)
class Preset:
    """A named combination of training components.

    Parameters
    ----------
    name
        Registry name (``spos_calr_ms``).
    summary
        One line saying what the strategy is for.
    paper
        The paper that introduced it.
    settings
        Dotted recipe keys to values, applied on top of :data:`COMPONENT_DEFAULTS`.
    """

    name: str
    summary: str
    paper: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        merged = dict(COMPONENT_DEFAULTS)
        merged.update(self.settings)
        object.__setattr__(self, "settings", merged)


#: The component fields every preset sets; a preset lists only what differs.
COMPONENT_DEFAULTS: dict[str, Any] = {
    "training.path_sampler": "uniform",
    "training.paths_per_step": None,
    "training.lr_schedule": "cosine",
    "training.lr_policy": "static",
    "training.optimizer_state": "shared",
    "training.update_rule": "gradient",
    "training.partition": "none",
    "training.grad_clip": 5.0,
    "training.data_sampler": "uniform",
    "training.unused_grads": "none",
}

_SPOS = "Guo et al., Single Path One-Shot NAS with Uniform Sampling, ECCV 2020"
_FAIR = "Chu et al., FairNAS: Rethinking Evaluation Fairness of Weight Sharing NAS, ICCV 2021"
_FS = "Zhao et al., Few-shot Neural Architecture Search, ICML 2021"
_CALR = "Jeon et al., Subnet-Aware Dynamic Supernet Training for NAS, CVPR 2025"
_SUMNAS = "Ha et al., SUMNAS: Supernet with Unbiased Meta-Features for Neural Architecture Search, ICLR 2022"

# The DYNAS code (CaLR, MS) ran on PyTorch 1.8, whose zero_grad filled zeros: every parameter off the path still
# got weight decay and the active optimizer's momentum each step (training.unused_grads: zero).
_CALR_SET = {"training.lr_policy": "calr", "training.unused_grads": "zero"}
_MS_SET = {"training.optimizer_state": "separated", "training.unused_grads": "zero"}
# FairNAS accumulates m paths per step and the FairNAS/DYNAS code does not clip.
_FAIR_SET = {"training.path_sampler": "strict_fair", "training.grad_clip": None}
_FS_SET = {"training.partition": "exhaustive"}
# SUMNAS Table 6: the engine's optimizer is the *outer* one (plain SGD, LR 1 with cosine decay, wd 4e-5, no
# momentum), so this preset also sets training.lr / momentum / weight_decay; a value the user sets still wins.
# Inner steps (k = training.reptile_steps, LR 0.05 * 4 / k, momentum 0.9) are the update rule's own fields. The
# outer step is not clipped (the paper clips nothing; training.inner_grad_clip clips each inner step).
_SUMNAS_SET = {"training.path_sampler": "strict_fair", "training.update_rule": "reptile", "training.grad_clip": None,
               "training.lr_schedule": "cosine", "training.lr": 1.0, "training.momentum": 0.0,
               "training.weight_decay": 4e-5}
# SUMNAS + MS: the outer step uses one momentum per cluster, so it needs outer momentum (0.9); LR 0.1 keeps the
# steady-state step lr / (1 - momentum) equal to sumnas's LR 1 without momentum. cluster_fair puts every path of
# a step in one cluster (as fairnas_calr_ms), so a step is still one Reptile outer step.
# Its update rule is SUMNAS's Reptile, not the DYNAS step, so unused gradients stay None as in sumnas.
_SUMNAS_MS_SET = {**_SUMNAS_SET, "training.path_sampler": "cluster_fair", **_MS_SET, "training.momentum": 0.9,
                  "training.lr": 0.1, "training.unused_grads": "none"}

spos = Preset("spos", "uniform single-path sampling, one shared momentum", _SPOS)
spos_calr = Preset("spos_calr", "SPOS with a per-subnet LR decay from its parameter count", _CALR, _CALR_SET)
spos_ms = Preset("spos_ms", "SPOS with one momentum buffer per cluster of subnets", _CALR, _MS_SET)
spos_calr_ms = Preset("spos_calr_ms", "SPOS with complexity-aware LR and momentum separation", _CALR,
                      {**_CALR_SET, **_MS_SET})
fairnas = Preset("fairnas", "strict-fair sampling: every op trained once per step", _FAIR, _FAIR_SET)
fairnas_calr_ms = Preset(
    "fairnas_calr_ms", "FairNAS where each step trains one MS cluster and weights each path's loss by its CaLR factor",
    _CALR, {**_FAIR_SET, "training.path_sampler": "cluster_fair", **_CALR_SET, **_MS_SET})
fsnas = Preset("fsnas", "few-shot NAS: one sub-supernet per choice of a split label, each trained with SPOS", _FS,
               _FS_SET)
fsnas_calr_ms = Preset("fsnas_calr_ms", "few-shot NAS with CaLR and per-sub-supernet momentum separation", _CALR,
                       {**_FS_SET, **_CALR_SET, **_MS_SET})
sumnas = Preset("sumnas", "Reptile meta-training: per strict-fair path k inner SGD steps, one outer step on the "
                "summed weight differences", _SUMNAS, _SUMNAS_SET)
sumnas_ms = Preset("sumnas_ms", "SUMNAS whose outer step uses one momentum per MS cluster (one cluster per step)",
                   _SUMNAS, _SUMNAS_MS_SET)

# PA&DA: importance sampling of paths (PA) and data (DA); δ and τ rise linearly per epoch (official code:
# ``epoch / epochs``).
_PADA = "Lu et al., PA&DA: Jointly Sampling PAth and DAta for Consistent NAS, CVPR 2023"
_PA_SET = {"training.path_sampler": "importance"}
_DA_SET = {"training.data_sampler": "importance"}

spos_pa = Preset("spos_pa", "SPOS with path importance sampling: ops drawn by their gradient norms", _PADA, _PA_SET)
spos_da = Preset("spos_da", "SPOS with data importance sampling: examples drawn by their loss-gradient bound", _PADA,
                 _DA_SET)
pada = Preset("pada", "SPOS with importance sampling of both paths and data (PA&DA)", _PADA, {**_PA_SET, **_DA_SET})
pada_calr_ms = Preset("pada_calr_ms", "PA&DA with complexity-aware LR and momentum separation", _PADA,
                      {**_PA_SET, **_DA_SET, **_CALR_SET, **_MS_SET})

# GM-NAS: sub-supernets split by gradient matching at training.split_epochs (null: evenly spaced, 60 epochs ->
# after 20 and 40) into training.split_branching groups (default [2, 2]: 4 leaves); RSPS/SPOS inside the leaves.
# GM-NAS and few-shot NAS train every sub-supernet for its whole phase (training.partition_budget: per_leaf, the
# recipe default; shared is the equal-compute ablation), with R = training.gm_batches = 100 repeats.
_GM = "Hu et al., Generalizing Few-Shot NAS with Gradient Matching, ICLR 2022"
_GM_SET = {"training.partition": "gradient_matching"}

gm_spos = Preset("gm_spos", "GM-NAS: split the supernet where ops disagree on the shared weights' gradients, "
                 "SPOS inside each sub-supernet", _GM, _GM_SET)
gm_spos_calr_ms = Preset("gm_spos_calr_ms", "GM-NAS sub-supernets trained with SPOS, complexity-aware LR and "
                         "momentum separation", _GM, {**_GM_SET, **_CALR_SET, **_MS_SET})
gm_fairnas = Preset("gm_fairnas", "GM-NAS sub-supernets trained with strict-fair (FairNAS) sampling", _GM,
                    {**_GM_SET, **_FAIR_SET})

#: Every built-in preset by name, in the order defined above.
PRESETS: dict[str, Preset] = {obj.name: obj for obj in list(globals().values()) if isinstance(obj, Preset)}
