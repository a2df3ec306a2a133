"""The explorers of notebooks 01, 03 and 04, driven through JupyterLab's UI in Chromium.

test_jupyterlab.py runs each of these notebooks (at the test parameter set) in JupyterLab and
then, on the same page, the check here for its explorer: it moves the explorer's controls
as a learner would (typing into a slider's readout, picking from a dropdown), and checks
that the printed numbers change to values computed here independently, and that the figure
changes to the one the explorer draws for those values.
"""

from __future__ import annotations

import base64
import math
import re

import pytest
import torch
import torch.nn.functional as F

FIGURE_BYTES = """async (selector) => {
    const img = document.querySelector(selector);
    const blob = await (await fetch(img.src)).blob();
    return await new Promise(done => {
        const reader = new FileReader();
        reader.onload = () => done(reader.result.split(',')[1]);
        reader.readAsDataURL(blob);
    });
}"""


class ExplorerPage:
    """One explorer on a page: its readout, its figure, and its controls."""

    def __init__(self, page, name: str) -> None:
        from tests.notebooks.jupyterlab import (
            PANEL,  # the notebook in view (that module imports this)
        )

        self.page, self.root = page, f"{PANEL} .bce-explorer-{name}"
        page.wait_for_selector(f"{self.root} .bce-readout pre", timeout=60_000)

    def text(self) -> str:
        return self.page.inner_text(f"{self.root} .bce-readout pre")

    def figure(self) -> bytes:
        return base64.b64decode(self.page.evaluate(FIGURE_BYTES, f"{self.root} img.bce-figure"))

    def type_value(self, control: str, value: str) -> None:
        readout = self.page.locator(f"{self.root} .bce-control-{control} .widget-readout")
        readout.click()
        readout.press("Control+a")
        readout.type(value)
        readout.press("Enter")

    def choose(self, control: str, label: str) -> None:
        self.page.select_option(f"{self.root} .bce-control-{control} select", label=label)

    def wait_for_text(self, needle: str) -> str:
        self.page.wait_for_function(
            "([sel, needle]) => (document.querySelector(sel)?.innerText || '').includes(needle)",
            arg=[f"{self.root} .bce-readout pre", needle],
            timeout=60_000,
        )
        return self.text()

    def wait_for_figure_change(self, before: bytes) -> bytes:
        for _ in range(100):
            now = self.figure()
            if now != before:
                return now
            self.page.wait_for_timeout(200)
        raise AssertionError("the figure did not change")


def check_01_explorer(page) -> None:
    """01's loss explorer: y, w and p typed in; loss, slope and minimum by hand."""
    from bce_helpers.explorers import draw_loss, figure_png

    explorer = ExplorerPage(page, "01")
    assert "target y = 1.00, weight w = 1.00, at p = 0.20: loss 1.6094" in explorer.text()
    before = explorer.figure()
    explorer.type_value("y", "0.3")
    explorer.type_value("w", "2")
    explorer.type_value("p", "0.6")
    y, w, p = 0.3, 2.0, 0.6
    loss = -w * (y * math.log(p) + (1 - y) * math.log(1 - p))
    slope = w * (p - y) / (p * (1 - p))
    text = explorer.wait_for_text(f"at p = {p:.2f}: loss {loss:.4f}")
    assert f"target y = {y:.2f}, weight w = {w:.2f}" in text
    assert f"d loss / d p = {slope:.4f}" in text
    entropy = -(y * math.log(y) + (1 - y) * math.log(1 - y))
    assert f"lowest loss w H(y) = {w * entropy:.4f}, at p = y = 0.30" in text
    after = explorer.wait_for_figure_change(before)
    assert after == figure_png(draw_loss(y=y, w=w, p=p)[0]), "the figure for these values"


