"""`python -m bce_helpers`: the suite's command line (in the tooling package bce_suite)."""

import sys

from bce_suite.cli import main

sys.exit(main())
