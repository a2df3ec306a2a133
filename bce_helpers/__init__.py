"""Helpers shared by the BCE notebook suite.

One module per concept, what the notebooks import: ``losses`` (BCE from scratch, matching
torch), ``fused`` (``fused_bce_with_logits``: loss and gradient in one pass over memory),
``fused_triton`` (its CUDA kernels), ``compiler`` (torch.compile, or eager where no compiler
works), ``saturation`` (where float types saturate), ``checks`` (hand computations against
torch), ``params`` (checking notebook parameters, seeding, device), ``data``, ``models``,
``train`` (batches, training steps, CUDA graphs), ``plots``, ``bench`` (timing, bandwidth)
and ``results`` (the results JSON). The suite's tooling: ``runner`` (the command line,
executing notebooks through papermill).
"""

__version__ = "0.1.0"
