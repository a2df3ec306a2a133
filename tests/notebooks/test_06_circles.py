"""Notebook 06 (circles, in torch and Keras): its run at the defaults against the committed
outputs and a constant guess, Keras's run, a run at the edge of its range, and its rules
on the amount of training."""

import math

import pytest

from bce_helpers.params import check_params
from tests.notebooks.committed_outputs import assert_reproduced

BASE_06 = dict(
    seed=42,
    device="auto",
    results_path=None,
    framework="torch",
    n_samples=1000,
    noise=0.1,
    epochs=300,
    batch_size=32,
    lr=1e-3,
)


def separates_the_circles(r: dict, epochs: int) -> None:
    """Dense(100, relu) separates the circles: well above the 50% of a constant guess; the
    history holds one train and one held-out loss per epoch, the last ones reported."""
    assert r["test_accuracy"] > 0.8 and r["train_accuracy"] > 0.8
    assert len(r["history"]["loss"]) == epochs and len(r["history"]["val_loss"]) == epochs
    assert r["final_train_loss"] == r["history"]["loss"][-1] < math.log(2)
    assert r["final_test_loss"] == r["history"]["val_loss"][-1] < math.log(2)


@pytest.mark.notebook
def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("06"))


@pytest.mark.notebook
def test_torch_separates_the_circles(executions):
    separates_the_circles(executions("06").results, BASE_06["epochs"])


@pytest.mark.notebook
def test_keras_separates_the_circles(executions):
    separates_the_circles(executions("06", framework="keras", epochs=60, lr=1e-2).results, 60)


@pytest.mark.notebook
def test_tiny_data_huge_batch_and_lr_run_to_the_end(executions):
    run = executions("06", n_samples=10, noise=10.0, batch_size=1_000_000, lr=10.0, epochs=5)
    r = run.results
    # 5 test points: the final model's test accuracy is val_accuracy of the last epoch
    assert r["test_accuracy"] == pytest.approx(r["history"]["val_accuracy"][-1], abs=1e-6)
    assert r["test_accuracy"] * 5 == pytest.approx(round(r["test_accuracy"] * 5))
    printed = run.printed()
    assert "not the guide's settings: no accuracy is claimed" in printed


def test_it_refuses_more_than_10000_optimizer_steps():
    ok = check_params("06_circles", {**BASE_06, "epochs": 625})  # 625 * 16 = 10,000 steps
    assert ok["epochs"] == 625
    with pytest.raises(ValueError) as err:
        check_params("06_circles", {**BASE_06, "epochs": 626})
    message = str(err.value)
    assert "epochs=626, n_samples=1000, batch_size=32 are not allowed together" in message
    assert "optimizer steps, must be at most 10,000" in message


def test_it_refuses_more_than_2e7_points_through_the_model():
    big = {**BASE_06, "n_samples": 1_000_000, "batch_size": 1_000_000}
    assert check_params("06_circles", {**big, "epochs": 20})["epochs"] == 20
    with pytest.raises(ValueError, match=r"epochs=21, n_samples=1000000 are not allowed"):
        check_params("06_circles", {**big, "epochs": 21})
