"""Measure Milvus alone at archive sizes: recall@20 against exact search and query latency per index setting."""

import json
import signal
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from benchmarks import vector_bench


class Command(BaseCommand):
    help = (
        "Start Milvus Lite and/or a Milvus standalone server in a temporary folder, fill a scratch collection with"
        " synthetic face-like vectors at each size, and measure recall@20, latency, build time and memory for"
        " candidate index settings. The archive's own Milvus is not touched."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sizes", default="10000,100000,1000000", help="Vector counts, comma-separated.")
        parser.add_argument(
            "--server",
            choices=["lite", "standalone", "both"],
            default="standalone",
            help="Which Milvus (default standalone, the scale-out path: about 30 minutes for the default sizes;"
            " Milvus Lite adds about 20).",
        )
        parser.add_argument("--queries", type=int, default=200, help="Timed queries per setting (default 200).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the results as JSON.")

    def handle(self, *args, sizes: str, server: str, queries: int, seed: int, as_json: bool, **options) -> None:
        try:
            counts = [int(size) for size in sizes.split(",")]
        except ValueError as error:
            raise CommandError(f"--sizes {sizes}: give whole numbers separated by commas") from error
        if any(count < vector_bench.TOP_K for count in counts) or queries < 1:
            raise CommandError(f"every size must be at least {vector_bench.TOP_K}, and --queries at least 1")
        servers = list(vector_bench.SERVERS) if server == "both" else [server]
        # The servers run in sessions of their own: SIGTERM must unwind through the code that stops them.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        # With --json, stdout carries only the report; progress goes to stderr.
        say = self.stderr.write if as_json else self.stdout.write
        say(vector_bench.vectors_description())
        started = time.perf_counter()
        runs = []
        for run in vector_bench.benchmark(servers, counts, queries, say, seed):
            runs.append(run)
            # Each table as soon as it is measured: a long run that is stopped keeps what it found.
            if not as_json:
                self.stdout.write("\n" + "\n".join(vector_bench.table(run)) + "\n")
        if as_json:
            self.stdout.write(json.dumps(vector_bench.as_dict(runs, queries)))
            return
        self.stdout.write(
            f">={vector_bench.RECALL_TARGET}: recall@{vector_bench.TOP_K} at least {vector_bench.RECALL_TARGET};"
            f" FASTEST: the lowest p50 of those. Whole run: {time.perf_counter() - started:.0f} s."
        )
