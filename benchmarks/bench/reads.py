"""Latency of the Orthanc API's other small reads over the latency set: /simplified-tags, one study, one series,
and two child lists (a study's series, a series' instances, each resource expanded as Orthanc lists them).

The resources are found through each server's own answers (instance -> ParentSeries -> ParentStudy), untimed,
then each measure cycles through them over one keep-alive session a server, the servers' requests in turns
(``suite.latency``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from . import corpus, measures
from .servers import Server

if TYPE_CHECKING:  # plan.py lists these rows among its own: it imports this module while it is being made
    from .plan import Measure, Plan
    from .suite import Together

#: key -> (row label, path template over the resource named by {study}, {series} or {instance})
READS = {
    "get_simplified": ("GET /instances/{id}/simplified-tags", "/instances/{instance}/simplified-tags"),
    "get_study": ("GET /studies/{id}", "/studies/{study}"),
    "get_series": ("GET /series/{id}", "/series/{series}"),
    "study_series": (f"GET /studies/{{id}}/series ({corpus.LAYOUT.series_per_study} series, expanded)",
                     "/studies/{study}/series"),
    "series_instances": (f"GET /series/{{id}}/instances ({corpus.LAYOUT.instances_per_series} instances, expanded)",
                         "/series/{series}/instances"),
}


def rows() -> list[Measure]:
    """The table's rows of these measures (p50 and p95 of each)."""
    from .plan import Measure  # (defined before plan.py assembles its rows)

    return [Measure(f"{key}_{quantile}", f"{label} {quantile}", "ms", False)
            for key, (label, _) in READS.items() for quantile in ("p50", "p95")]


def _resources(server: Server, instance_ids: list[str]) -> dict[str, list[str]]:
    """The instances, and their series and studies in order of first appearance, as the server names them."""
    session = server.session()
    series: dict[str, None] = {}
    for instance in instance_ids[::corpus.LAYOUT.instances_per_series]:  # the first instance of each series
        answer = session.get(f"{server.url}/instances/{instance}", timeout=60)
        answer.raise_for_status()
        series[answer.json()["ParentSeries"]] = None
    studies: dict[str, None] = {}
    for one in series:
        answer = session.get(f"{server.url}/series/{one}", timeout=60)
        answer.raise_for_status()
        studies[answer.json()["ParentStudy"]] = None
    return {"instance": instance_ids, "series": list(series), "study": list(studies)}


def steps(plan: Plan, ids: dict[str, list[str]]) -> list[tuple[str, Together]]:
    """One step per read, for the round's list of measures (``ids``: the latency set's instance IDs by server)."""
    from .suite import latency

    found: dict[str, dict[str, list[str]]] = {}

    def requester(template: str) -> Callable[[Server, ExitStack], Callable[[], None]]:
        def make(server: Server, _: ExitStack) -> Callable[[], None]:
            if server.name not in found:
                found[server.name] = _resources(server, ids[server.name])
            kind = template.split("{")[1].split("}")[0]
            paths = [template.replace(f"{{{kind}}}", one) for one in found[server.name][kind]]
            return measures.rest_requester(server, "GET", paths)
        return make

    return [(label, latency(key, plan.requests, requester(template))) for key, (label, template) in READS.items()]
