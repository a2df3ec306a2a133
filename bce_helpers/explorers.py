"""Interactive explorers (ipywidgets): move a control, see the loss, its gradient, the numbers.

Each explorer is a widget box of controls, a figure and a readout of the numbers behind it.
Displayed where no widget front-end runs (papermill, nbval, an HTML page), it shows its
figure and readout at the default values instead: its display data carries a PNG and plain
text beside the widget view, and a front-end picks the richest one it can render.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from bce_helpers import plots
from bce_helpers.losses import naive_bce_with_logits
from bce_helpers.metrics import confusion_at
from bce_helpers.saturation import first_saturating_logit

Draw = Callable[..., tuple[Figure, str]]


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, the same in a kernel as in a plain process; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, facecolor="white", edgecolor="white")
    plt.close(fig)
    return buffer.getvalue()


class Explorer(widgets.VBox):
    """Controls, a figure redrawn on every change, and a readout of the numbers shown."""

    def __init__(self, name: str, controls: dict[str, widgets.ValueWidget], draw: Draw) -> None:
        self.controls, self.draw = controls, draw
        self.image = widgets.Image(format="png")
        self.image.add_class("bce-figure")
        self.readout = widgets.HTML()
        self.readout.add_class("bce-readout")
        for key, control in controls.items():
            control.add_class(f"bce-control-{key}")
            control.style.description_width = "initial"
            control.observe(self.update, names="value")
        super().__init__([widgets.HBox(list(controls.values())), self.image, self.readout])
        self.add_class("bce-explorer")
        self.add_class(f"bce-explorer-{name}")
        self.update()

    @property
    def values(self) -> dict[str, object]:
        """The controls' current values, by name."""
        return {key: control.value for key, control in self.controls.items()}

    def update(self, change: object = None) -> None:
        """Redraw the figure and the readout for the controls' current values."""
        fig, self.text = self.draw(**self.values)
        self.png = figure_png(fig)
        self.image.value = self.png
        self.readout.value = f"<pre>{html.escape(self.text)}</pre>"

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        bundle["text/plain"] = self.text
        return bundle


# A slider's description, value, lowest and highest value, step and readout format
SliderSpec = tuple[str, float, float, float, float, str]


def _sliders(**specs: SliderSpec) -> dict[str, widgets.FloatSlider]:
    """A slider per argument, keyed by its name. A value outside its slider's range is
    refused, naming the argument, before any slider is made: a slider would move it to the
    nearest end and the explorer would show another value than the one asked for."""
    for name, (_, value, low, high, _, _) in specs.items():
        if not low <= value <= high:
            raise ValueError(
                f"{name}={value!r} is not allowed: its slider runs from {low:g} to {high:g}"
            )
    return {
        name: widgets.FloatSlider(
            value=value,
            min=low,
            max=high,
            step=step,
            description=description,
            readout_format=fmt,
            continuous_update=False,
        )
        for name, (description, value, low, high, step, fmt) in specs.items()
    }


# A dropdown's description, value and options
DropdownSpec = tuple[str, Any, list]


def _dropdowns(**specs: DropdownSpec) -> dict[str, widgets.Dropdown]:
    """A dropdown per argument, keyed by its name. A value the dropdown does not offer is
    refused, naming the argument and the options, before any dropdown is made (ipywidgets'
    own error names neither)."""
    for name, (_, value, options) in specs.items():
        if value not in options:
            raise ValueError(f"{name}={value!r} is not allowed: expected one of {options!r}")
    return {
        name: widgets.Dropdown(options=options, value=value, description=description)
        for name, (description, value, options) in specs.items()
    }


# ------------------------------------------------------------------------------ notebook 01


