"""Exact values of bce_suite.parameters: how each command-line or YAML value is typed like
its notebook's default, the exact refusals (naming the parameter, the value and what is
allowed), run names, sweep combinations and grid files. Fast: no notebook is executed."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from bce_suite.parameters import (
    ParameterError,
    check_parameters,
    coerce_value,
    declared_parameters,
    effective_parameters,
    grid,
    load_grid,
    run_name,
    run_names,
    sweep_parameters,
)

REPO = Path(__file__).resolve().parents[2]
NB01 = REPO / "notebooks" / "01_bce_loss.ipynb"
NB04 = REPO / "notebooks" / "04_pos_weight.ipynb"
NB05 = REPO / "notebooks" / "05_mlp_training.ipynb"
FIXTURES = REPO / "tests" / "fixtures" / "notebooks"
SQUARE = FIXTURES / "01_square.ipynb"


def refusal(name: str, value: object, default: object) -> str:
    """The message coerce_value's refusal must carry, written out independently."""
    with pytest.raises(ParameterError) as info:
        coerce_value(name, value, default)
    return str(info.value)


# --- coerce_value: booleans -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("True", True),
        ("False", False),
        ("TRUE", True),
        ("FALSE", False),
        ("  true\n", True),
        (" False ", False),
        (True, True),
        (False, False),
    ],
)
def test_a_bool_default_takes_true_or_false_in_any_case(text, expected):
    value = coerce_value("cuda_graph", text, False)
    assert value is expected
    assert coerce_value("cuda_graph", text, True) is expected  # the default's value is no hint


@pytest.mark.parametrize("value", ["yes", "1", "0", "", "truee", 1, 0, 1.0, None])
def test_a_bool_default_refuses_anything_else(value):
    assert refusal("cuda_graph", value, False) == (
        f"parameter cuda_graph: {value!r} is not bool like its default False"
    )


# --- coerce_value: integers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7), (" 7 ", 7), ("-3", -3), ("0", 0), (12, 12)]
)
def test_an_int_default_takes_integers(value, expected):
    typed = coerce_value("steps", value, 500)
    assert typed == expected
    assert type(typed) is int


@pytest.mark.parametrize("value", ["2.5", "many", "", 2.5, 2.0, True, None, [1]])
def test_an_int_default_refuses_non_integers(value):
    assert refusal("steps", value, 500) == (
        f"parameter steps: {value!r} is not int like its default 500"
    )


# --- coerce_value: floats ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.1", 0.1), (" 2 ", 2.0), ("1e-3", 0.001), (3, 3.0), (0.25, 0.25), ("-1.5", -1.5)],
)
def test_a_float_default_takes_numbers_as_floats(value, expected):
    typed = coerce_value("lr", value, 0.05)
    assert typed == expected
    assert type(typed) is float


@pytest.mark.parametrize("value", ["fast", "", True, False, None, [0.1], {"a": 1}])
def test_a_float_default_refuses_non_numbers(value):
    assert refusal("lr", value, 0.05) == (
        f"parameter lr: {value!r} is not float like its default 0.05"
    )


# --- coerce_value: strings and None -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cpu", "cpu"), (" cuda ", "cuda"), ("None", "None"), ("none", "none"), ("", "")],
)
def test_a_str_default_keeps_the_stripped_string(value, expected):
    # A str parameter never becomes None: "None" is the string itself.
    assert coerce_value("device", value, "auto") == expected


@pytest.mark.parametrize("value", [5, 2.5, True, None, ["cpu"]])
def test_a_str_default_refuses_non_strings(value):
    assert refusal("device", value, "auto") == (
        f"parameter device: {value!r} is not str like its default 'auto'"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("None", None),
        (" None ", None),
        ("out.json", "out.json"),
        (" out.json ", "out.json"),
        ("none", "none"),  # only the exact spelling of Python's None
        ("NONE", "NONE"),
        ("", ""),
        (3, 3),  # a None default says nothing about the type: YAML numbers pass as given
        (0.5, 0.5),
    ],
)
def test_a_none_default_takes_none_a_string_or_a_number(value, expected):
    typed = coerce_value("results_path", value, None)
    assert typed == expected
    assert type(typed) is type(expected)


@pytest.mark.parametrize("value", [True, False, ["a"], {"a": 1}])
def test_a_none_default_refuses_booleans_and_containers(value):
    assert refusal("results_path", value, None) == (
        f"parameter results_path: {value!r} is not a string like its default None"
    )


@pytest.mark.parametrize("default", [[1, 2], (1,), {"a": 1}])
def test_a_default_of_another_type_refuses_every_value(default):
    kind = type(default).__name__
    for value in ("a", "None", 1):
        assert refusal("odd", value, default) == (
            f"parameter odd: {value!r} is not {kind} like its default {default!r}"
        )


# --- check_parameters / sweep_parameters: the refusals name the parameter ----------------


