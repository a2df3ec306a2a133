"""`python -m bce_suite`: the same command as `bce-notebooks`."""

from bce_suite.cli import main

raise SystemExit(main())
