"""The reports of a run or a sweep (bce_suite.reports): the table printed, the summary
files, a page that cannot render, and the sweep's figure."""

import pytest

from bce_suite import reports
from bce_suite.runs import RunResult


def test_the_table_shows_each_runs_status_seconds_and_numbers():
    table = reports.format_table(
        [
            RunResult("01_a", "ok", 1.25, {"loss": 0.20141, "n": 3}),
            RunResult("02_b", "failed", 0.5, error="ValueError: x"),
            RunResult("03_c", "ok", 2.0, {"n": 1}, lost_workers=["tcp://10.0.0.2:4001"]),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "status", "seconds", "headline", "numbers"]
    assert set(lines[1]) == {"-"} and len(lines[1]) == len(lines[0])
    assert lines[2].split() == ["01_a", "ok", "1.2", "loss=0.2014,", "n=3"]
    assert lines[3].split()[:3] == ["02_b", "failed", "0.5"] and "ValueError: x" in lines[3]
    assert lines[4].endswith("n=1 [retried: worker tcp://10.0.0.2:4001 died before returning it]")


def test_a_report_page_that_cannot_render_warns_and_writes_the_rest(tmp_path, monkeypatch, capsys):
    import nbformat

    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "b.ipynb")

    def broken(executed, target):
        if executed.stem == "a":
            raise FileNotFoundError("template 'lab' not found")
        target.write_text("<html></html>")

    monkeypatch.setattr(reports, "to_html", broken)
    results = [
        RunResult("a", "ok", 1.0, {"x": 1.0}, run="a"),
        RunResult("b", "ok", 2.0, run="b"),
    ]
    reports.write_run_report(tmp_path, results)
    assert "warning: no HTML page for a: FileNotFoundError: template 'lab' not found" in (
        capsys.readouterr().err
    )
    index = (tmp_path / "index.html").read_text()
    assert "<a href='b.html'>b</a>" in index and "<td>a</td>" in index
    assert (tmp_path / "summary.md").read_text().count("| ok |") == 2
    assert reports.print_report(results, tmp_path) == 0, "the runs succeeded: exit status 0"


@pytest.mark.parametrize("failed", [0, 1])
def test_print_report_exits_1_when_a_run_failed(tmp_path, capsys, failed):
    results = [RunResult("a", "ok", 1.0, run="a")]
    results += [RunResult("b", "failed", 1.0, error="ValueError: boom", run="b")] * failed
    assert reports.print_report(results, tmp_path) == failed
    out, err = capsys.readouterr()
    assert f"outputs in {tmp_path}" in out
    assert ("FAILED b: ValueError: boom" in err) == bool(failed)


def test_the_sweep_figure_has_a_panel_column_per_parameter_that_varies(tmp_path):
    import matplotlib.image

    results = [  # x swept over 3 values; seed and steps given one value each
        RunResult("01_square", "ok", 0.1, {"square": x * x, "half": x * x / 2}, run=f"r{x}",
                  params={"x": x, "seed": 0, "steps": 5})
        for x in (1, 2, 3)
    ]  # fmt: skip
    reports.plot_sweep(tmp_path / "one.png", ["x", "seed", "steps"], ["half", "square"], results)
    results[0].params["seed"] = 1  # now seed varies too
    reports.plot_sweep(tmp_path / "two.png", ["x", "seed", "steps"], ["half", "square"], results)
    one, two = (matplotlib.image.imread(tmp_path / f"{n}.png") for n in ("one", "two"))
    # panels of 4.5 x 3 inches at 80 dpi: 2 rows (the numbers) by 1, then 2, columns
    assert one.shape[:2] == (2 * 240, 1 * 360) and two.shape[:2] == (2 * 240, 2 * 360)
