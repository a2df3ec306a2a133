"""Exercises with instant feedback: the learner's answer against the lesson's reference.

Each exercise has an id ("01.1" = notebook 01, first exercise). `check(id, answer)`
prints one line: right, not attempted yet, or what is wrong in terms of the lesson. The
answer is a function (called on inputs chosen to expose the common mistakes) or a number;
its source is never read. A wrong answer, or one that raises, is reported, never raised,
so an unanswered exercise never stops the rest of a notebook. `grading` holds what every
grader shares; each notebook's graders are in the module named after it.
"""

from __future__ import annotations

from bce_helpers.exercises import (
    bce_loss,
    bce_with_logits,
    circles,
    functional_bce,
    mlp_training,
    multi_label,
    pos_weight,
    thresholds_calibration,
)
from bce_helpers.exercises.grading import NOT_ATTEMPTED, Exercise, Feedback, Stop

__all__ = ["EXERCISES", "NOT_ATTEMPTED", "Exercise", "Feedback", "check", "grade"]

EXERCISES: dict[str, Exercise] = {
    **bce_loss.EXERCISES,
    **functional_bce.EXERCISES,
    **bce_with_logits.EXERCISES,
    **pos_weight.EXERCISES,
    **mlp_training.EXERCISES,
    **circles.EXERCISES,
    **multi_label.EXERCISES,
    **thresholds_calibration.EXERCISES,
}


def grade(exercise: str, answer: object) -> Feedback:
    """Grade an answer to `exercise` (an id such as "01.1"); never raises for the answer."""
    if exercise not in EXERCISES:
        raise ValueError(f"exercise={exercise!r} is not one of {sorted(EXERCISES)}")
    try:
        return Feedback("right", EXERCISES[exercise].grader(answer))
    except Stop as stop:
        return stop.feedback


def check(exercise: str, answer: object) -> None:
    """Print one line of feedback on an answer to `exercise`, as a notebook shows it."""
    feedback = grade(exercise, answer)
    print(feedback.line(f"Exercise {exercise}, {EXERCISES[exercise].title}"))
