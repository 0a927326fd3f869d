"""Run an LFW benchmark on the real pipeline, write metrics.json and report.md, and store the calibration.

lfw: verification, retrieval and the pair calibration. clusters: how well faces are grouped into people (ours,
DBSCAN, HDBSCAN), and the open-set identification threshold (benchmarks/evaluation/clusters.py, openset.py).
precision: float32 against bfloat16, LFW accuracy and MTCNN's boxes (benchmarks/evaluation/precision.py).
"""

import functools
import json
import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks.evaluation import clusters, clusters_report, lfw, openset, pipeline, precision, report
from media_index import face_engine, vector_store
from media_index.models import Calibration
from revsearch_site import processes


class Command(BaseCommand):
    help = (
        "Evaluate face models on LFW. lfw: verification (10-fold), retrieval through Milvus, kNN accuracy and"
        " detection, side by side with a baseline; writes metrics.json, report.md and plots, and calibrates the search"
        " score. clusters: groups the photos of LFW's people into people (ours, DBSCAN, HDBSCAN) and calibrates the"
        " open-set identification threshold. precision: LFW accuracy and embedding speed with FaceNet in float32 and"
        " bfloat16, and MTCNN's boxes and speed in both on the shared photos (the gate for REVSEARCH_FACE_PRECISION)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("benchmark", choices=["lfw", "clusters", "precision"])
        parser.add_argument(
            "--data", type=Path, default=settings.DATA_DIR / "lfw", help="LFW folder (default: %(default)s)."
        )
        parser.add_argument("--pairs", type=Path, help="Pairs file in LFW's format (default: DATA/pairs.txt).")
        parser.add_argument(
            "--limit",
            type=int,
            help="lfw: at most this many pairs, balanced across folds; clusters: at most this many people with two or"
            " more photos (and as many with one), the first by name.",
        )
        parser.add_argument("--out", type=Path, help="Report folder (default: HOME/evaluation/<benchmark>).")
        parser.add_argument("--model", default=settings.FACE_MODEL, help="Face model (default: %(default)s).")
        parser.add_argument(
            "--baseline", default="dlib-resnet", help="Model to compare with, or 'none' (default: %(default)s)."
        )
        parser.add_argument(
            "--threads", type=int, default=os.cpu_count() or 1, help="Torch threads (default: every core)."
        )
        parser.add_argument(
            "--calibrate",
            choices=["auto", "yes", "no"],
            default="auto",
            help="Store what was measured: lfw the pair threshold and score curve, clusters the identification"
            " threshold (auto: only without --limit).",
        )

    def handle(self, *args, data: Path, pairs: Path | None, limit: int | None, out: Path | None, model: str, **options):
        settings.TORCH_THREADS = max(options["threads"], 1)  # read when the models load, below
        out = out or settings.HOME_DIR / "evaluation" / options["benchmark"]
        if options["benchmark"] == "clusters":
            return self.clusters(data, limit, out, model, options)
        pairs_file = pairs or data / "pairs.txt"
        if not pairs_file.is_file():
            raise CommandError(f"{pairs_file} not found: give the LFW folder with --data, or a pairs file with --pairs")
        models = [model] + ([] if options["baseline"] == "none" else [options["baseline"]])
        for name in models:
            try:
                face_engine.model_name(name)
            except Exception as error:
                raise CommandError(str(error)) from error
        chosen, missing = lfw.read_pairs(data, pairs_file)
        chosen = lfw.limit_pairs(chosen, limit)
        if not chosen:
            raise CommandError(f"no pair of {pairs_file} has both photos under {data}")
        if options["benchmark"] == "precision":
            return self.precision(chosen, out, model)
        self.stdout.write(
            f"{len(chosen)} pairs of {pairs_file.name}, {len(lfw.photos_of(chosen))} photos"
            f" ({len(missing)} named photos missing); models: {', '.join(models)}"
        )
        out.mkdir(parents=True, exist_ok=True)
        runs = self.run_models(models, chosen, len(missing))
        self.write(out, runs, pairs_file, data)
        if options["calibrate"] == "yes" or (options["calibrate"] == "auto" and limit is None):
            self.calibrate(runs, pairs_file)

    def run_models(self, models: list[str], pairs: list[lfw.Pair], skipped: int) -> list[report.ModelRun]:
        """Each model in turn, with a private Milvus Lite server so the archive's index is never touched."""
        archive_uri = settings.MILVUS_URI
        with tempfile.TemporaryDirectory(prefix="revsearch-evaluate-") as scratch:
            port = processes.free_port()
            server = processes.milvus_lite(port, Path(scratch)).start()
            try:
                server.wait_ready()
                settings.MILVUS_URI = f"http://127.0.0.1:{port}"
                vector_store.reset_client()
                cache = settings.HOME_DIR / "evaluation" / "cache"
                return [pipeline.evaluate_model(model, pairs, skipped, cache) for model in models]
            finally:
                settings.MILVUS_URI = archive_uri  # the caller's client points at the archive's server again
                vector_store.reset_client()
                server.stop()

    def write(self, out: Path, runs: list[report.ModelRun], pairs_file: Path, data: Path) -> None:
        primary, *baselines = [pipeline.metrics_record(run) for run in runs]
        record = primary | {"baselines": {entry["model"]: entry for entry in baselines}}
        (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        description = f"{runs[0].pairs} pairs of {pairs_file.name} ({runs[0].photos} photos under {data})"
        written = report.write_report(out, runs, title="LFW evaluation", data_description=description)
        for run in runs:
            v = run.verification
            self.stdout.write(
                f"{run.model}: accuracy {v.accuracy:.4f} ± {v.std:.4f} (published {run.published_accuracy}),"
                f" AUC {v.auc:.4f}, TAR@FAR=1e-3 {v.tar_at_far_1e_3:.4f}, threshold {v.threshold:.3f};"
                f" top-20 hit portion {run.retrieval.top20_hit_portion:.4f}, recall@1 {run.retrieval.recall_at_1:.4f},"
                f" kNN {run.knn_accuracy:.4f}; no face in {run.no_face} photos; {run.seconds:.0f} s"
            )
        self.stdout.write(f"wrote {out / 'metrics.json'} and {', '.join(str(path) for path in written)}")

    def calibrate(self, runs: list[report.ModelRun], pairs_file: Path) -> None:
        """Store each model's threshold and fitted score curve: the search page uses the latest one."""
        for run in runs:
            Calibration.objects.create(
                model_name=run.model,
                threshold=run.verification.threshold,
                midpoint=run.calibration.midpoint,
                slope=run.calibration.slope,
                accuracy=run.verification.accuracy,
                pairs=run.pairs,
                source=f"LFW {pairs_file.name}, {run.pairs} pairs",
            )
            self.stdout.write(
                f"calibrated {run.model}: same person below {run.verification.threshold:.3f},"
                f" score 50 at {run.calibration.midpoint:.3f}"
            )

    def precision(self, pairs: list[lfw.Pair], out: Path, model: str) -> None:
        """The reduced-precision gate: boxes on the shared photos first (a minute), then LFW (long)."""
        photos = precision.shared_photos(settings.DATA_DIR)
        self.stdout.write(
            f"{len(photos)} shared photos, {len(pairs)} LFW pairs; {settings.TORCH_THREADS} torch threads"
        )
        boxes = precision.boxes_at_both(photos, model)
        detector, default = boxes["bfloat16_detector"], boxes["default"]
        self.stdout.write(
            f"MTCNN on {boxes['photos']} photos: {detector['faces']} faces in float32, {detector['faces_other']} in"
            f" bfloat16 (count differs in {len(detector['count_differs'])} photos), worst IoU {detector['worst_iou']}"
            f" ({detector['worst_photo']}), {detector['faces_below_gate']} faces under {precision.IOU_GATE};"
            f" detect ms a face {boxes['detect_ms_per_face']}; gate passed: {detector['passes']}."
            f" As configured ({default['precision']}): worst IoU {default['worst_iou']},"
            f" count differs in {len(default['count_differs'])} photos"
        )
        verification = precision.lfw_at_both(pairs, model)
        self.stdout.write(
            f"LFW {verification['pairs']} pairs ({verification['faces']} faces): accuracy {verification['accuracy']},"
            f" embed ms a face {verification['embed_ms_per_face']}, float32-bfloat16 embedding distance"
            f" {verification['embedding_distance']}; gate passed: {verification['passes']}"
        )
        out.mkdir(parents=True, exist_ok=True)
        record = {"torch_threads": settings.TORCH_THREADS, "boxes": boxes, "lfw": verification}
        (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        self.stdout.write(f"wrote {out / 'metrics.json'}")

    def clusters(self, data: Path, limit: int | None, out: Path, model: str, options: dict) -> None:
        """Embed LFW's people once per model, measure the open set on each and the grouping on the first."""
        models = [model] + ([] if options["baseline"] == "none" else [options["baseline"]])
        try:
            names = [face_engine.model_name(name) for name in models]
            people = clusters.lfw_people(data, limit)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{len(people.several)} people with two or more photos, {len(people.single)} with one;"
            f" models: {', '.join(names)}"
        )
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        measured = clusters.measure(people, models, settings.HOME_DIR / "evaluation" / "cache")
        record = clusters.metrics_record(measured.evaluation) | {
            "open_set": {result.model: openset.record(result) for result in measured.open_sets},
            "seconds": round(time.monotonic() - started, 1),
        }
        (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        written = clusters_report.write_report(out, measured.evaluation, measured.open_sets, data)
        for entry in measured.evaluation.methods:
            s = entry.score
            self.stdout.write(
                f"{entry.method}: BCubed P {s.bcubed_precision:.4f} R {s.bcubed_recall:.4f} F {s.bcubed_f:.4f},"
                f" pairwise F {s.pairwise_f:.4f}, {s.people_found} people of {s.people_true}, {s.unclustered} left out,"
                f" {entry.seconds:.1f} s"
            )
        for result in measured.open_sets:
            at, pair = result.at_identification, result.at_pair
            self.stdout.write(
                f"{result.model}: identification threshold {at.threshold:.3f}, known probes named right"
                f" {at.known_identified:.3f}; at the pair threshold {pair.threshold:.3f} {pair.stranger_named:.3f}"
                " of strangers get a name; by gallery faces: "
                + ", ".join(f"{faces} {threshold:.3f}" for faces, threshold in openset.stored_curve(result))
            )
        self.stdout.write(f"wrote {out / 'metrics.json'} and {written}")
        if options["calibrate"] == "yes" or (options["calibrate"] == "auto" and limit is None):
            for result in measured.open_sets:
                vectors = measured.vectors[result.model]
                stored = openset.store(result, functools.partial(clusters.pair_accuracy, data, vectors))
                self.stdout.write(
                    f"calibrated {result.model}: a known person's name below {stored.identification_threshold:.3f}"
                    f" among {result.gallery_faces} known faces, {len(stored.identification_curve or [])} curve points"
                )
