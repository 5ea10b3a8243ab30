"""The run: cold starts, rounds of ingest and latency measures, and the growing archive, for both servers.

Both servers of a round run side by side and take turns on each measure, the first one alternating from measure to
measure and from round to round, so that load from other work on the machine falls on both alike; the table
reports medians over rounds. Where one client sends one request at a time (the latencies, one-client REST ingest,
STOW-RS) the turns are request by request (``measures.interleaved``); ingest from several clients and storescu's
go server by server. Files are generated before any clock starts and are the same bytes for both servers.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from . import corpus, images, measures, reads, servers, starts, warm
from .plan import Plan

# Lot numbers keep the UIDs of every set of files apart (corpus.Generator).
WARMUP_LOT, LATENCY_LOT, SCALE_LOT = 1, 2, 3
INGEST_LOTS = {"rest_small_1": 11, "rest_small_4": 12, "rest_large_1": 13, "rest_large_4": 14,
               "cstore_small": 15, "cstore_large": 16}
STOW_LOT = 17
MIB = 1024  # /proc reports KiB


def log(message: str) -> None:
    """Progress goes to stderr; stdout keeps only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


PerServer = Callable[[servers.Server], dict[str, float]]
# A step of a round: the servers in the order they take their turns -> each server's figures
Together = Callable[[dict[str, servers.Server]], dict[str, dict[str, float]]]
# What a latency step asks of each server: a call making one request (resources it opens go on the stack)
Requester = Callable[[servers.Server, ExitStack], Callable[[], None]]


def each(action: PerServer) -> Together:
    """A step taken server by server, each in its turn (ingest from several clients, loading, storescu)."""
    return lambda running: {name: action(server) for name, server in running.items()}


def latency(key: str, count: int, requester: Requester, warmup: int = 10) -> Together:
    """A latency step: ``count`` requests a server, the servers' requests in turns (``measures.interleaved``);
    the figures are ``{key}_p50`` and ``{key}_p95``."""
    def run(running: dict[str, servers.Server]) -> dict[str, dict[str, float]]:
        with ExitStack() as stack:
            requesters = {name: requester(server, stack) for name, server in running.items()}
            figures = measures.interleaved_latency(requesters, count, warmup)
        return {name: _prefixed(key, quantiles) for name, quantiles in figures.items()}

    return run


def turns(round_number: int, step: int) -> tuple[str, str]:
    """Which server goes first on the ``step``-th measure of a round."""
    return servers.NAMES if (round_number + step) % 2 == 0 else servers.NAMES[::-1]


class Files:
    """Every file set of a round, generated once and shared by all rounds and both servers."""

    def __init__(self, plan: Plan, scratch: Path) -> None:
        small, large = corpus.Generator("small"), corpus.Generator("large")
        generators = {"small": small, "large": large}
        counts = {"rest_small": plan.rest_small, "rest_large": plan.rest_large,
                  "cstore_small": plan.cstore_small, "cstore_large": plan.cstore_large}
        self.sizes = {size: generator.file_size for size, generator in generators.items()}
        self.warmup = small.lot(WARMUP_LOT, 10)
        self.rest: dict[str, list[bytes]] = {}
        self.folders = {"warmup": measures.write_folder(small.lot(WARMUP_LOT, 5, start=100), scratch / "warmup")}
        for key, lot in INGEST_LOTS.items():  # e.g. "rest_small_4": REST, small files, 4 clients
            kind, size = key.split("_")[:2]
            payloads = generators[size].lot(lot, counts[f"{kind}_{size}"])
            if kind == "rest":
                self.rest[key] = payloads
            else:
                self.folders[key] = measures.write_folder(payloads, scratch / key)
        # STOW-RS: the multipart bodies are built here, outside any clock; the warm-up body is files 200-204.
        self.stow_warmup = measures.stow_body(small.lot(WARMUP_LOT, 5, start=200))
        stow_files = small.lot(STOW_LOT, plan.stow)
        self.stow = [measures.stow_body(stow_files[first:first + plan.stow_batch])
                     for first in range(0, plan.stow, plan.stow_batch)]
        self.latency = small.lot(LATENCY_LOT, plan.latency_set)
        patients = corpus.LAYOUT.patient_of(plan.latency_set - 1) + 1
        self.latency_patients = [corpus.patient_id(LATENCY_LOT, number) for number in range(patients)]
        studies = (plan.latency_set - 1) // corpus.LAYOUT.instances_per_study + 1
        self.latency_studies = [corpus.study_uid(LATENCY_LOT, number) for number in range(studies)]
        self.first_study_size = min(plan.latency_set, corpus.LAYOUT.instances_per_study)
        self.images = images.image_files(plan.images)


