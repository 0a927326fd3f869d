"""report.md of `evaluate clusters`: the methods side by side, the parameter sweep and the open-set threshold."""

from pathlib import Path

from . import clusters, openset
from .clusters import Evaluation, MethodRun


def _row(entry: MethodRun, label: str) -> str:
    s = entry.score
    return (
        f"| {label} | {s.bcubed_precision:.4f} | {s.bcubed_recall:.4f} | {s.bcubed_f:.4f} | {s.pairwise_precision:.4f}"
        f" | {s.pairwise_recall:.4f} | {s.pairwise_f:.4f} | {s.people_found} / {s.people_true} | {s.unclustered}"
        f" | {entry.seconds:.2f} |"
    )


def _parameters(entry: MethodRun) -> str:
    return ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}" for key, value in entry.parameters.items()
    )


HEADER = (
    "| method | BCubed P | BCubed R | BCubed F | pairwise P | pairwise R | pairwise F | people found / true"
    " | left out | seconds |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)
STRANGERS_HEADER = HEADER.replace("| seconds |", "| seconds | strangers grouped |") + " ---: |"


def methods_section(evaluation: Evaluation) -> list[str]:
    lines = ["## The methods side by side", "", HEADER]
    lines += [_row(entry, f"{entry.method} ({_parameters(entry)})") for entry in evaluation.methods]
    ours = evaluation.methods[0].score
    met = ours.bcubed_precision >= clusters.TARGET_PRECISION and ours.bcubed_recall >= clusters.TARGET_RECALL
    lines += [
        "",
        f"Our method at radius {evaluation.radius:.3f} ({evaluation.radius_source}) and min_faces"
        f" {evaluation.min_faces}; DBSCAN at its best BCubed F of the sweep, HDBSCAN (which has no radius) at its best"
        " of its grid."
        f" Targets for our method: BCubed precision >= {clusters.TARGET_PRECISION} and recall >="
        f" {clusters.TARGET_RECALL}: {'met' if met else 'NOT met'}. 'left out' counts faces in no group (and photos"
        " with no face), each counted as a person of its own.",
        "",
    ]
    return lines


def sweep_section(evaluation: Evaluation) -> list[str]:
    best = clusters.best_meeting_targets(evaluation.sweep)
    names = [entry.method for entry in evaluation.sweep[0]]
    lines = [
        "## Parameter sweep",
        "",
        "Each method that takes a radius and a smallest group (min_faces), at each point of the grid: BCubed"
        " precision / recall / F, and the people found (of " + str(evaluation.methods[0].score.people_true) + ")."
        " The density rule is what people/grouping.py used before the stable groups: one cut at the radius, the"
        " same rule as DBSCAN (it differs only in which group a face near two takes).",
        "",
        "| radius | min_faces | " + " | ".join(f"{name} P / R / F | people" for name in names) + " |",
        "| ---: | ---: | " + " | ".join("---: | ---:" for _ in names) + " |",
    ]
    for point in evaluation.sweep:
        mark = " **best**" if point[0] is best else ""
        cells = " | ".join(
            f"{s.bcubed_precision:.4f} / {s.bcubed_recall:.4f} / {s.bcubed_f:.4f} | {s.people_found}"
            for s in (entry.score for entry in point)
        )
        lines.append(f"| {point[0].parameters['radius']:.2f} | {point[0].parameters['min_faces']}{mark} | {cells} |")
    chosen = f"radius {best.parameters['radius']:.2f}, min_faces {best.parameters['min_faces']}" if best else "none"
    lines += [
        "",
        f"**best** ({chosen}): our highest BCubed F with precision >= {clusters.TARGET_PRECISION}, among the points"
        f" that also reach recall {clusters.TARGET_RECALL} if any do; ties go to the smaller radius.",
        "",
        "## HDBSCAN grid",
        "",
        HEADER,
    ]
    lines += [_row(entry, _parameters(entry)) for entry in evaluation.hdbscan_sweep]
    return lines + [""]


def strangers_section(evaluation: Evaluation) -> list[str]:
    if not evaluation.with_strangers:
        return []
    count = evaluation.with_strangers[0][0].score.people_true - evaluation.people
    lines = [
        "## With strangers mixed in",
        "",
        f"The same faces plus those of the {count} people with one photo, each of whom should stay alone (they count"
        " in every figure; 'strangers grouped' is the share of them put in a group).",
        "",
        STRANGERS_HEADER,
    ]
    lines += [
        f"{_row(entry, f'{entry.method} ({_parameters(entry)})')} {share:.3f} |"
        for entry, share in evaluation.with_strangers
    ]
    return lines + [""]


def openset_section(results: list[openset.OpenSet]) -> list[str]:
    lines = [
        "## Open-set identification threshold",
        "",
        f"Half of the people with two or more photos are known (drawn {openset.SPLITS} times): up to"
        f" {openset.GALLERY_FACES} photos each form the gallery, their other photos are probes to be named. The other"
        " half and every person with one photo are strangers. The threshold is the distance below which a stranger's"
        f" nearest gallery face falls at most {openset.FALSE_MATCH:.0%} of the time (pooled over the draws).",
        "",
        "| model | threshold | ± over draws | strangers named | known named right | known named wrong | rank-1"
        " | pair threshold | strangers named there | known named right there |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        at, pair = result.at_identification, result.at_pair
        lines.append(
            f"| {result.model} | {at.threshold:.3f} | {result.threshold_std:.3f} | {at.stranger_named:.3f}"
            f" | {at.known_identified:.3f} | {at.known_misnamed:.3f} | {result.rank_1:.3f} | {pair.threshold:.3f}"
            f" | {pair.stranger_named:.3f} | {pair.known_identified:.3f} |"
        )
    if results:
        first = results[0]
        lines += [
            "",
            f"Per draw: {first.known_people} known people, {first.gallery_faces} gallery faces,"
            f" {first.known_probes} known probes, {first.stranger_probes} stranger probes.",
            "",
            "By the gallery's size: the same rule against fewer known people, drawn from each draw's known half (the"
            " same strangers); the product reads this curve for the number of faces of its named people.",
            "",
            "| model | known people | gallery faces | galleries | threshold | ± over galleries | strangers named"
            " | known named right |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {result.model} | {point.known_people} | {point.gallery_faces} | {point.galleries}"
            f" | {point.at.threshold:.3f} | {point.threshold_std:.3f} | {point.at.stranger_named:.3f}"
            f" | {point.at.known_identified:.3f} |"
            for result in results
            for point in result.curve
        ]
    return lines + [""]


def write_report(out: Path, evaluation: Evaluation, results: list[openset.OpenSet], data: Path) -> Path:
    """report.md in `out`."""
    lines = [
        "# How well faces are grouped: LFW",
        "",
        f"{evaluation.model}: every photo of the {evaluation.people} people with two or more photos under {data}"
        f" ({evaluation.photos} photos, no face found in {evaluation.no_face}), embedded once through the real"
        " pipeline (the face nearest the centre). Noise counts as people of one in BCubed.",
        "",
        *methods_section(evaluation),
        *sweep_section(evaluation),
        *strangers_section(evaluation),
        *openset_section(results),
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
