"""Exercises with instant feedback: the learner's answer against the lesson's reference.

Each exercise has an id ("01.1" = notebook 01, first exercise). `check(id, answer)`
prints one line: right, not attempted yet, or what is wrong in terms of the lesson. The
answer is a function (called on inputs chosen to expose the common mistakes) or a number;
its source is never read. A wrong answer, or one that raises, is reported, never raised,
so an unanswered exercise never stops the rest of a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bce_helpers.calibration import expected_calibration_error, reliability_bins
from bce_helpers.metrics import f1_from_counts
from bce_helpers.saturation import first_saturating_logit

NOT_ATTEMPTED = "not attempted yet"
_ATOL = 1e-4
_RTOL = 1e-4


@dataclass(frozen=True)
class Feedback:
    """The outcome of one check: status is "right", "wrong" or "not attempted"."""

    status: str
    message: str

    def line(self, title: str) -> str:
        """The one line a notebook shows."""
        if self.status == "not attempted":
            return f"{title}: {NOT_ATTEMPTED} (write your answer in the cell above, run both)"
        return f"{title}: {self.status}. {self.message[:1].upper()}{self.message[1:]}"


class _Stop(Exception):
    """Grading stops here with this feedback (a placeholder, an error, a wrong value)."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(feedback.message)
        self.feedback = feedback


def _wrong(message: str) -> _Stop:
    return _Stop(Feedback("wrong", message))


def _placeholder(answer: object) -> bool:
    return answer is None or answer is Ellipsis


def _call(fn: Callable, *args: object) -> torch.Tensor:
    """Call the learner's function; a placeholder or an error becomes feedback."""
    if _placeholder(fn):
        raise _Stop(Feedback("not attempted", ""))
    if not callable(fn):
        raise _wrong(f"expected a function, got {type(fn).__name__} {fn!r}")
    try:
        result = fn(*(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
    except NotImplementedError:
        raise _Stop(Feedback("not attempted", "")) from None
    except Exception as err:  # the learner's bug, reported in the notebook
        raise _wrong(f"your function raised {type(err).__name__}: {err}") from None
    if _placeholder(result):
        raise _Stop(Feedback("not attempted", ""))
    try:
        return torch.as_tensor(result).detach().to(torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError):
        raise _wrong(f"expected a number or a tensor, got {type(result).__name__}") from None


def _number(answer: object) -> float:
    """A learner's numeric answer as a float; a placeholder becomes feedback."""
    if _placeholder(answer):
        raise _Stop(Feedback("not attempted", ""))
    try:
        return float(torch.as_tensor(answer).item())
    except (TypeError, ValueError, RuntimeError):
        raise _wrong(f"expected one number, got {type(answer).__name__} {answer!r}") from None


def _typed_match(value: float, ref: float, digits: int = 3) -> bool:
    """True if `value` agrees with `ref` to `digits` significant digits, as a learner types
    it: 0.693 for ln 2 = 0.693147 passes, 0.694 does not."""
    if ref == 0:
        return value == 0
    unit = 10 ** (math.floor(math.log10(abs(ref))) - digits + 1)
    return abs(value - ref) <= unit / 2 * (1 + 1e-9)


def _close(value: torch.Tensor | float, ref: torch.Tensor | float, atol: float = _ATOL) -> bool:
    value_t = torch.as_tensor(value, dtype=torch.float64)
    ref_t = torch.as_tensor(ref, dtype=torch.float64)
    if value_t.shape != ref_t.shape:
        return False
    return bool(torch.allclose(value_t, ref_t, atol=atol, rtol=_RTOL, equal_nan=True))


def _match(value, ref, mistakes: dict[str, object], describe: str) -> None:
    """Pass if value matches ref; else raise the first mistake whose value it matches."""
    if _close(value, ref):
        return
    for message, mistaken in mistakes.items():
        if _close(value, mistaken):
            raise _wrong(message)
    raise _wrong(f"{describe}: yours {_show(value)}, expected {_show(ref)}")


def _show(value) -> str:
    t = torch.as_tensor(value, dtype=torch.float64).flatten()
    shown = ", ".join(f"{v:.4g}" for v in t[:6].tolist())
    return shown if t.numel() == 1 else f"[{shown}{', ...' if t.numel() > 6 else ''}]"


def _one_value(value: torch.Tensor, n: int, what: str) -> None:
    if value.numel() != 1 and n > 1:
        raise _wrong(
            f"your function returns {value.numel()} values for {n} elements: {what} is one "
            "number, the mean over all elements (reduction='mean', the default)"
        )
    if value.numel() != 1:
        raise _wrong(f"your function returns {value.numel()} values: {what} is one number")


def _per_element(value: torch.Tensor, shape: torch.Size, what: str) -> None:
    if value.shape != shape:
        raise _wrong(
            f"your function returns shape {tuple(value.shape)}: {what} has one value per "
            f"element, shape {tuple(shape)} (reduction='none')"
        )


SUM_NOT_MEAN = "your loss is the sum, not the mean: divide by the number of elements"
WRONG_SIGN = (
    "wrong sign: the log of a probability is at most 0, and the minus sign in front of "
    "the formula makes the loss positive"
)


# ------------------------------------------------------------------------------ notebook 01

# 2 x 3, like the lesson's Example 1: len(p) (2 rows) is not p.numel() (6 elements); the last
# two targets are soft, as in the lesson's examples.
_P01 = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]])
_Y01 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]])