def cold_starts(plan: Plan, root: Path) -> dict[str, list[float]]:
    starts.compile_package()  # as installed: an editable install may keep no bytecode
    figures: dict[str, list[float]] = {name: [] for name in servers.NAMES}
    for attempt in range(plan.cold_starts):
        for name in turns(attempt, 0):
            with servers.start(name, root) as server:
                figures[name].append(server.started_in)
    return figures


def one_round(plan: Plan, files: Files, storescu: str, root: Path, round_number: int) -> dict[str, dict[str, float]]:
    """Every round measure for both servers (fresh ones), each measure taken in turns."""
    results: dict[str, dict[str, float]] = {name: {} for name in servers.NAMES}
    with ExitStack() as stack:
        running = {name: stack.enter_context(servers.start(name, root)) for name in servers.NAMES}
        time.sleep(0.5)  # let start-up work (lazy imports, first checkpoints) settle before reading idle RSS
        for name, server in running.items():
            results[name]["idle_rss"] = server.memory_kib()["VmRSS"] / MIB
            measures.upload(server, files.warmup)  # first requests pay one-off costs on both servers
            measures.cstore_ingest(server, files.folders["warmup"], storescu)
            measures.stow_ingest(server, [files.stow_warmup], 5)
        latency_ids: dict[str, list[str]] = {}
        image_ids: dict[str, dict[str, list[str]]] = {}
        steps: list[tuple[str, Together]] = [
            *((key, _rest(payloads, int(key[-1]), key)) for key, payloads in files.rest.items()),
            *((key, each(_cstore(files.folders[key], storescu, key))) for key in ("cstore_small", "cstore_large")),
            ("STOW-RS", lambda running: {name: {"stow_small": rate} for name, rate in
                                         measures.interleaved_stow_ingest(running, files.stow, plan.stow).items()}),
            ("latency set", each(_loader(files.latency, latency_ids))),
            ("GET /instances/{id}", _paths_latency(plan, latency_ids, "", "get_instance")),
            ("GET /instances/{id}/tags", _paths_latency(plan, latency_ids, "/tags", "get_tags")),
            *reads.steps(plan, latency_ids),  # /simplified-tags, /studies/{id}, /series/{id}, child lists
            ("POST /tools/find", _find_latency(plan, files.latency_patients)),
            ("C-FIND", _cfind_latency(plan, files.latency_patients)),
            ("QIDO-RS", _qido_latency(plan, files.latency_patients)),
            ("WADO-RS metadata", _metadata_latency(plan, files)),
            ("image set", each(_image_loader(files.images, image_ids))),
            *((f"{route} {encoding}", _image_latency(plan, image_ids, encoding, route))
              for encoding in files.images for route in ("preview", "raw")),
        ]
        for step, (label, action) in enumerate(steps):
            order = turns(round_number, step)
            for name in order:
                running[name].check_alive()
            news = action({name: running[name] for name in order})
            for name in order:
                results[name].update(news[name])
            log(f"round {round_number + 1}, {label}: " + "; ".join(
                f"{name} " + (" ".join(f"{key}={value:.2f}" for key, value in news[name].items()) or "done")
                for name in servers.NAMES))
        for name, server in running.items():
            results[name]["peak_rss"] = server.memory_kib()["VmHWM"] / MIB
    return results


def _loader(payloads: list[bytes], ids: dict[str, list[str]]) -> Callable[[servers.Server], dict[str, float]]:
    """Loads the latency set (untimed) and keeps its instance IDs for the GET measures."""
    def load(server: servers.Server) -> dict[str, float]:
        ids[server.name] = measures.upload(server, payloads)
        return {}

    return load


def _image_loader(files: dict[str, list[bytes]],
                  ids: dict[str, dict[str, list[str]]]) -> Callable[[servers.Server], dict[str, float]]:
    """Loads the image slices (untimed) and keeps their instance IDs by encoding."""
    def load(server: servers.Server) -> dict[str, float]:
        ids[server.name] = {encoding: measures.upload(server, payloads) for encoding, payloads in files.items()}
        return {}

    return load


def _image_latency(plan: Plan, ids: dict[str, dict[str, list[str]]], encoding: str, route: str) -> Together:
    """p50/p95 of ``/preview`` (decode, stretch, PNG) or ``/frames/0/raw`` (the stored frame) over the slices."""
    suffix = "/preview" if route == "preview" else "/frames/0/raw"
    return latency(f"{route}_{encoding}", plan.requests, lambda server, _: measures.rest_requester(
        server, "GET", [f"/instances/{identifier}{suffix}" for identifier in ids[server.name][encoding]]), warmup=3)


