"""Search spaces: NNI ``ModelSpace`` factories sized for research use, and space validation.

Every factory returns a pristine space tagged with ``nds_input_shape``, ``nds_space_name`` and
``nds_space_kwargs``. Every searchable decision of our own spaces is a ``LayerChoice``; user and NNI hub
spaces may use every categorical mutable (:func:`check_supported` refuses the rest), and
:func:`search_space_of` reads ``{label: [choices]}``. :mod:`.nni_hub` lists the NNI hub spaces the tests train.
"""
from .validation import check_supported, count_architectures, search_space_of
from .nas_bench_201 import NasBench201Space, nas_bench_201
from .mobilenet import MobileNetSpace, mobilenet
from .shufflenet import SposShuffleNetSpace, shufflenet

__all__ = [
    'nas_bench_201', 'mobilenet', 'shufflenet',
    'NasBench201Space', 'MobileNetSpace', 'SposShuffleNetSpace',
    'search_space_of', 'check_supported', 'count_architectures',
]
