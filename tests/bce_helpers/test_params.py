"""Parameter checking, device choice, seeding and the results JSON."""

import json
import random

import numpy as np
import pytest
import torch

from bce_helpers.params import (
    SPECS,
    Number,
    available_devices,
    check_params,
    resolve_device,
    setup,
    spec_for,
)


def defaults_04(**over):
    params = dict(
        seed=42,
        device="cpu",
        results_path=None,
        pos_weight=4.0,
        positive_fraction=0.2,
        n_samples=4000,
        steps=300,
        lr=0.05,
    )
    return {**params, **over}


def test_good_values_are_normalised():
    checked = check_params("04_pos_weight", defaults_04(pos_weight=3, lr=1))
    assert checked["pos_weight"] == 3.0 and isinstance(checked["pos_weight"], float)
    assert checked["lr"] == 1.0 and isinstance(checked["lr"], float)
    assert checked["n_samples"] == 4000 and isinstance(checked["n_samples"], int)


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("pos_weight", 0, "a number > 0"),
        ("pos_weight", -2.0, "a number > 0"),
        ("pos_weight", "3", "a number > 0"),
        ("pos_weight", float("inf"), "a number > 0"),
        ("positive_fraction", 0.7, "<= 0.5"),
        ("n_samples", 10.5, "an integer >= 100"),
        ("n_samples", True, "an integer >= 100"),
        ("steps", 0, "an integer >= 1"),
        ("seed", -1, "an integer >= 0"),
        ("seed", None, "an integer >= 0"),
        ("device", "gpu", "one of 'auto', 'cpu', 'cuda', 'mps'"),
        ("results_path", 3, "None or a file path"),
    ],
)
def test_bad_value_names_parameter_value_and_allowed(name, value, allowed):
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(**{name: value}))
    msg = str(err.value)
    assert f"parameter {name}={value!r}" in msg
    assert allowed in msg


def test_unknown_and_missing_names():
    params = defaults_04(pos_wieght=3.0)
    del params["lr"]
    with pytest.raises(
        ValueError, match=r"unknown parameter\(s\) \['pos_wieght'\], missing \['lr'\]"
    ):
        check_params("04_pos_weight", params)
    with pytest.raises(ValueError, match="notebook must be one of"):
        spec_for("99_nope")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_where_there_is_none():
    with pytest.raises(ValueError, match=r"device='cuda' is not available on this machine"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device='cuda'"):
        setup("04_pos_weight", **defaults_04(device="cuda"))


def test_flag_takes_only_a_bool():
    params = dict(
        seed=1, device="cpu", results_path=None, n_samples=64, image_size=4, batch_size=8,
        epochs=1, lr=1e-3, loss="bce", dataset="fakedata", test_fraction=0.2, log_every=1,
    )  # fmt: skip
    assert check_params("05_mlp_training", {**params, "cuda_graph": False})["cuda_graph"] is False
    for bad in (1, 0, "True", None):
        with pytest.raises(ValueError) as err:
            check_params("05_mlp_training", {**params, "cuda_graph": bad})
        assert f"parameter cuda_graph={bad!r} is not allowed: expected True or False" in str(
            err.value
        )
    if not torch.cuda.is_available():
        with pytest.raises(ValueError) as err:
            setup("05_mlp_training", **params, cuda_graph=True)
        assert "parameter cuda_graph=True needs device 'cuda'" in str(err.value)
        assert "device='cpu' runs on 'cpu' here" in str(err.value)


def test_auto_picks_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else None
    if expected is None:
        mps = getattr(torch.backends, "mps", None)
        expected = "mps" if mps is not None and mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_setup_seeds_prints_and_saves(tmp_path, capsys):
    path = tmp_path / "sub" / "r.json"
    run = setup("04_pos_weight", **defaults_04(seed=7, results_path=str(path)))
    a = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(a, torch.rand(3))
    assert capsys.readouterr().out.strip() == f"device=cpu seed=7 torch={torch.__version__}"
    run.save_results(example4_loss=torch.tensor(0.25), history=[1, 2])
    data = json.loads(path.read_text())
    assert data["params"]["seed"] == 7 and data["device"] == "cpu"
    assert data["params"]["results_path"] == "r.json", "no machine path in a shared file"
    assert data["example4_loss"] == 0.25 and data["history"] == [1, 2]
    assert data["torch_version"] == torch.__version__


def test_save_results_without_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup("04_pos_weight", **defaults_04()).save_results(x=1.0)
    assert list(tmp_path.iterdir()) == []


def test_every_spec_has_the_common_three():
    for notebook in SPECS:
        assert list(spec_for(notebook))[:3] == ["seed", "device", "results_path"]


def params_05(**over):
    base = dict(
        seed=1, device="cpu", results_path=None, n_samples=640, image_size=4, batch_size=64,
        epochs=3, lr=1e-3, loss="bce", dataset="fakedata", test_fraction=0.2, log_every=10,
        cuda_graph=False,
    )  # fmt: skip
    return {**base, **over}


def test_04_refuses_data_with_too_few_positives():
    # round(100 * 0.095) = 10 positives: the least the lesson accepts
    assert check_params("04_pos_weight", defaults_04(n_samples=100, positive_fraction=0.095))
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(n_samples=100, positive_fraction=0.09))
    assert str(err.value) == (
        "parameters n_samples=100, positive_fraction=0.09 are not allowed together: the data "
        "would hold fewer than 10 positives (round(n_samples * positive_fraction)); precision, "
        "recall and the optimum logit need at least 10"
    )