def _listed(t: torch.Tensor) -> str:
    """A tensor's values as a person writes them: 0.9, not 0.8999999761581421."""
    rounded = [float(f"{v:.4g}") for v in t.flatten().tolist()]
    if t.dim() < 2:
        return str(rounded)
    cols = t.shape[-1]
    return str([rounded[i : i + cols] for i in range(0, len(rounded), cols)])


def _by_rows(n: int, rows: int) -> str:
    return (
        f"you divided by len(p) = {rows}, the number of rows; the mean is over all "
        f"N = {n} elements: divide by p.numel()"
    )


def _bce_by_hand(fn: Callable) -> str:
    p, y = _P01, _Y01
    ref = F.binary_cross_entropy(p, y).double()
    value = _call(fn, p, y)
    _one_value(value, p.numel(), "nn.BCELoss's value")
    # the probability given to what happened, written with torch.where, treats a soft target
    # as 0 or 1
    given = [torch.where(y == 1, p, 1 - p), torch.where(y == 0, 1 - p, p)]
    given.append(torch.where(y >= 0.5, p, 1 - p))
    if any(_close(value, -g.log().mean().double()) for g in given):
        raise _wrong(
            f"the targets here are soft ({_listed(y[(y > 0) & (y < 1)])}): the probability "
            "given to what happened, torch.where(y == 1, p, 1 - p), is for 0-or-1 labels only; "
            "a soft target needs both terms, y log p + (1 - y) log(1 - p)"
        )
    _match(
        value,
        ref,
        {
            SUM_NOT_MEAN: ref * p.numel(),
            _by_rows(p.numel(), len(p)): ref * p.numel() / len(p),
            WRONG_SIGN: -ref,
            "you used log10 (or log2): BCE uses the natural log": ref / math.log(10),
            "you used log2: BCE uses the natural log (nats, not bits)": ref / math.log(2),
        },
        f"on p = {_listed(p)}, y = {_listed(y)} your loss differs from nn.BCELoss's",
    )
    edge = _call(fn, torch.tensor([0.0]), torch.tensor([1.0])).flatten()
    if torch.isinf(edge).any():
        raise _wrong(
            "at p = 0 (y = 1) your value is inf: torch clamps the log at -100, so the worst "
            "loss per element is 100"
        )
    keras_cap = -math.log(torch.tensor(1e-7).item())
    _match(
        edge,
        torch.tensor([100.0]),
        {
            f"at p = 0 (y = 1) your loss is {keras_cap:.4f}: you clipped the probability, as "
            "Keras does (notebook 06); torch clamps the log at -100 instead, so it gives 100": [
                keras_cap
            ],
            "at p = 0 (y = 1) your value is nan: torch clamps the log at -100, so it gives 100": [
                math.nan
            ],
        },
        f"at p = 0 (y = 1) your loss is {edge[0].item():.4g}: if you clamped p, torch clamps "
        "only the log, at -100, so it gives 100",
    )
    far = _call(fn, torch.tensor([1e-13]), torch.tensor([1.0])).flatten()
    _match(
        far,
        torch.tensor([-math.log(torch.tensor(1e-13).item())]),
        {
            "at p = 1e-13 (y = 1) your loss is 27.63, the log of 1e-12: you clamped p; torch "
            "clamps only the log, at -100, so -log(1e-13) = 29.93 stands": [-math.log(1e-12)],
        },
        "at p = 1e-13, y = 1 your loss differs from torch's 29.93 (the clamp is on the log)",
    )
    both = _call(fn, torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])).flatten()
    if torch.isnan(both).any():
        raise _wrong(
            "at p = y = 0 (or p = y = 1) your value is nan: 0 * log 0 is 0 * (-inf) = nan; "
            "clamp the log at -100 before multiplying by the target"
        )
    _match(both, torch.zeros(1), {}, "at p = y = 0 and p = y = 1 the loss is 0")
    return "It matches nn.BCELoss, at p = 0, 1 and 1e-13 too."


