"""Plotting helpers: one figure style for the whole suite."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A figure with `nrows` x `ncols` axes sized for a notebook, grid on."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    flat = list(axes.flat)
    return fig, (flat[0] if len(flat) == 1 else flat)


def finish(
    ax: Axes,
    title: str,
    xlabel: str,
    ylabel: str,
    legend: bool = True,
    yscale: str | None = None,
) -> Axes:
    """Label an axes: a title that states the finding, labelled axes, a legend."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if yscale:
        ax.set_yscale(yscale)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()
    return ax


def hline(ax: Axes, y: float, label: str, style: str = "--") -> None:
    """A labelled horizontal reference line (a chance level, a theory value)."""
    ax.axhline(y, color="gray", linestyle=style, linewidth=1, label=label)


def show(fig: Figure | None = None, suptitle: str | None = None) -> None:
    """Show the figure (inline in Jupyter) and close it so memory stays flat."""
    fig = fig or plt.gcf()
    if suptitle:
        fig.suptitle(suptitle)
    plt.show()
    plt.close(fig)


def scatter_classes(ax: Axes, features, labels, **kwargs) -> Axes:
    """A scatter plot of 2-D points, one colour per class label."""
    labels = labels.reshape(-1)
    for value in sorted(set(labels.tolist())):
        mask = labels == value
        ax.scatter(features[mask, 0], features[mask, 1], s=8, label=f"class {value:g}", **kwargs)
    ax.set_aspect("equal")
    return ax


def decision_boundary(ax: Axes, predict, features, labels, steps: int = 200) -> Axes:
    """Shade predict(points) (a probability of class 1) over the data's box; draw p = 0.5."""
    import numpy as np

    lo, hi = features.min(0).values - 0.2, features.max(0).values + 0.2
    xs = np.linspace(float(lo[0]), float(hi[0]), steps)
    ys = np.linspace(float(lo[1]), float(hi[1]), steps)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype("float32")
    probs = np.asarray(predict(points)).reshape(grid_x.shape)
    shade = ax.contourf(grid_x, grid_y, probs, levels=20, cmap="RdBu_r", alpha=0.4)
    ax.contour(grid_x, grid_y, probs, levels=[0.5], colors="k", linewidths=1)
    ax.figure.colorbar(shade, ax=ax, label="predicted probability of class 1")
    return scatter_classes(ax, features, labels)
