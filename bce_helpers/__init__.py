"""What the notebooks of the BCE suite import, in three parts.

The lessons, one module per concept: ``losses`` (BCE from scratch, matching torch),
``checks`` (hand computations against torch), ``params`` (checking a notebook's
parameters, seeding, device), ``data``, ``shapes`` (multi-label pictures from a random
seed), ``models``, ``train`` (batches, one training step, the criterion by name),
``metrics`` (precision, recall, F1 per label; thresholds), ``calibration`` (reliability
bins, ECE, Brier, temperature), ``saturation`` (where float types saturate), ``plots``,
``explorers`` (interactive widgets) and ``results`` (the results JSON).

``exercises``: answers checked with instant feedback, one module per notebook.

``fast``: the fast path that notebooks 05 and 09 show: the fused loss and its kernels,
compilation, warm-up, CUDA-graph replay, the training loop with them, and timing.

The command line that runs the notebooks is a separate package, ``bce_suite``.
"""

__version__ = "0.1.0"