def _bce_gradient(fn: Callable) -> str:
    p, y = _P01, _Y01
    leaf = p.clone().requires_grad_()
    F.binary_cross_entropy(leaf, y).backward()
    ref = leaf.grad.double()
    value = _call(fn, p, y)
    _per_element(value, p.shape, "the gradient")
    n = p.numel()
    by_logit = (p - y).double() / n
    _match(
        value,
        ref,
        {
            f"that is the gradient of the sum: the mean divides every slope by N = {n}": ref * n,
            _by_rows(n, len(p)): ref * n / len(p),
            "wrong sign: raising p towards y must lower the loss, so the slope is (p - y) / ...,"
            " negative where p < y": -ref,
            "that is the gradient with respect to the logit z, (sigmoid(z) - y) / N; with "
            "respect to p, divide also by p (1 - p)": by_logit,
            "that is the gradient of the sum with respect to the logit z, p - y; with respect "
            "to p, divide by p (1 - p), and by N for the mean": by_logit * n,
        },
        f"on p = {_listed(p)}, y = {_listed(y)} your slopes differ from autograd's",
    )
    return "It matches autograd, element by element."


# ------------------------------------------------------------------------------ notebook 02


def _column_loss(fn: Callable) -> str:
    out = torch.tensor([[0.8], [0.3], [0.6], [0.9]])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    ref = F.binary_cross_entropy(out, labels.view(-1, 1)).double()
    broadcast = F.binary_cross_entropy(out.expand(4, 4), labels.expand(4, 4)).double()
    value = _call(fn, out, labels)
    if value.numel() == 16:
        raise _wrong(
            "your result has 4 x 4 = 16 values: broadcasting paired every output with every "
            "label; reshape the labels with labels.view(-1, 1) (or squeeze the output)"
        )
    _one_value(value, 4, "the loss")
    _match(
        value,
        ref,
        {
            "your mean is over 4 x 4 = 16 pairs: broadcasting [4, 1] against [4] paired every "
            "output with every label; reshape the labels with labels.view(-1, 1)": broadcast,
            SUM_NOT_MEAN: ref * 4,
            WRONG_SIGN: -ref,
        },
        "your loss differs from F.binary_cross_entropy(out, labels.view(-1, 1))",
    )
    return "Four outputs, four labels, one pair each."


def _masked_mean(fn: Callable) -> str:
    p = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.8, 0.4]])
    y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    kept_sum = F.binary_cross_entropy(p, y, weight=mask, reduction="sum").double()
    ref = kept_sum / mask.sum()
    value = _call(fn, p, y, mask)
    _one_value(value, p.numel(), "the masked mean")
    _match(
        value,
        ref,
        {
            "your mean divides by all N = 6 elements, as F.binary_cross_entropy(weight=mask) "
            "does: 'mean' divides by N, not by the weights' sum; divide the sum by mask.sum()": (
                kept_sum / p.numel()
            ),
            "your value ignores the mask: it is the mean over all elements": F.binary_cross_entropy(
                p, y
            ).double(),
            SUM_NOT_MEAN: kept_sum,
            WRONG_SIGN: -ref,
        },
        "your value differs from the mean loss over the 3 kept elements",
    )
    return "The mean over the kept elements only."


# ------------------------------------------------------------------------------ notebook 03


