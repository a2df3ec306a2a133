"""`python -m bce_helpers`: the suite's command line."""

import sys

from bce_helpers.runner import main

sys.exit(main())
