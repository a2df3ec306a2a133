"""What the test file of each notebook's exercises shares: the three tests every set of
exercises gets, made from that notebook's right answers and common mistakes, and the
textbook formula that several mistakes start from.

Every answer is written independently of bce_helpers.exercises: right ones with torch's
own functions or another library, wrong ones as the mistake a learner makes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from bce_helpers.exercises import grade


def textbook(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE per element as a textbook writes it, with no clamp: -(y log p + (1 - y) log(1 - p))."""
    return -(y * p.log() + (1 - y) * (1 - p).log())


def grading_tests(
    module: ModuleType, right: dict[str, object], mistakes: list[tuple[str, object, str]]
) -> tuple[Callable, ...]:
    """Three tests for a notebook's exercises module: each right answer passes; each common
    mistake (exercise, answer, a phrase its message must contain) is wrong with its message;
    every exercise of the module has a right answer and at least two mistakes."""

    @pytest.mark.parametrize("exercise", sorted(right))
    def test_the_right_answer_passes(exercise):
        feedback = grade(exercise, right[exercise])
        assert feedback.status == "right", feedback.message

    @pytest.mark.parametrize(("exercise", "answer", "phrase"), mistakes)
    def test_each_common_mistake_gets_its_message(exercise, answer, phrase):
        feedback = grade(exercise, answer)
        assert feedback.status == "wrong" and phrase in feedback.message, feedback.message

    def test_every_exercise_has_a_right_answer_and_two_mistakes():
        assert set(right) == set(module.EXERCISES)
        named = Counter(exercise for exercise, _, _ in mistakes)
        assert set(named) == set(module.EXERCISES) and min(named.values()) >= 2

    return (
        test_the_right_answer_passes,
        test_each_common_mistake_gets_its_message,
        test_every_exercise_has_a_right_answer_and_two_mistakes,
    )