def _stable_logits(fn: Callable) -> str:
    z = torch.tensor([0.3, -1.2, 2.0, 0.7])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    ref = F.binary_cross_entropy_with_logits(z, y).double()
    value = _call(fn, z, y)
    _one_value(value, z.numel(), "BCEWithLogitsLoss's value")
    _match(
        value,
        ref,
        {SUM_NOT_MEAN: ref * z.numel(), WRONG_SIGN: -ref},
        f"on z = {z.tolist()}, y = {y.tolist()} your loss differs from BCEWithLogitsLoss's",
    )
    for zi, yi in ((1000.0, 0.0), (-1000.0, 1.0), (1000.0, 1.0), (-1000.0, 0.0)):
        zt, yt = torch.tensor([zi]), torch.tensor([yi])
        exact = F.binary_cross_entropy_with_logits(zt, yt).double()
        got = _call(fn, zt, yt).flatten()
        where = f"at z = {zi:g}, y = {yi:g}"
        if torch.isinf(got).any():
            why = "exp(-z) overflows for negative z: use |z|" if zi < 0 else "log 0 = -inf"
            raise _wrong(
                f"{where} your value is inf ({why}); the stable form "
                "min(z, 0) - log1p(exp(-|z|)) never takes the exp of a positive number"
            )
        if torch.isnan(got).any():
            raise _wrong(
                f"{where} your value is nan (0 * log 0, or inf - inf): compute from the logit, "
                "(1 - y) z - log sigmoid(z) with log sigmoid(z) = min(z, 0) - log1p(exp(-|z|))"
            )
        _match(
            got,
            exact.view(1),
            {
                f"{where} your loss stops at 100: that is BCELoss's clamp after a sigmoid that "
                f"rounded to {1 - yi:g}; compute from the logit, the loss is {exact.item():g}": [
                    100.0
                ],
            },
            f"{where} your loss differs from BCEWithLogitsLoss's",
        )
    return "It matches BCEWithLogitsLoss, at z = +-1000 too."


def _float16_saturation(answer: object) -> str:
    z = _number(answer)
    ref = first_saturating_logit(torch.float16)
    if torch.tensor(z, dtype=torch.float16).item() == ref and abs(z - ref) < 1e-3:
        return f"sigmoid is 1.0 in float16 from z = {ref:.4f} on."
    mistakes = {
        first_saturating_logit(torch.float32): "that is float32's point (24 ln 2): float16 has "
        "far fewer bits, so its sigmoid reaches 1.0 much sooner",
        first_saturating_logit(torch.bfloat16): "that is bfloat16's point: float16 has 3 more "
        "bits of mantissa, so it holds out a little longer",
        math.log(2**12 - 1): "ln(2^12 - 1) = 8.3175 is where the exact sigmoid comes within "
        "half a float16 spacing of 1, but float16 holds no logit there: give the first float16 "
        "logit past it",
    }
    for value, message in mistakes.items():
        if abs(z - value) < 1e-3:
            raise _wrong(message)
    half = torch.tensor([z], dtype=torch.float16)
    if not torch.isfinite(half).all() or torch.sigmoid(half).item() < 1.0:
        shown = torch.sigmoid(half).item()
        raise _wrong(f"in float16, sigmoid({half.item():.4f}) is {shown!r}, below 1: look higher")
    below = torch.nextafter(half, torch.zeros_like(half))
    raise _wrong(
        f"sigmoid is 1.0 at {half.item():.4f}, but already at the float16 below it, "
        f"{below.item():.4f}: look lower"
    )


# ------------------------------------------------------------------------------ notebook 04


def _call_p_w(fn: Callable, p: float, w: float, ref: float, what: str) -> torch.Tensor:
    """The learner's fn(p, w). The arguments swapped, an error or a nan become feedback in
    the lesson's terms, never an exception's own text."""
    raised = None
    try:
        value = _call(fn, p, w)
    except _Stop as stop:
        if not stop.feedback.message.startswith("your function raised "):
            raise
        raised = stop.feedback.message.removeprefix("your function raised ").split(":")[0]
        value = None
    if value is not None and _close(value.flatten()[:1], torch.tensor([ref])):
        return value
    try:  # the other order, (w, p)?
        swapped = _close(_call(fn, w, p).flatten()[:1], torch.tensor([ref]))
    except _Stop:
        swapped = False
    if swapped:
        raise _wrong(
            f"your function takes (w, p): the check calls it as {what}(p, w), the share of "
            "positives first, then pos_weight, in both exercises of this notebook"
        )
    domain = raised in ("ValueError", "ZeroDivisionError") or (
        value is not None and bool(torch.isnan(value).any())
    )
    if domain:
        raise _wrong(
            f"for p = {p:g}, w = {w:g} your function takes the log of 0 or of a negative number "
            f"(or divides by 0), so it has no value; for p in (0, 1) and w > 0, w p and 1 - p "
            f"are positive: check the formula, and that {what} takes its arguments as (p, w)"
        )
    if raised:
        raise _wrong(
            f"for p = {p:g}, w = {w:g} your function stopped with a {raised} instead of "
            f"returning a number: {what}(p, w) is called with two floats and returns one float"
        )
    return value


