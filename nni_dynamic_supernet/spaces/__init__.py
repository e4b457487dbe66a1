"""Search spaces: NNI ``ModelSpace`` factories sized for research use, and what a space offers.

Every factory returns a pristine space tagged with ``nds_input_shape``, ``nds_space_name`` and
``nds_space_kwargs``. Every searchable decision of our own spaces is a ``LayerChoice``; user and NNI hub
spaces may use every categorical mutable (:func:`check_supported` refuses the rest), and
:func:`search_space_of` reads ``{label: [choices]}``. :mod:`.nni_hub` lists the NNI hub spaces the tests train.

* :mod:`.introspection` -- a space's search space, constraints and supportedness;
* :mod:`.complexity` -- parameter counts and FLOPs of every subnet (:class:`~.complexity.ComplexityModel`),
  :mod:`.profiler` -- the NNI profiler formulas it needs, :mod:`.measures` -- the cached model and the
  validity check that training and search ask for;
* :mod:`.arguments` -- the argument checks our factories share.
"""
from .introspection import check_supported, count_architectures, search_space_of
from .mobilenet import MobileNetSpace, mobilenet
from .nas_bench_201 import NasBench201Space, nas_bench_201
from .shufflenet import SposShuffleNetSpace, shufflenet

__all__ = [
    'nas_bench_201', 'mobilenet', 'shufflenet',
    'NasBench201Space', 'MobileNetSpace', 'SposShuffleNetSpace',
    'search_space_of', 'check_supported', 'count_architectures',
]
