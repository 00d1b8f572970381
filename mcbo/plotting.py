"""Convergence plots of solver histories (matplotlib, written as PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd


def plot_histories(
    histories: Mapping[str, pd.DataFrame],
    path: str | Path,
    title: str = "",
    optimum: float | None = None,
    n_init: int | None = None,
) -> Path:
    """Best value so far against evaluations, one line per history (``Solver.history`` frames).

    Args:
        histories: label -> history with ``index`` and ``best_value`` columns.
        path: PNG file to write (parent folders are created).
        title: plot title.
        optimum: known optimum, drawn as a dashed line.
        n_init: size of the solvers' initial design (points chosen before any model is used), shaded.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, frame in histories.items():
        ax.step(frame["index"] + 1, frame["best_value"], where="post", label=label)
    if optimum is not None:
        ax.axhline(optimum, color="grey", linestyle="--", linewidth=1, label="optimum")
    longest = max((len(frame) for frame in histories.values()), default=0)
    if n_init and longest:
        ax.axvspan(0.5, min(n_init, longest) + 0.5, color="tab:grey", alpha=0.15, linewidth=0,
                   label=f"initial design ({n_init} evaluations)")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best value so far (minimised)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
