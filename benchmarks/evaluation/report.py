"""The human report of an LFW evaluation: a table with one column per model, ROC curves and distance histograms.

Figures are drawn on matplotlib `Figure` objects rather than through pyplot: they need no display, leave no
global figure to close, and do not switch the backend of the process that imports this module.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .metrics import Retrieval, ScoreCalibration, Verification, roc_curve

logger = logging.getLogger(__name__)

ROC_LOWEST_FAR = 1e-4
HISTOGRAM_BINS = 40
FIGURE_SIZE = (8.0, 5.0)  # inches, at 100 dpi: 800 x 500 pixels
NOT_MEASURED = "n/a"


@dataclass(frozen=True)
class ModelRun:
    """Everything the report shows about one model; shares are in [0, 1], distances are L2 between embeddings."""

    model: str
    published_accuracy: float | None
    published_source: str
    verification: Verification
    retrieval: Retrieval | None
    knn_accuracy: float | None
    knn_split: str
    no_face: int
    several_faces: int
    face_choice: str
    skipped: int
    photos: int
    pairs: int
    seconds: float
    distances: np.ndarray
    same: np.ndarray
    calibration: ScoreCalibration


def _percent(share: float) -> str:
    return f"{100 * share:.2f}%"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _retrieval_row(figure: Callable[[Retrieval], str]) -> Callable[[ModelRun], str]:
    return lambda run: NOT_MEASURED if run.retrieval is None else figure(run.retrieval)


def _rows(sources: list[str]) -> list[tuple[str, Callable[[ModelRun], str]]]:
    """The table's rows as (label, cell of a run); `sources` numbers the published figures' footnotes."""

    def published(run: ModelRun) -> str:
        if run.published_accuracy is None:
            return NOT_MEASURED
        return f"{_percent(run.published_accuracy)} [^{sources.index(run.published_source) + 1}]"

    def accuracy(run: ModelRun) -> str:
        return f"{_percent(run.verification.accuracy)} ± {_percent(run.verification.std)}"

    return [
        ("Accuracy on held-out folds (mean ± std)", accuracy),
        ("Published accuracy", published),
        ("AUC", lambda run: f"{run.verification.auc:.4f}"),
        ("TAR at FAR = 1e-3", lambda run: _percent(run.verification.tar_at_far_1e_3)),
        ("Threshold (same person when distance < threshold)", lambda run: f"{run.verification.threshold:.3f}"),
        ("Distance where P(same person) = 50%", lambda run: f"{run.calibration.midpoint:.3f}"),
        ("Retrieval queries", _retrieval_row(lambda figures: str(figures.queries))),
        ("Top-20 hit portion", _retrieval_row(lambda figures: _percent(figures.top20_hit_portion))),
        ("Recall@1", _retrieval_row(lambda figures: _percent(figures.recall_at_1))),
        ("Recall@10", _retrieval_row(lambda figures: _percent(figures.recall_at_10))),
        ("mAP@20", _retrieval_row(lambda figures: f"{figures.map_at_20:.4f}")),
        ("kNN accuracy", lambda run: NOT_MEASURED if run.knn_accuracy is None else _percent(run.knn_accuracy)),
        ("Photos / pairs", lambda run: f"{run.photos} / {run.pairs}"),
        ("Photos named but missing (skipped)", lambda run: str(run.skipped)),
        ("Photos with no face found", lambda run: str(run.no_face)),
        ("Photos with several faces", lambda run: str(run.several_faces)),
        ("Time (embedding included)", lambda run: _duration(run.seconds)),
    ]


HOW_TO_READ = """\
## How to read this

- **Accuracy** is LFW's View 2 protocol: for each fold, the distance threshold is chosen on the other folds and
  tested on this one; the table gives the mean over folds and their (population) standard deviation. A pair is
  called the same person when its distance is strictly below the threshold.
- **Published accuracy** is the figure the model's authors report, for comparison; their face detection, alignment
  and cropping differ from ours, which can move it either way.
- **AUC** is the chance that a same-person pair is closer than a different-person pair (1 is perfect, 0.5 is
  chance). **TAR at FAR = 1e-3** is the share of same-person pairs accepted by the most lenient threshold that
  accepts at most one different-person pair in a thousand; when no threshold gives that rate exactly it is read at
  the next lower one, not interpolated.
- **Threshold** is the distance that classifies all pairs most accurately. **P(same person) = 50%** is where the
  calibrated curve in the distance plots (a logistic fit to all pairs) crosses one half.
- **Retrieval** queries the index with each photo whose person has other photos there. The **top-20 hit portion**
  is the share of that person's other photos found in the first 20 results, out of as many as could fit there
  (at most 20); **Recall@1** and **Recall@10** are the shares of queries with the same person first, or within the
  first ten; **mAP@20** also rewards ranking them early (1 when they all come first).