def test_05_refuses_log_every_past_the_last_batch():
    # 640 images in batches of 64, 3 epochs: 30 mini-batches in all
    assert check_params("05_mlp_training", params_05(log_every=30))["log_every"] == 30
    with pytest.raises(ValueError) as err:
        check_params("05_mlp_training", params_05(log_every=31))
    assert "parameters log_every=31, n_samples=640, batch_size=64, epochs=3" in str(err.value)
    assert "log_every must not exceed the number of mini-batches" in str(err.value)
    # a short last batch counts: 650 images make 11 batches per epoch, 33 in all
    assert check_params("05_mlp_training", params_05(n_samples=650, log_every=33))


def test_bounds_print_as_written():
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(seed=2**32))
    assert "expected an integer >= 0 and <= 4294967295" in str(err.value)
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(pos_weight=2e4))
    assert "parameter pos_weight=20000.0 is not allowed: expected a number > 0 and <= 10000" in str(
        err.value
    )


def test_05_refuses_a_held_out_set_of_fewer_than_10_images():
    assert check_params("05_mlp_training", params_05(n_samples=100, test_fraction=0.1, log_every=1))
    with pytest.raises(ValueError) as err:
        check_params("05_mlp_training", params_05(n_samples=100, test_fraction=0.09, log_every=1))
    assert "parameters n_samples=100, test_fraction=0.09 are not allowed together" in str(err.value)
    assert "fewer than 10 images" in str(err.value)


def test_unknown_or_missing_alone_is_refused():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['extra'\], missing \[\]"):
        check_params("04_pos_weight", defaults_04(extra=1))
    params = defaults_04()
    del params["steps"]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \[\], missing \['steps'\]"):
        check_params("04_pos_weight", params)


def test_notebooks_without_combination_rules_pass():
    # 01 and 03 have no rule on several parameters at once: each value's own rule is all
    common = dict(seed=0, device="cpu", results_path=None)
    assert check_params("01_bce_loss", {**common, "n_points": 3})["n_points"] == 3
    checked = check_params("03_bce_with_logits", {**common, "z_max": 1, "n_points": 5})
    assert checked["z_max"] == 1.0 and isinstance(checked["z_max"], float)


def test_bounds_are_inclusive_except_an_open_low():
    # "<= 0.5" and ">= 100" admit the bound itself; "> 0" does not
    checked = check_params("04_pos_weight", defaults_04(positive_fraction=0.5, n_samples=100))
    assert checked["positive_fraction"] == 0.5 and checked["n_samples"] == 100
    assert check_params("04_pos_weight", defaults_04(pos_weight=10_000))["pos_weight"] == 1e4
    with pytest.raises(ValueError, match=r"pos_weight=0.0 is not allowed: expected a number > 0"):
        check_params("04_pos_weight", defaults_04(pos_weight=0.0))


def test_an_integer_parameter_refuses_a_float_in_range():
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(n_samples=4000.0))
    assert str(err.value) == (
        "parameter n_samples=4000.0 is not allowed: expected an integer >= 100 and <= 10000000"
    )


def test_number_without_bounds_says_only_its_kind():
    assert Number().allowed() == "an integer"
    assert Number(real=True).allowed() == "a number"
    assert Number(real=True, low=0, low_open=True).allowed() == "a number > 0"