def _optimal_logit(fn: Callable) -> str:
    for p, w in ((0.2, 3.0), (0.1, 0.5), (0.4, 8.0), (0.3, 1.0)):
        ref = math.log(w * p / (1 - p))
        value = _call_p_w(fn, p, w, ref, "optimal_logit")
        _one_value(value, 1, "the optimal logit")
        _match(
            value.flatten()[0],
            ref,
            {
                "you returned the log-odds of the data, log(p / (1 - p)): the optimum without "
                "pos_weight; weighting the positives by w adds log w": math.log(p / (1 - p)),
                "w is on the wrong side: weighting the positives raises the logit (by log w), "
                "it does not lower it": math.log(p / (w * (1 - p))),
                "that is a probability, sigmoid(b*): the question asks for the logit b*": (
                    w * p / (w * p + 1 - p)
                ),
                "you used log10: the logit is a natural log": math.log10(w * p / (1 - p)),
            },
            f"for p = {p:g}, w = {w:g} your logit differs from the optimum",
        )
    return "The optimum is b* = log(w p / (1 - p)), for every p and w tried."


def weighted_chance_loss(p: float, w: float = 1.0) -> float:
    """The lowest expected BCEWithLogitsLoss(pos_weight=w) of a constant logit, in nats."""
    if not 0 < p < 1 or w <= 0:
        raise ValueError(f"p must lie in (0, 1) and w be > 0, got p={p!r}, w={w!r}")
    q = w * p / (w * p + 1 - p)  # sigmoid of the optimal logit log(w p / (1 - p))
    return -(w * p * math.log(q) + (1 - p) * math.log(1 - q))


def _entropy(p: float) -> float:
    return weighted_chance_loss(p, 1.0)


def _weighted_chance(fn: Callable) -> str:
    for p, w in ((0.2, 3.0), (0.1, 9.0), (0.3, 0.5), (0.5, 1.0)):
        ref = weighted_chance_loss(p, w)
        value = _call_p_w(fn, p, w, ref, "chance_loss")
        _one_value(value, 1, "the chance loss")
        _match(
            value.flatten()[0],
            ref,
            {
                "ln 2 is the loss of predicting 0.5, the best constant only for balanced, "
                "unweighted labels": math.log(2),
                "that is the unweighted chance loss H(p): with pos_weight the positives' term "
                "is multiplied by w": _entropy(p),
                "you evaluated the weighted loss at sigmoid(b) = p, the unweighted optimum; with "
                "w the best constant moves to sigmoid(b*) = w p / (w p + 1 - p)": -(
                    w * p * math.log(p) + (1 - p) * math.log(1 - p)
                ),
                "that is in bits (log2): torch's losses use the natural log": ref / math.log(2),
                WRONG_SIGN: -ref,
            },
            f"for p = {p:g}, w = {w:g} your loss differs from the best constant's",
        )
    return "The best constant's loss, for every p and w tried."


# ------------------------------------------------------------------------------ notebook 05


def _chance_loss(fn: Callable) -> str:
    for p in (0.514, 0.2, 0.5, 0.05):
        ref = _entropy(p)
        value = _call(fn, p)
        _one_value(value, 1, "the chance loss")
        _match(
            value.flatten()[0],
            ref,
            {
                "ln 2 is the chance loss only for balanced labels: the best constant predicts "
                "the share p of label 1 and costs H(p)": math.log(2),
                "a loss is not a percentage: give it in nats": ref * 100,
                "that is in bits (log2): torch's losses use the natural log": ref / math.log(2),
                "you left out the negatives' term, (1 - p) log(1 - p)": -p * math.log(p),
                WRONG_SIGN: -ref,
            },
            f"for a share of {p:g} your loss differs from the best constant's",
        )
    return "H(p) = -[p log p + (1 - p) log(1 - p)], for every share tried."


