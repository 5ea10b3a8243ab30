"""The long fuzzing run, by hand: the suite's generators (``ingest_cases``, ``test_cfind_properties``) for a time
budget instead of a bounded number of examples.

Run from the repository root::

    python -m tests.fuzz.long_harness --minutes 10                # ingest over HTTP + C-FIND matching
    python -m tests.fuzz.long_harness --minutes 30 --process       # against a real `pacsbox serve` process
    python -m tests.fuzz.long_harness --seed 1234 --minutes 1      # the same inputs again (seed printed at start)
    python -m tests.fuzz.long_harness --replay /tmp/pacsbox-fuzz-failures   # re-check saved failures

Every input ``n`` of a run comes from ``random.Random(f"{seed}-{n}")``, so a seed and a number replay one input.
Each ingest input goes to ``POST /instances`` with every check of ``IngestChecker`` (never a 5xx, archive
unchanged after a 4xx, the core in-process agrees, stored bytes identical, tags readable, found by
``/tools/find``); every tenth also through XNAT's import service; between them, random C-FIND identifiers are
compared with the DICOM matching rules. A failing input is saved as ``<seed>-<n>.dcm`` beside a ``.txt`` that
says how it was made and what failed (``--failures``, default ``$TMPDIR/pacsbox-fuzz-failures``), and the run goes
on. The exit status is 1 when anything failed. Single-threaded: it takes about one core.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

from pacsbox.core.archive import Archive
from pacsbox.core.config import Config
from tests.fuzz.ingest_cases import Case, IngestChecker, RandomChooser, any_case, classify, xnat_import_check
from tests.fuzz.test_cfind_properties import cfind_uids, expected_uids, populate, random_query, stored_studies

MAX_SAVED = 200  # failures saved per run: past that they are only counted


class Run:
    """One fuzzing run: servers, counters, the failure folder."""

    def __init__(self, seed: int, failures: Path, process: bool, stack: ExitStack) -> None:
        self.seed = seed
        self.failures = failures
        self.counts: dict[str, int] = {"ingest": 0, "stored": 0, "refused": 0, "xnat": 0, "xnat stored": 0, "cfind": 0,
                                        "failed": 0}
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pacsbox-fuzz-")))
        self.reference = Archive(_config(scratch / "reference"))
        stack.callback(self.reference.close)
        if process:
            from tests.support.pacsbox_proc import RunningPacsbox

            server: Any = stack.enter_context(RunningPacsbox({"SyncStorageArea": False}))
            url, auth, data_dir = server.url, server.auth, server.data_dir
        else:
            from pacsbox.server import Server

            data_dir = scratch / "served"
            server = stack.enter_context(Server({"SyncStorageArea": False}, data_dir=data_dir))
            url, auth = server.url, server.auth
        self.server = server
        self.checker = IngestChecker(url, auth, data_dir, self.reference)
        stack.callback(self.checker.close)
        self.http = requests.Session()
        self.http.auth = auth
        self.url = url
        self.first: dict[str, bytes] = {}  # instance ID -> the bytes first stored under it (for XNAT's listing)
        self.matching = Archive(_config(scratch / "matching"))
        stack.callback(self.matching.close)
        populate(self.matching, count=80, seed=seed % 1000)
        self.studies = stored_studies(self.matching)

    def ingest(self, number: int, case: Case, with_xnat: bool) -> None:
        self.counts["ingest"] += 1
        self.counts[self.checker.check(case)] += 1
        if with_xnat:
            outcome, result = classify(self.reference, case.data)
            expected = None
            if outcome == "stored":
                expected = self.first.setdefault(result.instance_id, case.data)
            self.counts["xnat"] += 1
            self.counts["xnat stored"] += xnat_import_check(self.http, self.url, case, number, expected) == "stored"

    def cfind(self, chooser: RandomChooser) -> None:
        query = random_query(chooser, self.studies)
        if not query:
            return
        case_sensitive_pn = chooser.boolean()
        got = cfind_uids(self.matching, Config(CaseSensitivePN=case_sensitive_pn), query)
        want = expected_uids(self.studies, query, case_sensitive_pn)
        assert got == want, f"C-FIND {query} (CaseSensitivePN={case_sensitive_pn}): {len(got)} answers, " \
                            f"the rules match {len(want)}"
        self.counts["cfind"] += 1

    def failed(self, name: str, case: Case | None, error: BaseException) -> None:
        self.counts["failed"] += 1
        summary = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
        print(f"  FAILED {name}: {summary}", flush=True)
        if self.counts["failed"] > MAX_SAVED:
            return
        self.failures.mkdir(parents=True, exist_ok=True)
        if case is not None:
            (self.failures / f"{name}.dcm").write_bytes(case.data)
        how = case.how if case is not None else "no input file: a C-FIND query or the generator (replay with --seed)"
        (self.failures / f"{name}.txt").write_text(
            f"seed {self.seed}, input {name}\n{how}\n\n{''.join(traceback.format_exception(error))}")


def _config(folder: Path) -> Config:
    return Config(StorageDirectory=str(folder), SyncStorageArea=False)


def run(minutes: float, seed: int, failures: Path, process: bool, xnat_every: int, cfind_per_input: int) -> int:
    print(f"pacsbox fuzz: seed {seed}, {minutes:g} min, {'process' if process else 'in-process'} server, "
          f"failures to {failures}", flush=True)
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    last_report = started
    with ExitStack() as stack:
        state = Run(seed, failures, process, stack)
        number = 0
        while time.monotonic() < deadline:
            name = f"{seed}-{number}"
            chooser = RandomChooser(random.Random(name))
            try:
                case = any_case(chooser)
            except Exception as error:  # a bug of the generators themselves: recorded with the seed that replays it
                state.failed(f"{name}-generator", None, error)
                number += 1
                continue
            try:
                state.ingest(number, case, xnat_every > 0 and number % xnat_every == 0)
            except Exception as error:  # a failed property, or a crash of the harness's own request: saved, go on
                state.failed(name, case, error)
            for query in range(cfind_per_input):
                try:
                    state.cfind(chooser)
                except Exception as error:  # the same: recorded with the seed that replays it
                    state.failed(f"{name}-cfind{query}", None, error)
            if process and state.server.process.poll() is not None:
                print("  the server process died; stopping", flush=True)
                state.counts["failed"] += 1
                break
            number += 1
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                _report(state.counts, last_report - started)
    _report(state.counts, time.monotonic() - started, final=True)
    return 1 if state.counts["failed"] else 0


def _report(counts: dict[str, int], seconds: float, final: bool = False) -> None:
    rate = counts["ingest"] / seconds if seconds else 0.0
    print(f"{'done' if final else '  ..'} after {seconds:.0f} s: {counts['ingest']} ingest inputs "
          f"({counts['stored']} stored, {counts['refused']} refused, {rate:.1f}/s), {counts['xnat']} XNAT imports "
          f"({counts['xnat stored']} stored), {counts['cfind']} C-FIND queries, {counts['failed']} failures",
          flush=True)


def replay(folder: Path, process: bool) -> int:
    """Re-check every saved ``.dcm`` of ``folder`` against a fresh server."""
    files = sorted(folder.glob("*.dcm"))
    failed = 0
    with ExitStack() as stack:
        state = Run(0, Path(tempfile.mkdtemp(prefix="pacsbox-replay-")), process, stack)
        for number, path in enumerate(files):
            try:
                state.ingest(number, Case(path.read_bytes(), f"replayed {path.name}"), with_xnat=True)
                print(f"  ok     {path.name}")
            except Exception as error:  # reported, the next file is still checked
                failed += 1
                print(f"  FAILED {path.name}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
    print(f"replayed {len(files)} inputs: {failed} still failing")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.long_harness", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the run (default: random, printed)")
    parser.add_argument("--failures", type=Path, default=Path(tempfile.gettempdir()) / "pacsbox-fuzz-failures",
                        help="where failing inputs go (default: pacsbox-fuzz-failures in the temporary folder)")
    parser.add_argument("--process", action="store_true", help="fuzz a `pacsbox serve` child process")
    parser.add_argument("--xnat-every", type=int, default=10, help="every Nth input also through XNAT (0: never)")
    parser.add_argument("--cfind-per-input", type=int, default=2, help="C-FIND queries checked per input")
    parser.add_argument("--replay", type=Path, default=None, help="re-check the saved failures of this folder")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom warns about every invalid value: that is the point here
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    if args.replay is not None:
        return replay(args.replay, args.process)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    return run(args.minutes, seed, args.failures, args.process, args.xnat_every, args.cfind_per_input)


if __name__ == "__main__":
    sys.exit(main())
