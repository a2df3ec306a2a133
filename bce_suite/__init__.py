"""The suite's tooling: the command line `bce-notebooks` (also `python -m bce_suite`), not
what a notebook imports.

``cli`` (the command line), ``notebooks`` (finding the notebooks), ``parameters`` (typing
and checking command-line values against ``bce_helpers.params``, grids), ``execute`` (one
notebook through papermill), ``kernels`` (kernel managers tracked per run, stopped through
jupyter_client), ``engine`` (runs as tasks on Dask, a local cluster or an existing one, and
the task a worker runs), ``resume`` (which runs an output folder already holds, keyed on
their recorded parameters), ``reports`` (the table, summary files, the sweep's table and
figure), ``page`` (index.html), ``offline_html`` (executed notebooks as pages that need no
network) and ``runs`` (the records they share: a run's job, outcome and result).
"""

import sys

# nbformat validates notebooks with jsonschema, whose import builds parsers for the "iri"
# formats through rfc3987_syntax, at the start of every process (the command, each Dask
# worker), and no notebook schema uses those formats (python-jsonschema/jsonschema#1428).
# Marked missing, it is skipped as jsonschema skips any optional format checker.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)
