"""The shared records of bce_suite.runs: the headline numbers of a results JSON, how a
number is shown, and what counts as retried."""

import pytest

from bce_suite.runs import RunResult, format_number, headline_numbers


def test_headline_numbers_are_the_scalar_numbers_not_parameters_or_environment():
    results = {
        "notebook": "x",
        "params": {"seed": 1},
        "device": "cpu",
        "torch_version": "2.14.1",
        "loss": 0.20141,
        "n": 3,
        "ok": True,  # a bool is no headline number
        "curve": [0.1, 0.2],
        "name": "bce",
    }
    assert headline_numbers(results) == {"loss": 0.20141, "n": 3}
    assert headline_numbers({}) == {}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.20141, "0.2014"),  # 4 significant digits
        (12.5, "12.5"),
        (1234567.0, "1.235e+06"),
        (0.0, "0"),
        (3, "3"),  # an int as it is, however long
        (123456789, "123456789"),
        ("n/a", "n/a"),
    ],
)
def test_format_number_gives_floats_4_significant_digits(value, shown):
    assert format_number(value) == shown


def test_a_result_is_retried_when_a_worker_died_with_it():
    assert not RunResult("01", "ok", 1.0).retried
    assert RunResult("01", "ok", 1.0, lost_workers=["tcp://10.0.0.2:4001"]).retried
