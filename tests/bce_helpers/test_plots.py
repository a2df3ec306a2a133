"""bce_helpers.plots: what each helper puts in the figure, read back from matplotlib's own
objects (axes, lines, collections, contours)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes

from bce_helpers import plots


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    plt.close("all")


def grid_on(ax: Axes) -> bool:
    return all(line.get_visible() for line in ax.xaxis.get_gridlines() + ax.yaxis.get_gridlines())


def test_figure_of_one_axes_returns_it_alone_sized_and_gridded():
    fig, ax = plots.figure()
    assert isinstance(ax, Axes) and fig.axes == [ax]
    assert tuple(fig.get_size_inches()) == pytest.approx((5.0, 3.6))
    assert grid_on(ax) and fig.get_layout_engine() is not None


def test_figure_of_several_axes_returns_them_row_by_row_each_cell_its_size():
    fig, axes = plots.figure(ncols=3, nrows=2, width=4.0, height=2.0)
    assert isinstance(axes, list) and len(axes) == 6 and fig.axes == axes
    assert tuple(fig.get_size_inches()) == pytest.approx((12.0, 4.0))
    rows = [ax.get_subplotspec().rowspan.start for ax in axes]
    cols = [ax.get_subplotspec().colspan.start for ax in axes]
    assert rows == [0, 0, 0, 1, 1, 1] and cols == [0, 1, 2, 0, 1, 2]
    assert all(grid_on(ax) for ax in axes)


def test_finish_labels_the_axes_and_adds_a_legend_only_for_labelled_artists():
    _, ax = plots.figure()
    ax.plot([1, 2], [1, 10], label="loss")
    assert plots.finish(ax, "The loss falls", "epoch", "BCE (nats)", yscale="log") is ax
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "The loss falls",
        "epoch",
        "BCE (nats)",
    )
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss"]
    _, bare = plots.figure()
    bare.plot([1, 2], [1, 2])  # no label: nothing for a legend to name
    plots.finish(bare, "t", "x", "y")
    assert bare.get_legend() is None and bare.get_yscale() == "linear"
    _, quiet = plots.figure()
    quiet.plot([1, 2], [1, 2], label="shown only on request")
    plots.finish(quiet, "t", "x", "y", legend=False)
    assert quiet.get_legend() is None


def test_hline_draws_a_grey_labelled_reference_line():
    _, ax = plots.figure()
    plots.hline(ax, 0.693, "chance (ln 2)")
    plots.hline(ax, 0.1, "floor", style=":")
    chance, floor = ax.get_lines()
    assert list(chance.get_ydata()) == [0.693, 0.693] and chance.get_label() == "chance (ln 2)"
    assert chance.get_linestyle() == "--" and chance.get_color() == "gray"
    assert chance.get_linewidth() == 1
    assert floor.get_linestyle() == ":" and floor.get_label() == "floor"


def test_show_titles_the_figure_and_closes_it(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.get_fignums()))
    fig, _ = plots.figure()
    plots.show(fig, suptitle="Two findings")
    assert fig._suptitle.get_text() == "Two findings"
    assert shown == [[fig.number]] and not plt.fignum_exists(fig.number)
    other, _ = plots.figure()  # without arguments: the current figure, no title
    plots.show()
    assert other._suptitle is None and not plt.fignum_exists(other.number)


def test_scatter_classes_draws_each_class_in_its_own_colour_with_its_points():
    features = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    labels = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    _, ax = plots.figure()
    assert plots.scatter_classes(ax, features, labels, marker="x") is ax
    zero, one = ax.collections
    assert zero.get_label() == "class 0" and one.get_label() == "class 1"
    assert zero.get_offsets().tolist() == [[2.0, 3.0]]
    assert one.get_offsets().tolist() == [[0.0, 1.0], [4.0, 5.0], [6.0, 7.0]]
    assert list(zero.get_sizes()) == [8] and ax.get_aspect() == 1.0
    assert not np.array_equal(zero.get_facecolor(), one.get_facecolor())


def test_decision_boundary_shades_the_probability_and_draws_p_equal_half():
    features = torch.tensor([[-2.0, -1.0], [1.0, 1.0], [3.0, 2.0]])
    labels = torch.tensor([[0.0], [0.0], [1.0]])
    asked = []

    def predict(points):  # class 1 to the right of x = 0.5
        asked.append(points)
        return 1 / (1 + np.exp(-(points[:, 0] - 0.5) * 4))

    fig, ax = plots.figure()
    assert plots.decision_boundary(ax, predict, features, labels, steps=50) is ax
    (points,) = asked
    assert points.shape == (50 * 50, 2) and points.dtype == np.float32
    assert points.min(0) == pytest.approx([-2.2, -1.2]) and points.max(0) == pytest.approx(
        [3.2, 2.2]
    )  # the data's box and 0.2 around it
    shade, boundary = (c for c in ax.collections if hasattr(c, "levels"))
    assert shade.filled and len(shade.levels) > 10
    assert list(boundary.levels) == [0.5]
    xs = np.concatenate([path.vertices[:, 0] for path in boundary.get_paths() if len(path)])
    assert xs == pytest.approx(np.full_like(xs, 0.5), abs=0.12)  # the grid's step is 0.11
    assert [c.get_label() for c in ax.collections[-2:]] == ["class 0", "class 1"]
    colorbar = fig.axes[-1]
    assert len(fig.axes) == 2 and colorbar.get_ylabel() == "predicted probability of class 1"
