"""bce_helpers.exercises.grading, the framework every grader shares: feedback lines, answers
called and compared, numbers read as a learner types them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bce_helpers.exercises.grading import (
    NOT_ATTEMPTED,
    Exercise,
    Feedback,
    Stop,
    call_answer,
    close,
    expect_one_value,
    expect_per_element,
    listed,
    match,
    number_answer,
    show,
    typed_match,
    wrong,
)


def stopped(call, *args) -> Feedback:
    """The feedback a grading step stops with."""
    with pytest.raises(Stop) as stop:
        call(*args)
    assert str(stop.value) == stop.value.feedback.message
    return stop.value.feedback


# --- Feedback, Stop, wrong --------------------------------------------------------------------


def test_a_feedback_line_is_the_title_the_status_and_the_message_capitalised():
    assert Feedback("right", "it matches.").line("Exercise 01.2, BCE") == (
        "Exercise 01.2, BCE: right. It matches."
    )
    assert Feedback("wrong", "").line("T") == "T: wrong. "
    assert Feedback("not attempted", "ignored").line("T") == (
        f"T: {NOT_ATTEMPTED} (write your answer in the cell above, run both)"
    )
    assert NOT_ATTEMPTED == "not attempted yet"


def test_wrong_is_a_stop_with_wrong_feedback():
    stop = wrong("off by one")
    assert isinstance(stop, Stop) and isinstance(stop, Exception)
    assert stop.feedback == Feedback("wrong", "off by one") and str(stop) == "off by one"


# --- call_answer, number_answer ---------------------------------------------------------------


@pytest.mark.parametrize("placeholder", [None, Ellipsis])
def test_call_answer_a_placeholder_is_not_attempted(placeholder):
    assert stopped(call_answer, placeholder, 1.0) == Feedback("not attempted", "")


def not_implemented(x):
    raise NotImplementedError


@pytest.mark.parametrize("returns", [lambda x: None, lambda x: ..., not_implemented])
def test_call_answer_a_function_that_returns_a_placeholder_or_is_not_written_yet(returns):
    assert stopped(call_answer, returns, 1.0) == Feedback("not attempted", "")


def test_call_answer_reports_what_is_not_a_function_or_raises_or_is_not_a_number():
    assert stopped(call_answer, 0.5, 1.0) == Feedback("wrong", "expected a function, got float 0.5")
    assert stopped(call_answer, lambda x: 1 / 0, 1.0) == Feedback(
        "wrong", "your function raised ZeroDivisionError: division by zero"
    )
    assert stopped(call_answer, lambda x: "0.5", 1.0) == Feedback(
        "wrong", "expected a number or a tensor, got str"
    )


def test_call_answer_returns_float64_on_the_cpu_detached_and_leaves_the_inputs_alone():
    p = torch.tensor([0.25, 0.5], requires_grad=True)
    y = torch.tensor([1.0, 0.0])

    def in_place(p, y):
        y.add_(1)  # a learner's in-place edit of an input
        return p * 2

    value = call_answer(in_place, p, y)
    assert value.dtype == torch.float64 and value.device.type == "cpu"
    assert not value.requires_grad and value.tolist() == [0.5, 1.0]
    assert y.tolist() == [1.0, 0.0], "the function got a copy of each tensor"
    assert call_answer(lambda a, b: a + b, 2, 3.5).tolist() == 5.5  # non-tensors passed as is
    assert call_answer(lambda: [1, 2]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(0.25, 0.25), (3, 3.0), (torch.tensor(1.5), 1.5), (np.float32(0.5), 0.5), ([2.0], 2.0)],
)
def test_number_answer_reads_one_number_of_any_kind(answer, expected):
    value = number_answer(answer)
    assert value == expected and type(value) is float


def test_number_answer_refuses_what_is_not_one_number():
    assert stopped(number_answer, None) == Feedback("not attempted", "")
    assert stopped(number_answer, ...) == Feedback("not attempted", "")
    assert stopped(number_answer, [1.0, 2.0]) == Feedback(
        "wrong", "expected one number, got list [1.0, 2.0]"
    )
    assert stopped(number_answer, "0.5") == Feedback("wrong", "expected one number, got str '0.5'")


# --- typed_match, close, match, show ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ref", "digits", "expected"),
    [
        (0.693, math.log(2), 3, True),  # ln 2 = 0.693147...
        (0.694, math.log(2), 3, False),
        (0.69, math.log(2), 3, False),
        (0.6931, math.log(2), 4, True),
        (0.693, math.log(2), 4, False),
        (153_000, 152_705, 3, True),
        (152_000, 152_705, 3, False),
        (0.1, 0.1, 3, True),
        (-0.125, -0.1249, 3, True),  # the half-unit edge, either sign
        (0.0, 0.0, 3, True),
        (1e-9, 0.0, 3, False),  # a reference of 0 takes only 0
    ],
)
def test_typed_match_compares_to_the_given_significant_digits(value, ref, digits, expected):
    assert typed_match(value, ref, digits) is expected


def test_typed_match_defaults_to_three_digits_and_admits_the_half_unit_either_side():
    assert typed_match(1.2345, 1.23) and typed_match(1.2255, 1.23)  # |diff| = 0.0045 < 0.005
    assert typed_match(1.235, 1.23) and typed_match(1.225, 1.23)  # exactly half a unit
    assert not typed_match(1.236, 1.23) and not typed_match(1.224, 1.23)


def test_close_needs_the_same_shape_and_allows_1e_minus_4_and_nan_for_nan():
    assert close(torch.tensor([1.0, 2.0]), [1.0, 2.0])
    assert not close(torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 2.0]]))
    assert close(1.0 + 0.9e-4, 1.0) and not close(1.0 + 3e-4, 1.0)  # atol 1e-4 + rtol 1e-4
    assert close(1000.0 + 0.09, 1000.0) and not close(1000.0 + 0.2, 1000.0)  # rtol 1e-4
    assert close(0.5 + 0.009, 0.5, atol=0.01) and not close(0.5 + 0.02, 0.5, atol=0.01)
    assert close(math.nan, math.nan) and not close(math.nan, 0.0)


def test_match_passes_names_the_first_mistake_matched_or_describes_the_difference():
    mistakes = {"the sum": 6.0, "the sum again": 6.0, "the sign": -2.0}
    assert match(torch.tensor(2.0), 2.0, mistakes, "differs") is None
    assert stopped(match, 6.0, 2.0, mistakes, "differs") == Feedback("wrong", "the sum")
    assert stopped(match, -2.0, 2.0, mistakes, "differs") == Feedback("wrong", "the sign")
    assert stopped(match, 3.0, 2.0, mistakes, "your loss differs") == Feedback(
        "wrong", "your loss differs: yours 3, expected 2"
    )


def test_show_gives_four_significant_digits_and_at_most_six_values():
    assert show(0.123456) == "0.1235"
    assert show(torch.tensor([[1.0, 2.5], [3.0, 1e-5]])) == "[1, 2.5, 3, 1e-05]"
    assert show(torch.arange(8.0)) == "[0, 1, 2, 3, 4, 5, ...]"
    assert show(torch.arange(6.0)) == "[0, 1, 2, 3, 4, 5]"


def test_listed_writes_values_as_a_person_types_them_keeping_rows():
    assert listed(torch.tensor([0.9, 0.2])) == "[0.9, 0.2]"  # not 0.8999999761581421
    assert listed(torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]])) == (
        "[[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]]"
    )
    assert listed(torch.tensor(0.123456)) == "[0.1235]"


# --- expect_one_value, expect_per_element, Exercise -------------------------------------------


def test_expect_one_value_says_the_mean_is_one_number():
    assert expect_one_value(torch.tensor([0.5]), 6, "the loss") is None
    assert stopped(expect_one_value, torch.zeros(6), 6, "the loss") == Feedback(
        "wrong",
        "your function returns 6 values for 6 elements: the loss is one number, the mean over "
        "all elements (reduction='mean', the default)",
    )
    assert stopped(expect_one_value, torch.zeros(2), 1, "the loss") == Feedback(
        "wrong", "your function returns 2 values: the loss is one number"
    )


def test_expect_per_element_names_both_shapes():
    assert expect_per_element(torch.zeros(2, 3), torch.Size([2, 3]), "the gradient") is None
    assert stopped(expect_per_element, torch.zeros(6), torch.Size([2, 3]), "the gradient") == (
        Feedback(
            "wrong",
            "your function returns shape (6,): the gradient has one value per element, shape "
            "(2, 3) (reduction='none')",
        )
    )


def test_an_exercise_is_a_frozen_title_and_grader():
    exercise = Exercise("a title", lambda answer: "right")
    assert exercise.title == "a title" and exercise.grader(None) == "right"
    with pytest.raises(dataclasses.FrozenInstanceError):
        exercise.title = "another"