def _rest(payloads: list[bytes], clients: int, key: str) -> Together:
    """One client: the servers' uploads in turns (``measures.interleaved_rest_ingest``); several: server by server."""
    if clients == 1:
        return lambda running: {name: {key: rate} for name, rate in
                                measures.interleaved_rest_ingest(running, payloads).items()}
    return each(lambda server: {key: measures.rest_ingest(server, payloads, clients)})


def _cstore(folder: Path, storescu: str, key: str) -> PerServer:
    return lambda server: {key: measures.cstore_ingest(server, folder, storescu)}


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{quantile.removesuffix('_ms')}": value for quantile, value in figures.items()}


def _paths_latency(plan: Plan, ids: dict[str, list[str]], suffix: str, key: str) -> Together:
    return latency(key, plan.requests, lambda server, _: measures.rest_requester(
        server, "GET", [f"/instances/{identifier}{suffix}" for identifier in ids[server.name]]))


def _find_latency(plan: Plan, patients: list[str]) -> Together:
    bodies = [measures.find_study_body(patient) for patient in patients]

    def requester(server: servers.Server, _: ExitStack) -> Callable[[], None]:
        found = server.session().post(server.url + "/tools/find", json=bodies[0], timeout=60).json()
        if len(found) != corpus.LAYOUT.studies_per_patient:
            raise measures.MeasureFailed(f"{server.name}: /tools/find did not find the studies of {patients[0]}")
        return measures.rest_requester(server, "POST", ["/tools/find"], bodies=bodies)

    return latency("find", plan.requests, requester)


def _cfind_latency(plan: Plan, patients: list[str]) -> Together:
    def requester(server: servers.Server, stack: ExitStack) -> Callable[[], None]:
        client = stack.enter_context(measures.CFindClient(server))
        if client.find_studies(patients[0]) != corpus.LAYOUT.studies_per_patient:
            raise measures.MeasureFailed(f"{server.name}: C-FIND did not find the studies of {patients[0]}")
        return client.requester(patients)

    return latency("cfind", plan.requests, requester)


def _qido_latency(plan: Plan, patients: list[str]) -> Together:
    """``GET /dicom-web/studies?PatientID=...``: the DICOMweb twin of the /tools/find and C-FIND measures."""
    paths = [f"{servers.DICOMWEB_ROOT}/studies?PatientID={patient}" for patient in patients]

    def requester(server: servers.Server, _: ExitStack) -> Callable[[], None]:
        found = server.session().get(server.url + paths[0], headers=measures.DICOM_JSON, timeout=60)
        if found.status_code != 200 or len(found.json()) != corpus.LAYOUT.studies_per_patient:
            raise measures.MeasureFailed(f"{server.name}: QIDO-RS did not find the studies of {patients[0]} "
                                         f"({found.status_code}: {found.text[:300]})")
        return measures.rest_requester(server, "GET", paths, headers=measures.DICOM_JSON)

    return latency("qido", plan.requests, requester)


def _metadata_latency(plan: Plan, files: Files) -> Together:
    """``GET /dicom-web/studies/{uid}/metadata``: every instance's DICOM JSON, as a viewer asks when it opens a
    study (50 instances a study here, bulk data such as the pixels left out as BulkDataURI)."""
    paths = [f"{servers.DICOMWEB_ROOT}/studies/{study}/metadata" for study in files.latency_studies]

    def requester(server: servers.Server, _: ExitStack) -> Callable[[], None]:
        found = server.session().get(server.url + paths[0], headers=measures.DICOM_JSON, timeout=60)
        if found.status_code != 200 or len(found.json()) != files.first_study_size:
            raise measures.MeasureFailed(f"{server.name}: WADO-RS metadata of {files.latency_studies[0]} did not "
                                         f"list its {files.first_study_size} instances ({found.status_code}: "
                                         f"{found.text[:300]})")
        return measures.rest_requester(server, "GET", paths, headers=measures.DICOM_JSON)

    return latency("wado_metadata", plan.requests, requester)


