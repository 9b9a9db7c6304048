"""Plot functions in a notebook: no forced backend, drawing into given axes/figures, Figures returned."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from deepexpr.errors import InputError
from deepexpr.plots import de, enrich, explain, integration, training
from test_plots import TITLE, tables  # noqa: F401  (tables is a fixture)

PLOT_FUNCTIONS = [
    getattr(module, name)
    for module in (de, enrich, explain, integration, training)
    for name in module.__all__
    if name.startswith("plot_")
]


def run_python(code: str) -> str:
    # Without the tests' MPLBACKEND, as in a notebook kernel.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def test_importing_the_plots_leaves_the_backend_alone_and_rules_select_agg():
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import deepexpr.plots.de, deepexpr.plots.enrich, deepexpr.plots.explain, deepexpr.plots.integration\n"
        "import deepexpr.plots.training\n"
        "print(matplotlib.get_backend())\n"
        "from deepexpr.workflow import rule_log\n"
        "with rule_log(None):\n"
        "    print(matplotlib.get_backend())\n"
    )
    assert run_python(code).lower().split() == ["svg", "agg"]


@pytest.mark.parametrize("plot", PLOT_FUNCTIONS, ids=lambda f: f.__name__)
def test_every_plot_function_takes_ax_fig_and_an_optional_out(plot):
    parameters = inspect.signature(plot).parameters
    assert parameters["out"].default is None
    assert parameters["ax"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["ax"].default is None
    assert parameters["fig"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["fig"].default is None


def test_without_out_the_figure_is_returned_open_and_nothing_written(tables, tmp_path):  # noqa: F811
    before = set(tmp_path.rglob("*"))
    figure = training.plot_pca_latent(tables["pca"], **TITLE)
    assert isinstance(figure, Figure) and plt.fignum_exists(figure.number)
    assert figure.numbers == {"n_samples": 12}
    assert set(tmp_path.rglob("*")) == before
    plt.close(figure)


def test_drawing_into_given_axes_and_figures(tables):  # noqa: F811
    mine, (left, right) = plt.subplots(1, 2)
    figure = training.plot_pca_latent(tables["pca"], ax=right, **TITLE)
    assert figure is mine and right.collections and not left.collections
    # A figure of several panels is drawn into a given figure, not into one axes.
    panels = plt.figure()
    figure = training.plot_loss_curves(tables["histories"], fig=panels, **TITLE)
    assert figure is panels and len(panels.axes) == 4
    with pytest.raises(InputError, match="pass fig="):
        training.plot_loss_curves(tables["histories"], ax=left, **TITLE)
    plt.close("all")


def test_written_file_is_the_same_as_the_figure_returned(tables, tmp_path):  # noqa: F811
    out = tmp_path / "pca.svg"
    figure = training.plot_pca_latent(tables["pca"], out, **TITLE)
    assert out.is_file() and figure.numbers == {"n_samples": 12}
    # Closed after writing (rules draw many figures), yet still renders (e.g. a notebook's display).
    assert not plt.fignum_exists(figure.number)
    again = tmp_path / "again.svg"
    figure.savefig(again, format="svg", metadata={"Date": None}, bbox_inches="tight")
    assert again.stat().st_size > 0
