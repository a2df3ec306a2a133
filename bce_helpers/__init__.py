"""Helpers shared by the BCE notebook suite.

One module per concept: ``losses`` (BCE from scratch, matching torch), ``params``
(checking notebook parameters, seeding, device), ``plots``, ``results`` (the results
JSON) and ``runner`` (executing notebooks through papermill).
"""

__version__ = "0.1.0"
