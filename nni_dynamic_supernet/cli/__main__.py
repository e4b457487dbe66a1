"""``python -m nni_dynamic_supernet.cli``: the ``nds`` command."""
import sys

from . import main

sys.exit(main())
