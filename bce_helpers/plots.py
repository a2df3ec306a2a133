"""Plotting helpers: one figure style for the whole suite."""

from __future__ import annotations

from collections.abc import Sequence

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


def curves(ax: Axes, x: Sequence[float], ys: dict[str, Sequence[float]], **kwargs) -> Axes:
    """Plot several named curves against the same x."""
    for label, y in ys.items():
        ax.plot(x, y, label=label, **kwargs)
    return ax
