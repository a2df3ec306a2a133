"""bce_helpers.results: values made plain JSON (checked against the json module itself), files
written whole or not at all, and a results record read back as written."""

import json
import math
import os
from decimal import Decimal

import numpy as np
import pytest
import torch

from bce_helpers.results import (
    read_results,
    to_jsonable,
    write_bytes_atomic,
    write_json_atomic,
    write_results,
    write_text_atomic,
)


def test_to_jsonable_turns_tensors_arrays_and_tuples_into_plain_json():
    value = {
        "loss": torch.tensor(0.25),
        "grad": torch.tensor([[1.0, -2.0]], requires_grad=True) * 1,
        "counts": np.array([3, 4], dtype=np.int64),
        "share": np.float32(0.5),
        "pair": (1, "a"),
        7: [torch.tensor([True, False]), {"inner": (np.int64(2),)}],
        "plain": {"none": None, "text": "x", "flag": True, "real": 1.5},
    }
    plain = to_jsonable(value)
    expected = {
        "loss": 0.25,
        "grad": [[1.0, -2.0]],
        "counts": [3, 4],
        "share": 0.5,
        "pair": [1, "a"],
        "7": [[True, False], {"inner": [2]}],
        "plain": {"none": None, "text": "x", "flag": True, "real": 1.5},
    }
    assert plain == expected
    assert json.loads(json.dumps(plain)) == expected, "only types json writes as they are"
    assert type(plain["counts"][0]) is int and type(plain["share"]) is float


def test_write_json_atomic_round_trips_through_read_results_nan_and_inf_included(tmp_path):
    path = tmp_path / "deep" / "er" / "r.json"  # folders are made
    data = {"a": [1, 2.5, "é ✓"], "nan": math.nan, "inf": math.inf, "t": torch.arange(3)}
    assert write_json_atomic(path, data) == path
    back = read_results(path)
    assert back["a"] == [1, 2.5, "é ✓"] and back["t"] == [0, 1, 2]
    assert math.isnan(back["nan"]) and back["inf"] == math.inf
    text = path.read_text(encoding="utf-8")  # indented for a person, ending in a newline
    assert text.startswith('{\n  "a": [\n    1,\n') and text.endswith("\n}\n")
    assert '"nan": NaN' in text and '"inf": Infinity' in text
    assert os.listdir(path.parent) == ["r.json"], "no temporary file left beside it"


@pytest.mark.parametrize(
    ("bad", "where", "shown"),
    [
        ({"x": {1, 2}}, "data['x']", "set {1, 2}"),
        ({"x": [1.0, b"ab"]}, "data['x'][1]", "bytes b'ab'"),
        ([0, {"deep": (1, 1j)}], "data[1]['deep'][1]", "complex 1j"),
        (Decimal("1.5"), "data", "Decimal Decimal('1.5')"),
    ],
)
def test_a_value_json_cannot_hold_is_refused_by_where_it_sits_and_nothing_is_written(
    tmp_path, bad, where, shown
):
    path = tmp_path / "r.json"
    path.write_text('{"old": 1}\n')
    with pytest.raises(TypeError) as refused:
        write_json_atomic(path, bad)
    with pytest.raises(TypeError):
        json.dumps(to_jsonable(bad))  # what json itself says of it
    assert str(refused.value) == (
        f"{where} is {shown}, which JSON cannot hold: results hold numbers, strings, booleans, "
        "None, and lists, tuples, dicts, tensors or NumPy arrays of them"
    )
    assert path.read_text() == '{"old": 1}\n', "the file before stays whole"
    assert os.listdir(tmp_path) == ["r.json"]


def test_write_text_atomic_writes_utf8_and_replaces_a_file_whole(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("old and longer than the new text")
    assert write_text_atomic(str(path), "né ✓") == path
    assert path.read_bytes() == "né ✓".encode()


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "r.bin"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["r.bin"]


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def watching_replace(src, dst):
        seen.append((os.path.dirname(src), os.path.basename(src), os.path.exists(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    write_bytes_atomic(tmp_path / "r.bin", b"\x00\x01")
    ((folder, name, existed),) = seen
    assert folder == str(tmp_path) and existed  # same folder: the rename cannot cross disks
    assert name.startswith(".r.bin.") and name.endswith(".tmp")
    assert (tmp_path / "r.bin").read_bytes() == b"\x00\x01"


def test_write_results_records_notebook_params_torch_device_and_numbers(tmp_path):
    path = tmp_path / "04.json"
    params = {"seed": 1, "lr": 0.5}
    numbers = {"loss": torch.tensor(0.5), "history": (1, 2)}
    assert write_results(path, "04_pos_weight", params, torch.device("cpu"), numbers) == path
    assert read_results(path) == {
        "notebook": "04_pos_weight",
        "params": {"seed": 1, "lr": 0.5},
        "torch_version": torch.__version__,
        "device": "cpu",
        "loss": 0.5,
        "history": [1, 2],
    }
    write_results(path, "04_pos_weight", params, "cuda:1", {})
    assert read_results(path)["device"] == "cuda:1"
