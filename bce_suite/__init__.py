"""The suite's tooling: the command line behind `python -m bce_helpers`, not what a
notebook imports.

``notebooks`` (finding the notebooks), ``parameters`` (typing and checking command-line
values against ``bce_helpers.params``, grids), ``execute`` (one notebook through
papermill), ``kernels`` (kernel managers tracked per run, stopped through jupyter_client),
``engine`` (runs as tasks on Dask: a local cluster, or an existing one), ``resume``
(which runs an output folder already holds, keyed on their recorded parameters),
``reports`` (the table, summary files, index.html, the sweep figure) and ``cli``.
"""