- **kNN accuracy** labels each photo by a vote of its nearest neighbours; the notes say how.
- Photos **skipped** are named by the pairs file but absent from the folder: their pairs are left out.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _file_stem(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")


def _markdown(runs: list[ModelRun], title: str, data_description: str, image_names: list[str]) -> str:
    """The report's text: table, sources, notes, how to read it, images."""
    sources = list(dict.fromkeys(run.published_source for run in runs if run.published_accuracy is not None))
    lines = [f"# {title}", "", data_description, ""]
    lines += ["| | " + " | ".join(_cell(run.model) for run in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(run) for run in runs) + " |" for label, cell in _rows(sources)]
    lines.append("")
    lines += [f"[^{number}]: {source}" for number, source in enumerate(sources, start=1)]
    lines += ["", "## Notes", ""]
    for run in runs:
        note = f"- **{run.model}**: in a photo with several faces, {run.face_choice.rstrip('.')} was used."
        if run.knn_accuracy is not None:
            note += f" kNN: {run.knn_split.rstrip('.')}."
        lines.append(note)
    lines += ["", HOW_TO_READ, "## Plots", ""]
    lines += [f"![ROC curves]({image_names[0]})", ""]
    for run, name in zip(runs, image_names[1:], strict=True):
        lines += [f"![Distances, {run.model}]({name})", ""]
    return "\n".join(lines)


def _plot_roc(path: Path, runs: list[ModelRun]) -> None:
    """Every model's ROC on one log-FAR axis, where the strict thresholds a search would use are legible."""
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.subplots()
    for run in runs:
        far, tar = roc_curve(run.distances, run.same)
        # FAR 0 has no place on a log axis: put it left of the visible range, so the curve enters from the edge.
        axes.plot(np.maximum(far, ROC_LOWEST_FAR / 10), tar, label=f"{run.model} (AUC {run.verification.auc:.4f})")
    chance = np.logspace(np.log10(ROC_LOWEST_FAR), 0, 50)
    axes.plot(chance, chance, color="grey", linestyle=":", label="chance")
    axes.axvline(1e-3, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xscale("log")
    axes.set_xlim(ROC_LOWEST_FAR, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("False accept rate (different-person pairs accepted)")
    axes.set_ylabel("True accept rate (same-person pairs accepted)")
    axes.set_title("ROC on all pairs")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    figure.savefig(path)


def _plot_distances(path: Path, run: ModelRun) -> None:
    """How far apart same and different pairs lie, with the threshold and the calibrated probability over them."""
    distances, same = np.asarray(run.distances, dtype=np.float64), np.asarray(run.same, dtype=bool)
    edges = np.histogram_bin_edges(distances, bins=HISTOGRAM_BINS)
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.subplots()
    axes.hist(distances[same], bins=edges, alpha=0.6, color="tab:green", label="same person")
    axes.hist(distances[~same], bins=edges, alpha=0.6, color="tab:red", label="different people")
    axes.axvline(
        run.verification.threshold, color="black", linestyle="--", label=f"threshold {run.verification.threshold:.3f}"
    )
    # Headroom above the bars for the legend, in the corner where the probability curve is near 0.
    axes.set_ylim(0, 1.4 * axes.get_ylim()[1])
    axes.set_xlabel("L2 distance between the two photos' embeddings")
    axes.set_ylabel("Pairs")
    axes.set_title(run.model)
    probability_axes = axes.twinx()
    curve = np.linspace(edges[0], edges[-1], 200)
    probability_axes.plot(curve, run.calibration.probability(curve), color="tab:blue", label="P(same person)")
    probability_axes.set_ylim(0, 1)
    probability_axes.set_ylabel("Calibrated P(same person)")
    # One legend for both axes, on the axes drawn last so that the curve does not cover it.
    handles, labels = axes.get_legend_handles_labels()
    curve_handles, curve_labels = probability_axes.get_legend_handles_labels()
    probability_axes.legend(handles + curve_handles, labels + curve_labels, loc="upper right")
    figure.savefig(path)


def write_report(out_dir: Path, runs: list[ModelRun], title: str, data_description: str) -> list[Path]:
    """Write report.md, roc.png and distances-<model>.png into out_dir; return their paths in that order."""
    if not runs:
        raise ValueError("no model runs to report")
    stems = [_file_stem(run.model) for run in runs]
    if len(set(stems)) != len(stems):
        raise ValueError(f"model names must differ (as file names): {', '.join(run.model for run in runs)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    roc_path = out_dir / "roc.png"
    distance_paths = [out_dir / f"distances-{stem}.png" for stem in stems]
    _plot_roc(roc_path, runs)
    for path, run in zip(distance_paths, runs, strict=True):
        _plot_distances(path, run)
    report_path = out_dir / "report.md"
    image_names = [path.name for path in (roc_path, *distance_paths)]
    report_path.write_text(_markdown(runs, title, data_description, image_names), encoding="utf-8")
    logger.info("LFW report for %s written to %s", ", ".join(run.model for run in runs), out_dir)
    return [report_path, roc_path, *distance_paths]