def _count(answer: object) -> float:
    """A typed count as a float64: 152.705 stays 152.705 (through float32 it would not)."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return float(answer)
    return _number(answer)


def _mlp_parameters(answer: object) -> str:
    n = _count(answer)
    sizes = [(2352, 64), (64, 32), (32, 1)]
    ref = sum(i * o + o for i, o in sizes)
    mistakes = {
        sum(i * o for i, o in sizes): "you left out the biases: 64 + 32 + 1 more",
        sum(i * o + o for i, o in [(784, 64), (64, 32), (32, 1)]): "you counted one colour "
        "channel: the input is 3 x 28 x 28 = 2352 numbers",
        2352 * 64 + 64: "you counted only the first layer",
    }
    if n == ref:
        return f"{ref:,} weights and biases."
    if n in mistakes:
        raise _wrong(mistakes[n])
    if abs(n - ref / 1000) <= 0.5:  # 152.705, 152.7 or 153: thousands, to 3 digits or more
        raise _wrong(f"give the count itself, not in thousands: {n:g} thousand is not exact")
    if abs(n - ref) <= 500:  # 152,700 or 153,000: the count, rounded
        raise _wrong(f"{n:,.0f} is close: count every weight and bias exactly")
    raise _wrong(f"your count is {n:,.0f}: count weights and biases of all three Linear layers")


# ------------------------------------------------------------------------------ notebook 06


def _keras_clip(fn: Callable) -> str:
    p = torch.tensor([0.0, 1e-9, 1e-7, 0.01, 0.5, 0.99, 1 - 1e-7, 1.0])
    for target in (1.0, 0.0):
        y = torch.full_like(p, target)
        ref = F.binary_cross_entropy(torch.clip(p, 1e-7, 1 - 1e-7), y, reduction="none").double()
        plain = F.binary_cross_entropy(p, y, reduction="none").double()
        loss_capped = plain.clamp(max=-math.log(1e-7))
        value = _call(fn, p, y)
        _per_element(value, p.shape, "Keras's rule here")
        edge = "p = 0 (y = 1)" if target == 1 else "p = 1 (y = 0)"
        _match(
            value,
            ref,
            {
                f"at {edge} your loss is 100, torch's clamp of the log: Keras clips p to "
                "[1e-7, 1 - 1e-7] first": plain,
                f"at {edge} your loss is 16.1181, -log(1e-7): that is the clip made in "
                "float64 (or a cap on the loss, which gives the same values). Keras clips the "
                "float32 probability, and in float32 1 - 1e-7 rounds to 1 - 2^-23, so its loss "
                "there is 23 ln 2 = 15.9424: clip p in float32": loss_capped,
                WRONG_SIGN: -ref,
            },
            f"for y = {target:g} your losses differ from Keras's",
        )
    return "Keras's clip, then torch's own loss: 16.1181 and 15.9424 at the edges."


def _guess_loss(answer: object) -> str:
    value = _number(answer)
    ref = math.log(2)
    mistakes = {
        100 * ref: "a loss is not a percentage (the guide read its curve as 70%): give it in nats",
        1.0: "that is in bits (log2 of 2): torch's BCE uses the natural log",
        0.5: "0.5 is the predicted probability (and a guess's accuracy), not its loss",
        0.0: "a guess is not free: the loss is -log of the probability given to the truth",
        math.log10(2): "you used log10: BCE uses the natural log",
        -ref: WRONG_SIGN,
    }
    if _typed_match(value, ref):
        return f"-log 0.5 = ln 2 = {ref:.4f} nats, whatever the label."
    for mistaken, message in mistakes.items():
        if _typed_match(value, mistaken):
            raise _wrong(message)
    raise _wrong(
        f"your value is {value:.4g}, and ln 2 = {ref:.4f}: the loss of p = 0.5 is -log 0.5 "
        "for either label (3 significant digits are enough)"
    )


# ------------------------------------------------------------------------------ notebook 07


def _macro_micro_f1(fn: Callable) -> str:
    tp = torch.tensor([30.0, 5.0, 0.0, 2.0])
    fp = torch.tensor([10.0, 1.0, 0.0, 6.0])
    fn_ = torch.tensor([5.0, 15.0, 0.0, 8.0])
    per_label = f1_from_counts(tp, fp, fn_).double()
    macro = per_label.mean()
    micro = f1_from_counts(tp.sum(), fp.sum(), fn_.sum()).double()
    value = _call(fn, tp, fp, fn_).flatten()
    if value.numel() != 2:
        raise _wrong(
            f"your function returns {value.numel()} values: return the pair (macro F1, micro F1)"
        )
    if torch.isnan(value[0]):
        raise _wrong(
            "your macro F1 is nan: the third label has no true positive, false positive or "
            "false negative, so its 2 TP / (2 TP + FP + FN) is 0 / 0; count it as 0"
        )
    precision = tp / (tp + fp).clamp(min=1)
    recall = tp / (tp + fn_).clamp(min=1)
    p_mean, r_mean = precision.mean(), recall.mean()
    _match(
        value,
        torch.stack([macro, micro]),
        {
            "the two are swapped: return (macro F1, micro F1)": torch.stack([micro, macro]),
            "your macro F1 leaves out the label with nothing to count: macro averages over all "
            "C labels, that one with F1 = 0": torch.stack([per_label[[0, 1, 3]].mean(), micro]),
            "your macro F1 is the F1 of the mean precision and mean recall: macro F1 is the "
            "mean of the per-label F1 values": torch.stack(
                [2 * p_mean * r_mean / (p_mean + r_mean), micro]
            ).double(),
            "your micro F1 is the mean of the per-label F1 values, the macro one: micro adds "
            "up TP, FP and FN over the labels first": torch.stack([macro, macro]),
        },
        f"for tp = {_listed(tp)}, fp = {_listed(fp)}, fn = {_listed(fn_)} your pair differs",
    )
    return (
        f"macro F1 {macro.item():.3f} (each label counts the same), "
        f"micro F1 {micro.item():.3f} (the common labels weigh more)."
    )


def _pos_weight_columns(fn: Callable) -> str:
    cases = (
        torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
        torch.tensor(  # square: N = C, where a weight per example has the right shape
            [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
        ),
    )
    for labels in cases:
        n, c = labels.shape
        positives = labels.sum(0)
        ref = ((n - positives) / positives).double()
        value = _call(fn, labels)
        if value.shape == (n,) and n != c:
            raise _wrong(
                f"your weights have shape [{n}], one per example: count over the examples "
                f"(dim 0) to get one weight per label, shape [{c}]"
            )
        if value.numel() == 1:
            raise _wrong(
                f"your answer is one number for all labels: count each column on its own, "
                f"shape [{c}]"
            )
        per_example = labels.sum(1)
        _match(
            value,
            ref,
            {
                f"with {n} examples and {c} labels your [N] weights have the shape of [C] and "
                "broadcast silently: sum over dim 0 (the examples), not dim 1": (
                    (c - per_example) / per_example
                ).double(),
                "upside down: pos_weight is negatives over positives, so a rare label gets a "
                "weight above 1": (positives / (n - positives)).double(),
                "that is the share of negatives; pos_weight is negatives over positives": (
                    (n - positives) / n
                ).double(),
                "that is the share of positives; pos_weight is negatives over positives": (
                    positives / n
                ).double(),
            },
            f"for labels {_listed(labels)} your weights differ",
        )
    return "Negatives over positives, one weight per column: shape [C]."


# ------------------------------------------------------------------------------ notebook 08


def _cost_threshold(answer: object) -> str:
    value = _number(answer)
    ref = 1 / (1 + 9)
    mistakes = {
        0.9: "upside down: 0.9 is where a false alarm would cost 9 times a miss. Here a miss "
        "costs more, so say malignant sooner, below 0.5: at p the costs are 9 p for benign "
        "and 1 - p for malignant",
        0.5: "0.5 weighs a miss and a false alarm the same; here a miss costs 9 times more",
        1 / 9: "1/9 is where the odds p / (1 - p) reach 1/9; the question asks for the "
        "probability p",
    }
    if _typed_match(value, ref):
        return "Say malignant above p = 1 / (1 + 9) = 0.1: the costs 9 p and 1 - p are equal there."
    for mistaken, message in mistakes.items():
        if _typed_match(value, mistaken):
            raise _wrong(message)
    raise _wrong(
        f"your threshold is {value:.3g}: find the p where the expected costs 9 p (say benign) "
        "and 1 - p (say malignant) are equal"
    )


_P08 = torch.tensor([0.05, 0.08, 0.12, 0.32, 0.45, 0.5, 0.55, 0.68, 0.72, 0.91, 0.95, 0.97])
_Y08 = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])


def _ece_with_edges_up(p: torch.Tensor, y: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The ECE with a probability on an edge put in the bin above it: the common slip."""
    index = (p * n_bins).long().clamp(max=n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    kept = count > 0
    predicted = torch.bincount(index, weights=p.double(), minlength=n_bins)[kept] / count[kept]
    observed = torch.bincount(index, weights=y.double(), minlength=n_bins)[kept] / count[kept]
    return (count[kept] / count.sum() * (observed - predicted).abs()).sum()


def _ece(fn: Callable) -> str:
    for n_bins in (10, 4):
        bins = reliability_bins(_P08, _Y08, n_bins)  # an edge goes to the bin below
        count, gap = bins["count"], bins["observed"] - bins["predicted"]
        ref = expected_calibration_error(_P08, _Y08, n_bins)
        value = _call(fn, _P08, _Y08, n_bins)
        _one_value(value, len(_P08), "the ECE")
        if torch.isnan(value).any():
            raise _wrong(
                "your ECE is nan: an empty bin has no mean (0 / 0); leave empty bins out, "
                "their weight is 0 anyway"
            )
        _match(
            value.flatten()[0],
            ref,
            {
                "your bins count the same: weight each bin's gap by its share of the "
                "predictions": gap.abs().mean(),
                "your gaps have signs, so over- and under-confident bins cancel: take "
                "|observed - predicted|": (count / count.sum() * gap).sum(),
                "that is the largest gap (the maximum calibration error); the ECE averages "
                "the gaps, weighted by the bins' sizes": gap.abs().max(),
                "a probability on an edge, 0.5 here, goes to the bin below it (as scikit-learn's "
                "calibration_curve bins): use torch.bucketize, or ceil(p n) - 1": (
                    _ece_with_edges_up(_P08, _Y08, n_bins)
                ),
            },
            f"with n_bins = {n_bins} your ECE differs",
        )
    return "The gaps |observed - predicted|, weighted by each bin's share, as the lesson's ECE."


# ------------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, what it asks, and its grader."""

    title: str
    grader: Callable[[object], str]


EXERCISES: dict[str, Exercise] = {
    "01.1": Exercise("the gradient of BCE with respect to p", _bce_gradient),
    "01.2": Exercise("BCE by hand, with torch's clamp", _bce_by_hand),
    "02.1": Exercise("the mean loss over a mask", _masked_mean),
    "02.2": Exercise("a loss for outputs [N, 1] and labels [N]", _column_loss),
    "03.1": Exercise("where float16's sigmoid saturates", _float16_saturation),
    "03.2": Exercise("the stable logit form", _stable_logits),
    "04.1": Exercise("the optimal logit under pos_weight", _optimal_logit),
    "04.2": Exercise("the chance loss under pos_weight", _weighted_chance),
    "05.1": Exercise("the chance loss for a label balance", _chance_loss),
    "05.2": Exercise("the guide's MLP, counted", _mlp_parameters),
    "06.1": Exercise("the loss of a guess", _guess_loss),
    "06.2": Exercise("Keras's clip against torch's clamp", _keras_clip),
    "07.1": Exercise("macro and micro F1 from the counts", _macro_micro_f1),
    "07.2": Exercise("pos_weight for each label", _pos_weight_columns),
    "08.1": Exercise("a threshold for unequal costs", _cost_threshold),
    "08.2": Exercise("the expected calibration error", _ece),
}


def grade(exercise: str, answer: object) -> Feedback:
    """Grade an answer to `exercise` (an id such as "01.1"); never raises for the answer."""
    if exercise not in EXERCISES:
        raise ValueError(f"exercise={exercise!r} is not one of {sorted(EXERCISES)}")
    try:
        return Feedback("right", EXERCISES[exercise].grader(answer))
    except _Stop as stop:
        return stop.feedback


def check(exercise: str, answer: object) -> None:
    """Print one line of feedback on an answer to `exercise`, as a notebook shows it."""
    feedback = grade(exercise, answer)
    print(feedback.line(f"Exercise {exercise}, {EXERCISES[exercise].title}"))
