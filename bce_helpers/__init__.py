"""Helpers shared by the BCE notebook suite.

One module per concept, what the notebooks import: ``losses`` (BCE from scratch, matching
torch), ``fused`` (``fused_bce_with_logits``: loss and gradient in one pass over memory),
``fused_triton`` (its CUDA kernels), ``fused_cpu`` (its CPU kernel, in C), ``compiler``
(torch.compile, or eager where no compiler works), ``saturation`` (where float types
saturate), ``checks`` (hand computations against torch), ``params`` (checking notebook
parameters, seeding, device), ``data``, ``shapes`` (multi-label pictures from a random
seed), ``models``, ``train`` (batches, training steps, the run), ``metrics`` (precision,
recall, F1 per label; thresholds), ``calibration`` (reliability bins, ECE, Brier,
temperature), ``cuda_graph`` (a step recorded as a CUDA graph), ``plots``, ``bench``
(timing, bandwidth), ``results`` (the results JSON), ``exercises`` (answers checked with
instant feedback) and ``explorers`` (interactive widgets). ``runner`` and ``__main__``
forward to the suite's tooling, the package ``bce_suite`` (the command line, executing
notebooks), which a notebook does not import.
"""

__version__ = "0.1.0"