def bce_and_slope(p: torch.Tensor, y: float, w: float) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.BCELoss(weight=w, reduction='none') at probabilities p, and d loss / d p (autograd)."""
    p = p.detach().clone().requires_grad_()
    loss = F.binary_cross_entropy(
        p, torch.full_like(p, y), weight=torch.tensor(w), reduction="none"
    )
    loss.sum().backward()
    return loss.detach(), p.grad


def draw_loss(y: float, w: float, p: float) -> tuple[Figure, str]:
    """Loss and gradient against p for target y and weight w, the probe p marked."""
    # the grid holds p = y itself, so the slope reaches its 0 on the curve
    ps = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    ps = torch.cat([ps, torch.tensor([y], dtype=torch.float64)]).unique()
    loss, slope = bce_and_slope(ps, y, w)
    at_loss, at_slope = bce_and_slope(torch.tensor([p], dtype=torch.float64), y, w)
    floor = -w * (y * math.log(y) + (1 - y) * math.log(1 - y)) if 0 < y < 1 else 0.0
    fig, (ax_loss, ax_slope) = plots.figure(ncols=2, width=4.5, height=4.2)
    ax_loss.plot(ps, loss, label=f"w = {w:g}, y = {y:g}")
    ax_loss.plot([p], at_loss, "o", color="C3", label=f"p = {p:.2f}")
    ax_loss.set_ylim(0, max(6 * w, at_loss.item() * 1.1))
    ax_slope.plot(ps, slope)
    ax_slope.plot([p], at_slope, "o", color="C3")
    ax_slope.axhline(0, color="gray", linewidth=0.8)
    plots.finish(ax_loss, f"Lowest at p = y = {y:.2f}", "predicted probability p", "loss")
    plots.finish(ax_slope, "The slope is 0 only at p = y", "p", "d loss / d p")
    ax_slope.set_yscale("asinh", linear_width=1)  # smooth: linear near 0, log far from it
    low, high = ax_slope.get_ylim()
    ticks = [0] + [s * 10**k for s in (-1, 1) for k in range(5) if low <= s * 10**k <= high]
    ax_slope.set_yticks(ticks, [f"{t:g}" for t in ticks])  # 1, 10, 100: plain numbers
    ax_slope.set_ylim(low, high)
    text = (
        f"target y = {y:.2f}, weight w = {w:.2f}, at p = {p:.2f}: "
        f"loss {at_loss.item():.4f}, d loss / d p = {at_slope.item():.4f}\n"
        f"lowest loss w H(y) = {floor:.4f}, at p = y = {y:.2f}"
    )
    return fig, text


def loss_explorer(y: float = 1.0, w: float = 1.0, p: float = 0.2) -> Explorer:
    """Notebook 01: BCE and its gradient against p, for a chosen target, weight and probe p."""
    controls = _sliders(
        y=("target y", y, 0.0, 1.0, 0.05, ".2f"),
        w=("weight w", w, 0.5, 5.0, 0.5, ".1f"),
        p=("probe p", p, 0.01, 0.99, 0.01, ".2f"),
    )
    return Explorer("01", controls, draw_loss)


# ------------------------------------------------------------------------------ notebook 03

DTYPES = {str(d): d for d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}
LOGIT_METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "BCEWithLogitsLoss": lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none"),
    "Sigmoid + BCELoss": lambda z, y: F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none"),
    "textbook formula": lambda z, y: naive_bce_with_logits(z, y, reduction="none"),
}


def logit_loss_and_slope(method: str, z: torch.Tensor, y: float) -> tuple[torch.Tensor, ...]:
    """One of LOGIT_METHODS at logits z (in z's dtype), and d loss / d z."""
    z = z.detach().clone().requires_grad_()
    loss = LOGIT_METHODS[method](z, torch.full_like(z, y))
    loss.sum().backward()
    return loss.detach(), z.grad


def draw_logits(dtype: str, y: float, z: float) -> tuple[Figure, str]:
    """Loss and gradient against the logit for the three ways, in `dtype`, the probe marked."""
    kind = DTYPES[dtype]
    saturation = first_saturating_logit(kind)
    zs = torch.linspace(-40, 40, 801).to(kind)
    probe = torch.tensor([z], dtype=kind)
    fig, (ax_loss, ax_slope) = plots.figure(ncols=2, width=4.5, height=3.2)
    lines = [f"{dtype}, target y = {y:g}: sigmoid(z) is 1.0 from z = {saturation:.4f}"]
    for i, method in enumerate(LOGIT_METHODS):
        loss, slope = logit_loss_and_slope(method, zs, y)
        at_loss, at_slope = logit_loss_and_slope(method, probe, y)
        style = {"linestyle": "--"} if method == "textbook formula" else {}
        ax_loss.plot(zs.float(), loss.float(), label=method, **style)
        ax_slope.plot(zs.float(), slope.float(), **style)
        ax_loss.plot([probe.item()], [at_loss.float().item()], "o", color=f"C{i}")
        lines.append(
            f"at z = {probe.item():g}: {method:<18} loss {at_loss.float().item():9.4f}"
            f"  d loss / d z {at_slope.float().item():7.4f}"
        )
    via_sigmoid, _ = logit_loss_and_slope("Sigmoid + BCELoss", zs, y)
    exact, _ = logit_loss_and_slope("BCEWithLogitsLoss", zs, y)
    off = (via_sigmoid.float() - exact.float()).abs() > 0.01 * exact.float().clamp(min=1)
    if off.any():
        first = zs[off.nonzero()[0, 0] if y == 0 else off.nonzero()[-1, 0]].float().item()
        for ax in (ax_loss, ax_slope):
            ax.axvline(first, color="gray", linewidth=0.8)
        title = f"{dtype}, y = {y:g}: the two paths differ by 1% from z = {first:.2f}"
    else:
        title = f"{dtype}, y = {y:g}: the two paths agree within 1% on [-40, 40]"
    plots.finish(ax_loss, title, "logit z", "loss")
    ax_loss.set_yscale("symlog")
    ax_loss.set_ylim(bottom=0)
    plots.finish(ax_slope, "With logits the slope stays sigmoid(z) - y", "logit z", "d loss / d z")
    return fig, "\n".join(lines)


def logit_explorer(dtype: str = "torch.float32", y: float = 0.0, z: float = 10.0) -> Explorer:
    """Notebook 03: the three ways to compute BCE from a logit, in a chosen dtype."""
    controls = {
        **_dropdowns(dtype=("dtype", dtype, list(DTYPES)), y=("target y", y, [0.0, 1.0])),
        **_sliders(z=("probe z", z, -40.0, 40.0, 0.5, ".1f")),
    }
    return Explorer("03", controls, draw_logits)


# ------------------------------------------------------------------------------ notebook 04


def precision_recall_at(logits: torch.Tensor, labels: torch.Tensor, shift: float):
    """Precision and recall when predicting positive where logits + shift > 0; the
    precision is nan (undefined) where nothing is predicted positive."""
    predicted = (logits + shift).flatten() > 0
    positive = labels.flatten() == 1
    true_positives = (predicted & positive).sum().item()
    n_predicted = predicted.sum().item()
    precision = true_positives / n_predicted if n_predicted else math.nan
    return precision, true_positives / positive.sum().item()


def pos_weight_explorer(
    logits: torch.Tensor, labels: torch.Tensor, p: float, w: float = 3.0
) -> Explorer:
    """Notebook 04: pos_weight w moves the optimal constant logit and the precision/recall
    point; `logits` are an unweighted (w = 1) model's on a test set with these `labels`."""
    if not 0 < p < 1:
        raise ValueError(f"p={p!r} is not allowed: the share of positives must lie in (0, 1)")
    if not 0 < w < math.inf:  # log w shifts the logits: w must have a finite logarithm
        raise ValueError(f"w={w!r} is not allowed: pos_weight must be a finite number above 0")
    logits, labels = logits.detach().cpu().flatten(), labels.detach().cpu().flatten()
    thresholds = torch.linspace(-8, 8, 161)
    curve = [precision_recall_at(logits, labels, -t) for t in thresholds.tolist()]

    def draw(w: float) -> tuple[Figure, str]:
        b = torch.linspace(-6, 6, 241)
        best = math.log(w * p / (1 - p))
        fig, (ax_loss, ax_pr) = plots.figure(ncols=2, width=4.5, height=3.2)
        for weight, style in ((1.0, ":"), (w, "-")):
            expected = -(weight * p * F.logsigmoid(b) + (1 - p) * F.logsigmoid(-b))
            ax_loss.plot(b, expected, style, label=f"w = {weight:g}")
        ax_loss.axvline(best, color="C3", linewidth=0.8, label=f"b* = {best:.2f}")
        precision, recall = precision_recall_at(logits, labels, math.log(w))
        ax_pr.plot([r for _, r in curve], [q for q, _ in curve], color="gray", label="w = 1 model")
        ax_pr.plot([recall], [precision], "o", color="C3", label=f"w = {w:g}")
        plots.finish(
            ax_loss,
            f"w = {w:g} moves the optimum to {best:.2f}",
            "constant logit b",
            "expected loss",
        )
        plots.finish(ax_pr, "...and the operating point", "recall", "precision")
        text = (
            f"pos_weight w = {w:.2f}, share of positives p = {p:.3f}\n"
            f"optimal constant logit b* = log(w p / (1 - p)) = {best:.4f}"
            f" (sigmoid {1 / (1 + math.exp(-best)):.4f})\n"
            f"log w = {math.log(w):.4f} added to the w = 1 model's logits,"
            " as at the population optimum: "
            f"precision {'undefined' if math.isnan(precision) else f'{precision:.3f}'}, "
            f"recall {recall:.3f}"
        )
        return fig, text

    # the slider's range reaches any allowed w
    slider = _sliders(w=("pos_weight w", w, min(0.25, w), max(16.0, w), 0.25, ".2f"))
    return Explorer("04", slider, draw)


# ------------------------------------------------------------------------------ notebook 08


def threshold_explorer(
    probabilities: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5
) -> Explorer:
    """Notebook 08: move the threshold; see the confusion matrix, precision, recall and the
    point on the precision-recall curve of these probabilities and labels."""
    from sklearn.metrics import precision_recall_curve

    slider = _sliders(threshold=("threshold t", threshold, 0.01, 0.99, 0.01, ".2f"))
    probabilities = probabilities.detach().cpu().double().flatten()
    labels = labels.detach().cpu().flatten()
    curve_p, curve_r, _ = precision_recall_curve(labels.numpy(), probabilities.numpy())

    def draw(threshold: float) -> tuple[Figure, str]:
        n = confusion_at(probabilities, labels, threshold)
        fig, (ax_pr, ax_cm) = plots.figure(ncols=2, width=4.5, height=3.4)
        ax_pr.plot(curve_r, curve_p, color="gray", label="all thresholds")
        ax_pr.plot([n["recall"]], [n["precision"]], "o", color="C3", label=f"t = {threshold:.2f}")
        plots.finish(ax_pr, "Precision against recall", "recall", "precision")
        table = [[n["tn"], n["fp"]], [n["fn"], n["tp"]]]
        ax_cm.imshow(table, cmap="Blues")
        for row in range(2):
            for col in range(2):
                dark = table[row][col] > max(map(max, table)) / 2  # white on the darker cells
                ax_cm.text(
                    col,
                    row,
                    str(table[row][col]),
                    ha="center",
                    va="center",
                    fontsize=14,
                    color="white" if dark else "black",
                )
        ax_cm.set_xticks([0, 1], ["said 0", "said 1"])
        ax_cm.set_yticks([0, 1], ["was 0", "was 1"])
        ax_cm.grid(False)
        plots.finish(ax_cm, f"Confusion matrix at t = {threshold:.2f}", "prediction", "truth")
        text = (
            f"threshold t = {threshold:.2f}: positive where p >= t\n"
            f"true positives {n['tp']}, false positives {n['fp']}, "
            f"false negatives {n['fn']}, true negatives {n['tn']}\n"
            f"precision {n['precision']:.3f}, recall {n['recall']:.3f}"
        )
        return fig, text

    return Explorer("08", slider, draw)
