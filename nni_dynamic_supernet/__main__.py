"""``python -m nni_dynamic_supernet``: the ``nds`` command, for when its script is not on ``PATH``."""
import sys

from .cli import main

sys.exit(main())
