"""Every touch of NNI's and Lightning's internals, and every version workaround, by job.

* :mod:`.lightning_module` -- :class:`SupernetModule`, the ``BaseOneShotLightningModule`` in
  manual optimization that drives :class:`~nni_dynamic_supernet.training.engine.SupernetEngine`,
  and :class:`SupernetCallback`, the Lightning callback that also hears the module's own moments;
* :mod:`.strategy` -- :class:`DynamicSupernetStrategy`, the NNI ``Strategy`` users pass to
  ``NasExperiment``;
* :mod:`.trainer` -- the Lightning ``Trainer`` of our own pipeline (:func:`fit_supernet`) and the
  evaluator module it trains through (:func:`make_training_module`);
* :mod:`.plumbing` -- precision, the direct backward and optimizer step, atomic plain-data
  checkpoints, local BatchNorm under DDP;
* :mod:`.trial_api` -- the nnictl trial API (parameters and metric reports), with the workaround
  for NNI 3.0 handing a trial another trial's parameters.

Turning a model space into a supernet and forcing an architecture on it live one layer below,
in :mod:`nni_dynamic_supernet.supernet`; their names are re-exported here. The rest of the
package sees plain PyTorch modules and our own interfaces.
"""
from ..supernet.modules import arch_setter, mutate_to_supernet, op_modules, shared_labels, supernet_modules
from .lightning_module import SupernetCallback, SupernetModule
from .plumbing import (AtomicCheckpointIO, direct_backward_and_step, lightning_precision, local_batchnorm,
                       plain_backward, revert_sync_batchnorm)
from .strategy import DynamicSupernetStrategy, example_shape
from .trainer import fit_supernet, make_training_module
from .trial_api import NniReporter, nni_parameters

__all__ = [
    "mutate_to_supernet", "supernet_modules", "arch_setter", "op_modules", "shared_labels",
    "SupernetModule", "SupernetCallback", "DynamicSupernetStrategy", "example_shape", "make_training_module",
    "fit_supernet", "nni_parameters", "NniReporter", "local_batchnorm", "revert_sync_batchnorm",
    "lightning_precision", "direct_backward_and_step", "plain_backward", "AtomicCheckpointIO",
]
