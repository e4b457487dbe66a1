"""The weight-sharing supernet made from an NNI model space (:mod:`.modules`, :mod:`.nasbench101`).

It sits below training, search and the NNI bridge, which all import it.
"""
from .modules import arch_setter, hooks_for, mutate_to_supernet, op_modules, shared_labels, supernet_modules

__all__ = ["hooks_for", "mutate_to_supernet", "supernet_modules", "arch_setter", "op_modules", "shared_labels"]
