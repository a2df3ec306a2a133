"""The suite's tooling: the command line behind `python -m bce_suite`, not what a
notebook imports.

``notebooks`` (finding the notebooks), ``parameters`` (typing and checking command-line
values against ``bce_helpers.params``, grids), ``execute`` (one notebook through
papermill), ``kernels`` (kernel managers tracked per run, stopped through jupyter_client),
``engine`` (runs as tasks on Dask: a local cluster, or an existing one), ``resume``
(which runs an output folder already holds, keyed on their recorded parameters),
``reports`` (the table, summary files, index.html, the sweep figure), ``page`` and
``offline_html`` (the report page), ``runs`` (a run's job and result) and ``cli``.
"""

import sys

# nbformat validates notebooks with jsonschema, whose import builds about 38 parsers for the
# "iri" formats through rfc3987_syntax (1 s of every process's start here: the command, each
# Dask worker), and no notebook schema uses those formats (python-jsonschema/jsonschema#1428).
# Marked missing, it is skipped as jsonschema skips any optional format checker.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)