def test_values_are_typed_from_the_declared_defaults():
    typed = check_parameters(NB05, {"epochs": "2", "lr": "1e-3", "loss": "bce", "seed": 7})
    assert typed == {"epochs": 2, "lr": 0.001, "loss": "bce", "seed": 7}
    assert isinstance(typed["lr"], float) and isinstance(typed["epochs"], int)
    assert coerce_value("results_path", "r.json", None) == "r.json"
    assert coerce_value("pos_weight", 3, 1.0) == 3.0
    with pytest.raises(ValueError, match=r"parameter epochs: '2.5' is not int like its default 3"):
        check_parameters(NB05, {"epochs": "2.5"})
    with pytest.raises(ValueError, match=r"has no parameter 'epoch'; declared: seed, device"):
        check_parameters(NB05, {"epoch": "2"})


def test_fixture_parameters_are_typed_and_filled_from_the_defaults():
    assert check_parameters(SQUARE, {"x": "4", "seconds": "1"}) == {"x": 4, "seconds": 1.0}
    assert effective_parameters(SQUARE, {"x": 4}) == {
        "x": 4,
        "seconds": 0.0,
        "figure": False,
        "pid_path": None,
        "seed": 0,
    }
    with pytest.raises(ParameterError, match="has no parameter 'results_path'; declared: x,"):
        check_parameters(SQUARE, {"results_path": "elsewhere.json"})  # the runner's to set
    none = FIXTURES / "03_no_parameters.ipynb"
    with pytest.raises(ParameterError, match="declared: none \\(it has no parameters cell\\)"):
        check_parameters(none, {"x": "1"})


def test_check_parameters_types_values_and_names_the_refused_one():
    assert check_parameters(NB04, {"steps": " 20 ", "lr": "0.5"}) == {"steps": 20, "lr": 0.5}
    with pytest.raises(ParameterError) as info:
        check_parameters(NB04, {"lr": "0.5", "steps": "many"})
    assert str(info.value) == "parameter steps: 'many' is not int like its default 500"


def test_unknown_parameters_are_all_named_with_what_is_declared():
    with pytest.raises(ParameterError) as info:
        check_parameters(NB01, {"foo": "1", "n_points": "5", "bar": "2"})
    assert str(info.value) == (
        "01_bce_loss has no parameter 'foo', 'bar'; declared: seed, device, n_points"
    )


def test_sweep_gives_each_combination_typed_in_order():
    runs = sweep_parameters(NB04, {"steps": ["10", "20"], "lr": ["0.1", 0.2]}, {"seed": "7"})
    assert runs == [
        ({"steps": 10, "lr": 0.1}, {"seed": 7, "steps": 10, "lr": 0.1}),
        ({"steps": 10, "lr": 0.2}, {"seed": 7, "steps": 10, "lr": 0.2}),
        ({"steps": 20, "lr": 0.1}, {"seed": 7, "steps": 20, "lr": 0.1}),
        ({"steps": 20, "lr": 0.2}, {"seed": 7, "steps": 20, "lr": 0.2}),
    ]
    for swept, given in runs:
        assert type(swept["steps"]) is int and type(swept["lr"]) is float
        assert type(given["seed"]) is int


def test_sweep_names_every_parameter_without_values():
    with pytest.raises(ParameterError) as info:
        sweep_parameters(NB04, {"pos_weight": [], "steps": ["5"], "lr": []}, {})
    assert str(info.value) == "no values given for pos_weight, lr"


@pytest.mark.parametrize(
    ("swept", "fixed", "message"),
    [
        (
            {"lr": ["0.1"]},
            {"steps": "many"},
            "parameter steps: 'many' is not int like its default 500",
        ),
        ({"lr": ["0.1"]}, {"steps": True}, "parameter steps: True is not int like its default 500"),
        ({"steps": [True]}, {}, "parameter steps: True is not int like its default 500"),
        ({"steps": ["5", "x"]}, {}, "parameter steps: 'x' is not int like its default 500"),
    ],
)
def test_sweep_refuses_a_value_naming_the_parameter_and_its_default_type(swept, fixed, message):
    with pytest.raises(ParameterError) as info:
        sweep_parameters(NB04, swept, fixed)
    assert str(info.value) == message


# --- run_name and grid ------------------------------------------------------------------


def test_run_name_without_parameters_is_the_stem():
    assert run_name("01_bce_loss", {}) == "01_bce_loss"


def test_run_name_joins_parameters_in_order_and_makes_them_file_safe():
    assert run_name("04_pos_weight", {"pos_weight": 2.0}) == "04_pos_weight__pos_weight=2.0"
    assert run_name("04_pos_weight", {"pos_weight": 2.0, "lr": 1e-05}) == (
        "04_pos_weight__pos_weight=2.0__lr=1e-05"
    )
    assert run_name("05_mlp_training", {"device": "cuda:0", "path": "a/b c+d"}) == (
        "05_mlp_training__device=cuda_0__path=a_b_c+d"
    )


