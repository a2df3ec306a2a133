"""The fast path: BCE and training at the hardware's limit, apart from the lessons.

``fused`` (``fused_bce_with_logits``: loss and gradient in one pass over memory, and its
dispatch), ``formulas`` (its formulas in torch: ``one_pass``, ``log1p_series``,
``exp_neg``), ``fused_triton`` (its CUDA kernels), ``compiler`` (torch.compile, or eager
where no compiler works), ``warm_up`` (steps undone before timing or recording),
``cuda_graph`` (a step recorded as a CUDA graph), ``training`` (notebook 05's loop with
fused Adam, warm-up and graph replay) and ``bench`` (timing, bandwidth, memory). Modules
here import the lessons; a lesson module reaches in only where a notebook's parameter asks
for the fused loss (``train.criterion_for``), at that call.
"""
