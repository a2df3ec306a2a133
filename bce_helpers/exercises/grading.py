"""Grading an exercise: the learner's answer against the lesson's reference, as feedback.

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

NOT_ATTEMPTED = "not attempted yet"
ATOL = 1e-4
RTOL = 1e-4


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


class Stop(Exception):
    """Grading stops here with this feedback (a placeholder, an error, a wrong value)."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(feedback.message)
        self.feedback = feedback


def wrong(message: str) -> Stop:
    return Stop(Feedback("wrong", message))


def is_placeholder(answer: object) -> bool:
    return answer is None or answer is Ellipsis


def call_answer(fn: Callable, *args: object) -> torch.Tensor:
    """Call the learner's function; a placeholder or an error becomes feedback."""
    if is_placeholder(fn):
        raise Stop(Feedback("not attempted", ""))
    if not callable(fn):
        raise wrong(f"expected a function, got {type(fn).__name__} {fn!r}")
    try:
        result = fn(*(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
    except NotImplementedError:
        raise Stop(Feedback("not attempted", "")) from None
    except Exception as err:  # the learner's bug, reported in the notebook
        raise wrong(f"your function raised {type(err).__name__}: {err}") from None
    if is_placeholder(result):
        raise Stop(Feedback("not attempted", ""))
    try:
        return torch.as_tensor(result).detach().to(torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError):
        raise wrong(f"expected a number or a tensor, got {type(result).__name__}") from None


def number_answer(answer: object) -> float:
    """A learner's numeric answer as a float; a placeholder becomes feedback."""
    if is_placeholder(answer):
        raise Stop(Feedback("not attempted", ""))
    try:
        return float(torch.as_tensor(answer).item())
    except (TypeError, ValueError, RuntimeError):
        raise wrong(f"expected one number, got {type(answer).__name__} {answer!r}") from None


def typed_match(value: float, ref: float, digits: int = 3) -> bool:
    """True if `value` agrees with `ref` to `digits` significant digits, as a learner types
    it: 0.693 for ln 2 = 0.693147 passes, 0.694 does not."""
    if ref == 0:
        return value == 0
    unit = 10 ** (math.floor(math.log10(abs(ref))) - digits + 1)
    return abs(value - ref) <= unit / 2 * (1 + 1e-9)


def close(value: torch.Tensor | float, ref: torch.Tensor | float, atol: float = ATOL) -> bool:
    value_t = torch.as_tensor(value, dtype=torch.float64)
    ref_t = torch.as_tensor(ref, dtype=torch.float64)
    if value_t.shape != ref_t.shape:
        return False
    return bool(torch.allclose(value_t, ref_t, atol=atol, rtol=RTOL, equal_nan=True))


def match(value, ref, mistakes: dict[str, object], describe: str) -> None:
    """Pass if value matches ref; else raise the first mistake whose value it matches."""
    if close(value, ref):
        return
    for message, mistaken in mistakes.items():
        if close(value, mistaken):
            raise wrong(message)
    raise wrong(f"{describe}: yours {show(value)}, expected {show(ref)}")


def show(value) -> str:
    t = torch.as_tensor(value, dtype=torch.float64).flatten()
    shown = ", ".join(f"{v:.4g}" for v in t[:6].tolist())
    return shown if t.numel() == 1 else f"[{shown}{', ...' if t.numel() > 6 else ''}]"


def expect_one_value(value: torch.Tensor, n: int, what: str) -> None:
    if value.numel() != 1 and n > 1:
        raise wrong(
            f"your function returns {value.numel()} values for {n} elements: {what} is one "
            "number, the mean over all elements (reduction='mean', the default)"
        )
    if value.numel() != 1:
        raise wrong(f"your function returns {value.numel()} values: {what} is one number")


def expect_per_element(value: torch.Tensor, shape: torch.Size, what: str) -> None:
    if value.shape != shape:
        raise wrong(
            f"your function returns shape {tuple(value.shape)}: {what} has one value per "
            f"element, shape {tuple(shape)} (reduction='none')"
        )


SUM_NOT_MEAN = "your loss is the sum, not the mean: divide by the number of elements"
WRONG_SIGN = (
    "wrong sign: the log of a probability is at most 0, and the minus sign in front of "
    "the formula makes the loss positive"
)


def listed(t: torch.Tensor) -> str:
    """A tensor's values as a person writes them: 0.9, not 0.8999999761581421."""
    rounded = [float(f"{v:.4g}") for v in t.flatten().tolist()]
    if t.dim() < 2:
        return str(rounded)
    cols = t.shape[-1]
    return str([rounded[i : i + cols] for i in range(0, len(rounded), cols)])


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, what it asks, and its grader."""

    title: str
    grader: Callable[[object], str]