def check_03_explorer(page) -> None:
    """03's logit explorer: float16 and z = 9; where sigmoid rounds to 1, the three losses."""
    from bce_helpers.explorers import draw_logits, figure_png

    explorer = ExplorerPage(page, "03")
    assert "sigmoid(z) is 1.0 from z = 16.6355" in explorer.text()  # float32: 24 ln 2
    before = explorer.figure()
    explorer.choose("dtype", "torch.float16")
    explorer.type_value("z", "9")
    text = explorer.wait_for_text("at z = 9:")
    logits = torch.arange(8, 9, 2**-7).half()  # every float16 in [8, 9)
    first = logits[torch.sigmoid(logits) == 1][0].item()
    assert f"sigmoid(z) is 1.0 from z = {first:.4f}" in text
    z = torch.tensor([9.0], dtype=torch.float16)
    exact = torch.tensor(9 + math.log1p(math.exp(-9))).half().item()  # 9.0001 in float16
    via_sigmoid = F.binary_cross_entropy(torch.sigmoid(z), torch.zeros_like(z)).item()
    assert torch.sigmoid(z).item() == 1.0 and via_sigmoid == 100.0
    assert re.search(rf"BCEWithLogitsLoss\s+loss\s+{exact:.4f}\s+d loss / d z\s+1.0000", text)
    assert re.search(rf"Sigmoid \+ BCELoss\s+loss\s+{via_sigmoid:.4f}", text)
    assert re.search(r"textbook formula\s+loss\s+inf", text)
    after = explorer.wait_for_figure_change(before)
    assert after == figure_png(draw_logits("torch.float16", 0.0, 9.0)[0])


def readout_numbers(text: str) -> dict[str, float]:
    """p, b*, precision and recall from the 04 explorer's readout."""
    found = re.search(
        r"p = ([\d.]+).*b\* = log\(w p / \(1 - p\)\) = (-?[\d.]+) "
        r".*precision ([\d.]+), recall ([\d.]+)",
        text,
        re.DOTALL,
    )
    assert found, text
    return dict(zip(("p", "b", "precision", "recall"), map(float, found.groups()), strict=True))


def check_04_explorer(page) -> None:
    """04's pos_weight explorer: w from 3 to 8 moves the best bias by log(8/3)."""
    explorer = ExplorerPage(page, "04")
    start = readout_numbers(explorer.wait_for_text("pos_weight w = 3.00"))
    p = start["p"]
    assert start["b"] == pytest.approx(math.log(3 * p / (1 - p)), abs=1e-4)
    before = explorer.figure()
    explorer.type_value("w", "8")
    moved = readout_numbers(explorer.wait_for_text("pos_weight w = 8.00"))
    assert moved["b"] == pytest.approx(math.log(8 * p / (1 - p)), abs=1e-4)
    assert moved["b"] - start["b"] == pytest.approx(math.log(8 / 3), abs=2e-4)
    # a larger w shifts every logit up: the predicted positives only grow
    assert moved["recall"] >= start["recall"]
    assert explorer.wait_for_figure_change(before) != before


def confusion_numbers(text: str) -> dict[str, float]:
    """Threshold, counts, precision and recall from the 08 explorer's readout."""
    found = re.search(
        r"threshold t = ([\d.]+).*true positives (\d+), false positives (\d+), false negatives "
        r"(\d+), true negatives (\d+).*precision ([\d.]+), recall ([\d.]+)",
        text,
        re.DOTALL,
    )
    assert found, text
    keys = ("t", "tp", "fp", "fn", "tn", "precision", "recall")
    return dict(zip(keys, map(float, found.groups()), strict=True))


def check_08_explorer(page) -> None:
    """08's threshold explorer: from 0.5 down to 0.2 the flagged only grow; precision and
    recall are recomputed from the counts shown."""
    explorer = ExplorerPage(page, "08")
    start = confusion_numbers(explorer.wait_for_text("threshold t = 0.50"))
    before = explorer.figure()
    explorer.type_value("threshold", "0.2")
    moved = confusion_numbers(explorer.wait_for_text("threshold t = 0.20"))
    for n in (start, moved):
        assert n["precision"] == pytest.approx(n["tp"] / max(n["tp"] + n["fp"], 1), abs=6e-4)
        assert n["recall"] == pytest.approx(n["tp"] / (n["tp"] + n["fn"]), abs=6e-4)
    # the same tumours: as many positives and as many in all; a lower t flags more
    assert start["tp"] + start["fn"] == moved["tp"] + moved["fn"]
    assert sum(start[k] for k in ("tp", "fp", "fn", "tn")) == sum(
        moved[k] for k in ("tp", "fp", "fn", "tn")
    )
    assert moved["tp"] + moved["fp"] >= start["tp"] + start["fp"]
    assert moved["recall"] >= start["recall"]
    assert explorer.wait_for_figure_change(before) != before


EXPLORER_CHECKS = {
    "01_bce_loss.ipynb": check_01_explorer,
    "03_bce_with_logits.ipynb": check_03_explorer,
    "04_pos_weight.ipynb": check_04_explorer,
    "08_thresholds_calibration.ipynb": check_08_explorer,
}