def test_results_path_takes_a_non_empty_str_or_path(tmp_path):
    with pytest.raises(ValueError) as err:
        check_params("04_pos_weight", defaults_04(results_path=""))
    assert str(err.value) == (
        "parameter results_path='' is not allowed: expected None or a file path (str)"
    )
    path = tmp_path / "r.json"
    assert check_params("04_pos_weight", defaults_04(results_path=path))["results_path"] == str(
        path
    )


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [
        (True, True, ["cuda", "mps", "cpu"]),
        (True, False, ["cuda", "cpu"]),
        (False, True, ["mps", "cpu"]),
        (False, False, ["cpu"]),
    ],
)
def test_available_devices_lists_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert available_devices() == expected


def test_setup_seeds_python_and_numpy_too():
    setup("04_pos_weight", **defaults_04(seed=11))
    drawn = (random.random(), np.random.rand())
    random.seed(11)
    np.random.seed(11)
    assert drawn == (random.random(), np.random.rand())


def test_results_record_the_notebook(tmp_path):
    path = tmp_path / "r.json"
    setup("04_pos_weight", **defaults_04(results_path=str(path))).save_results(x=1.0)
    assert json.loads(path.read_text())["notebook"] == "04_pos_weight"


COMMON = dict(seed=0, device="cpu", results_path=None)


# 08's defaults at small sizes, the base of its combination-rule cases below
BASE_08 = dict(
    malignant_kept=0.4,
    target_recall=0.9,
    focal_alpha=0.25,
    focal_gamma=2,
    n_bins=10,
    pos_weight=4,
    positive_fraction=0.1,
    n_blobs=100,
    steps=10,
    lr=0.05,
)


@pytest.mark.parametrize(
    ("notebook", "ok", "refused", "names"),
    [
        # rows * cols <= 10,000,000
        ("02_functional_bce", dict(rows=10_000, cols=1_000), dict(cols=1_001), "rows=10000"),
        # 1001 // 2 = 500 points in batches of 50: 10 steps an epoch, 10,000 in 1,000 epochs
        (
            "06_circles",
            dict(framework="torch", n_samples=1_001, noise=0.1, epochs=1_000, batch_size=50, lr=1),
            dict(epochs=1_001),
            "epochs=1001, n_samples=1001, batch_size=50",
        ),
        # one step an epoch, but epochs * n_samples <= 20,000,000
        (
            "06_circles",
            dict(framework="torch", n_samples=10**6, noise=0, epochs=20, batch_size=10**6, lr=1),
            dict(epochs=21),
            "epochs=21, n_samples=1000000",
        ),
        # 07: epochs * ceil(n_images / batch_size) <= 20,000 optimizer steps
        (
            "07_multi_label",
            dict(n_images=1_000, image_size=16, epochs=20, batch_size=1, lr=0.01, smoothing=0),
            dict(epochs=21),
            "epochs=21, n_images=1000, batch_size=1",
        ),
        # 07: epochs * n_images * image_size**2 <= 5e8 pixels; 34 * 1e5 * 144 = 4.9e8
        (
            "07_multi_label",
            dict(n_images=10**5, image_size=12, epochs=34, batch_size=10**5, lr=0.01, smoothing=0),
            dict(epochs=35),
            "epochs=35, n_images=100000, image_size=12",
        ),
        # 08: round(212 * 0.19) = 40 malignant kept, round(212 * 0.18) = 38
        (
            "08_thresholds_calibration",
            {**BASE_08, "malignant_kept": 0.19},
            dict(malignant_kept=0.18),
            "malignant_kept=0.18",
        ),
        # 08: round(100 * 0.1) = 10 positive blobs, round(100 * 0.09) = 9
        (
            "08_thresholds_calibration",
            BASE_08,
            dict(positive_fraction=0.09),
            "n_blobs=100, positive_fraction=0.09",
        ),
        # repeats * 2**max_log2_size <= 2**28: at 2**24, up to 16 repeats
        (
            "09_bce_at_scale",
            dict(max_log2_size=24, dtype="float32", repeats=16),
            dict(repeats=17),
            "max_log2_size=24, repeats=17",
        ),
    ],
)
def test_combination_rules_at_their_bounds(notebook, ok, refused, names):
    assert check_params(notebook, {**COMMON, **ok})
    with pytest.raises(ValueError) as err:
        check_params(notebook, {**COMMON, **ok, **refused})
    assert f"parameters {names}" in str(err.value)
    assert "are not allowed together" in str(err.value)