def test_run_names_are_each_combinations_name_and_refuse_two_that_collide():
    combos = [{"path": "a b"}, {"path": "a+b"}, {"path": "ab"}]
    assert run_names("nb", combos) == ["nb__path=a_b", "nb__path=a+b", "nb__path=ab"]
    assert run_names("nb", []) == []
    with pytest.raises(ParameterError) as refused:
        run_names("nb", [{"path": "a/b"}, {"path": "x"}, {"path": "a_b"}])
    assert str(refused.value) == (
        "two runs would have the same name 'nb__path=a_b': {'path': 'a/b'} and {'path': 'a_b'} "
        "(a value given twice, or values that differ only in characters a file name cannot "
        "hold); give each run distinct values"
    )


def test_grid_is_the_cartesian_product_first_name_slowest():
    assert grid({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]
    assert grid({"a": [1], "b": []}) == []


# --- load_grid --------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def grid_refusal(path: Path) -> str:
    with pytest.raises(ParameterError) as info:
        load_grid(path)
    return str(info.value)


def test_load_grid_wraps_single_values_in_lists_and_reads_fixed(tmp_path):
    path = write(tmp_path, "parameters:\n  lr: 0.1\n  steps: [10, 20]\nfixed:\n  seed: 3\n")
    assert load_grid(path) == ({"lr": [0.1], "steps": [10, 20]}, {"seed": 3})


def test_load_grid_without_fixed_or_with_empty_fixed(tmp_path):
    expected = ({"device": ["cpu", "cuda"]}, {})
    assert load_grid(write(tmp_path, "parameters:\n  device: [cpu, cuda]\n")) == expected
    assert load_grid(write(tmp_path, "parameters:\n  device: [cpu, cuda]\nfixed:\n")) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "fixed:\n  steps: 10\n",
        "parameters:\n",
        "parameters: {}\n",
        "parameters: [lr, steps]\n",  # not a mapping
        "parameters: 0.1\n",
    ],
)
def test_load_grid_needs_a_non_empty_parameters_mapping(tmp_path, text):
    path = write(tmp_path, text)
    assert grid_refusal(path) == (
        f"{path}: needs a `parameters:` mapping of name -> list of values"
    )


@pytest.mark.parametrize(
    "text",
    [
        "parameters:\n  lr: [0.1]\nextra: 1\n",
        "parameter:\n  lr: [0.1]\n",
        "- lr\n",
        "just text\n",
    ],
)
def test_load_grid_refuses_other_top_level_shapes(tmp_path, text):
    path = write(tmp_path, text)
    assert grid_refusal(path) == (
        f"{path}: a grid is a mapping with the keys `parameters:` and optional `fixed:`"
    )


@pytest.mark.parametrize("fixed", ["[1, 2]", "10"])
def test_load_grid_refuses_fixed_that_is_not_a_mapping(tmp_path, fixed):
    path = write(tmp_path, f"parameters:\n  lr: [0.1]\nfixed: {fixed}\n")
    assert grid_refusal(path) == f"{path}: `fixed:` must be a mapping of name -> one value"


def test_load_grid_names_every_parameter_without_values(tmp_path):
    path = write(tmp_path, "parameters:\n  lr: []\n  steps: [1]\n  seed: []\n")
    assert grid_refusal(path) == f"{path}: no values given for lr, seed"


def test_load_grid_names_the_line_of_a_yaml_syntax_error(tmp_path):
    path = write(tmp_path, "parameters:\n  lr: [0.1\n  steps: 2\n")
    message = grid_refusal(path)
    assert message.startswith(f"{path}:3: YAML syntax error: ")


def test_load_grid_a_yaml_error_without_a_line_gives_its_first_line(tmp_path):
    # A character YAML refuses to read: the reader's error has no problem and no mark.
    path = write(tmp_path, "parameters:\n  lr: [0.1]\x07\n")
    assert grid_refusal(path) == (
        f"{path}: YAML syntax error: unacceptable character #x0007: "
        "special characters are not allowed"
    )


def test_load_grid_a_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    assert grid_refusal(path) == (f"{path}: cannot read the grid file (No such file or directory)")


# --- declared_parameters: re-read when the notebook changes ------------------------------


def _notebook(path: Path, source: str, mtime_ns: int) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.metadata["language_info"] = {"name": "python"}
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, path)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_declared_parameters_follow_an_edited_notebook(tmp_path):
    path = tmp_path / "01_edited.ipynb"
    _notebook(path, "n = 1\nname = 'a'\n", 1_000_000_000_000_000_000)
    assert declared_parameters(path) == {"n": 1, "name": "a"}
    _notebook(path, "n = 2\nflag = True\n", 1_000_000_001_000_000_000)
    assert declared_parameters(path) == {"n": 2, "flag": True}
