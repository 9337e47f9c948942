"""``python -m mr_sdk build DIR``: see :mod:`mr_sdk.build`."""

import sys

from .build import main

sys.exit(main())
