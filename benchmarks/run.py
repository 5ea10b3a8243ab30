"""pacsbox beside the real Orthanc, same machine, same files, same settings: one table and a JSON file.

    python benchmarks/run.py                     # full run: 3 rounds, archive grown to 100,000 instances
    python benchmarks/run.py --quick             # CI smoke run: every measure, small counts (well under 2 min)
    python benchmarks/run.py --scale 20000 --step 5000 --markdown --json results.json

Measures cold start, REST ingest (1 and 4 keep-alive clients, ~2 KB and ~150 KB files), C-STORE ingest (dcmtk
storescu, one association, TCP_NODELAY=1), STOW-RS ingest (one client, 10 instances a request), p50/p95 latency of
GET /instances/{id}, its /tags and /simplified-tags, GET /studies/{id}, GET /series/{id}, a study's series and a
series' instances (expanded child lists), POST /tools/find, a study-level C-FIND (one association), QIDO-RS
studies by PatientID and WADO-RS study metadata (the real Orthanc with its DICOMweb plugin), /preview and
/frames/0/raw of 512 x 512 CT slices uncompressed and in JPEG-LS, idle and peak RSS, and ingest and query figures as
the archive grows. Both servers run from one launcher with equivalent settings
(bench/servers.py); the table's ratio is always "times better for pacsbox" (bench/report.py). Progress goes to
stderr, the table to stdout.

Needs Debian's orthanc, orthanc-dicomweb and dcmtk: bash scripts/install-test-deps.sh. Runs from the repository
root without PYTHONPATH (its helpers sit beside it in benchmarks/bench/; pacsbox is the installed package).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import cleanup, report, servers, suite
from bench.plan import FULL, QUICK, SMOKE, Plan


def parse(argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:5]))
    parser.add_argument("--quick", action="store_true", help="small counts for CI (every measure still runs)")
    parser.add_argument("--smoke", action="store_true",
                        help="the test suite's plan: every measure once, the fewest files (figures meaningless)")
    parser.add_argument("--rounds", type=int, help=f"rounds of fresh servers (default {FULL.rounds})")
    parser.add_argument("--scale", type=int,
                        help=f"instances the growing archive reaches, 0 to skip (default {FULL.scale})")
    parser.add_argument("--step", type=int, help=f"instances per growth window (default {FULL.step})")
    parser.add_argument("--requests", type=int, help=f"timed requests per latency measure (default {FULL.requests})")
    parser.add_argument("--workdir", type=Path, help="folder for the servers' data (default: the temp folder)")
    parser.add_argument("--json", type=Path, default=Path("benchmark-results.json"),
                        help="where to write every figure as JSON (default ./benchmark-results.json)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for the README)")
    options = parser.parse_args(argv)
    base = SMOKE if options.smoke else QUICK if options.quick else FULL
    overrides = {key: getattr(options, key) for key in ("rounds", "scale", "step", "requests", "workdir")
                 if getattr(options, key) is not None}
    try:
        return replace(base, **overrides), options
    except ValueError as error:
        parser.error(str(error))
        raise  # parser.error exits; this keeps type checkers informed


def main(argv: list[str] | None = None) -> int:
    plan, options = parse(argv)
    missing = servers.missing_tools()
    if missing:
        print(f"benchmark needs {' and '.join(missing)}: run `bash scripts/install-test-deps.sh`", file=sys.stderr)
        return 2
    storescu = servers.storescu_path()
    assert storescu is not None  # missing_tools said so
    root = Path(tempfile.mkdtemp(prefix="pacsbox-bench-", dir=plan.workdir))
    try:
        result = suite.run(plan, storescu, root)
        info = report.machine(result["orthanc_version"])
        print(report.render(result, plan, info, markdown=options.markdown), flush=True)
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(report.document(result, plan, info), indent=2))
        suite.log(f"measured in {result['seconds']:.0f} s; figures in {options.json}")
    finally:
        suite.log(f"removing {root} (both archives and the generated files)")
        cleanup.remove_tree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