def spread_patients(size: int, count: int) -> list[str]:
    """``count`` PatientIDs spread evenly over the first ``size`` instances of the scale lot."""
    patients = corpus.LAYOUT.patient_of(size - 1) + 1
    return [corpus.patient_id(SCALE_LOT, number * patients // count) for number in range(count)]


def windows(plan: Plan) -> Iterator[tuple[int, list[bytes]]]:
    """Each scale window's files, generated just before it (only one window is held in memory)."""
    generator = corpus.Generator("small")
    for start in range(0, plan.scale, plan.step):
        yield start + plan.step, generator.lot(SCALE_LOT, plan.step, start=start)


def scale(plan: Plan, root: Path) -> dict[str, Any]:
    """Grow one archive per server to ``plan.scale`` instances, window by window, in turns; after each window,
    the window's ingest rate (4 clients) and the p50 of study-level /tools/find and C-FIND at that size."""
    points: list[dict[str, Any]] = []
    with ExitStack() as stack:
        running = {name: stack.enter_context(servers.start(name, root)) for name in servers.NAMES}
        for server in running.values():  # one-off costs of first requests stay out of the first window
            measures.upload(server, corpus.Generator("small").lot(WARMUP_LOT, 10))
        for number, (size, payloads) in enumerate(windows(plan)):
            point: dict[str, Any] = {"instances": size}
            patients = spread_patients(size, plan.scale_requests)
            for name in turns(number, 0):
                server = running[name]
                rate = measures.rest_ingest(server, payloads, 4)
                find = measures.rest_latency(server, "POST", ["/tools/find"], plan.scale_requests, warmup=5,
                                             bodies=[measures.find_study_body(patient) for patient in patients])
                with measures.CFindClient(server) as client:  # a new association: an idle one times out
                    cfind = client.latency(patients, plan.scale_requests, warmup=5)
                point[name] = {"ingest_per_s": rate, "find_p50_ms": find["p50_ms"], "cfind_p50_ms": cfind["p50_ms"]}
            points.append(point)
            log(f"scale {size}: " + "  ".join(
                f"{name} {point[name]['ingest_per_s']:.0f}/s find {point[name]['find_p50_ms']:.1f} ms "
                f"C-FIND {point[name]['cfind_p50_ms']:.1f} ms" for name in servers.NAMES))
        peak = {name: server.memory_kib()["VmHWM"] / MIB for name, server in running.items()}
        restarted = {name: starts.restarts(server) for name, server in running.items()}
    summary: dict[str, dict[str, float]] = {}
    for name in servers.NAMES:
        first, last = points[0][name], points[-1][name]
        summary[name] = {"scale_rate_first": first["ingest_per_s"], "scale_rate_last": last["ingest_per_s"],
                         "scale_rate_kept": last["ingest_per_s"] / first["ingest_per_s"],
                         "scale_find_p50": last["find_p50_ms"], "scale_cfind_p50": last["cfind_p50_ms"],
                         "scale_peak_rss": peak[name], **restarted[name]}
    return {"points": points, "summary": summary}


def _warm_starts(plan: Plan, root: Path) -> dict[str, list[float]]:
    """pacsbox's warm starts; Orthanc has none, so its rows show its cold starts."""
    log(f"warm starts ({plan.cold_starts} in process, {plan.cold_starts} whole CLI processes)")
    figures = warm.warm_starts(plan, root)
    log("warm starts: " + "; ".join(f"{key} median {statistics.median(values) * 1000:.0f} ms"
                                    for key, values in figures.items()))
    return figures


def run(plan: Plan, storescu: str, root: Path) -> dict[str, Any]:
    """Everything, in order, with every server and file under ``root`` (left for the caller to remove); returns
    the raw figures, which ``report`` turns into tables."""
    began = time.perf_counter()
    log("generating files")
    files = Files(plan, root / "files")
    with servers.start("orthanc", root) as probe:
        orthanc_version = servers.version_of(probe)
    log(f"cold starts ({plan.cold_starts} per server)")
    cold = cold_starts(plan, root)
    log("cold starts with a patient client, CLI reuse")
    patient = starts.patient_cold_starts(plan, root)
    reuse = starts.cli_reuse(plan, root)
    rounds = []
    for round_number in range(plan.rounds):
        log(f"round {round_number + 1} of {plan.rounds}")
        rounds.append(one_round(plan, files, storescu, root, round_number))
    per_round = {name: {"cold_start": cold[name], "cold_start_patient": patient[name], "cli_reuse": [reuse[name]]}
                 for name in servers.NAMES}
    per_round["pacsbox"].update(_warm_starts(plan, root))
    per_round["orthanc"].update({key: cold["orthanc"] for key in ("warm_start", "warm_start_cli")})
    for figures in rounds:
        for name in servers.NAMES:
            for key, value in figures[name].items():
                per_round[name].setdefault(key, []).append(value)
    result: dict[str, Any] = {
        "orthanc_version": orthanc_version,
        "file_sizes": files.sizes,
        "per_round": per_round,
        "medians": {name: {key: statistics.median(values) for key, values in figures.items()}
                    for name, figures in per_round.items()},
    }
    if plan.scale:
        log(f"scale: to {plan.scale} instances, {plan.step} per window")
        result["scale"] = scale(plan, root)
    result["seconds"] = time.perf_counter() - began
    return result
