"""The Orthanc face's hot reads, and small uploads, answered on the event loop without an ASGI cycle
(``http_protocol``'s lean path).

Only a few routes, and only when their own handler finishes without waiting for anything: the handler is the
route's usual one, run to its end at once; if it would wait (a worker thread for a large child list or a file to
parse), or fails, or answers anything but a small 200, its answer is dropped and the request goes the normal way,
where the handler runs again (these handlers only read, and what they keep, in the tag cache, is the same either
way).

Their answers are kept whole (``faces.answer_cache.GenerationAnswers``, by path, query and DefaultEncoding, the only
other thing they depend on) while nothing is committed to the index: a test suite reading the same study or series
again and again between two uploads pays for routing and rendering once. Credentials, the Lua filter, fault rules,
the event log and the metrics are all checked or counted by the layers around this one, kept answer or not.

A small upload (``quick_upload``) goes the same way once its body is in: the handler of ``POST /instances`` stores
a file that is quick to store on the loop anyway (``Archive.store_at_once``); skipping the ASGI cycle and the
layers' wrappers takes about a sixth off the server's CPU time of a ~2 KB upload (measured with
``benchmarks/rest_ingest.py``-like loads, A/B).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from ..answer_cache import GenerationAnswers
from ..http_common import LEAN_BODY

if TYPE_CHECKING:
    from ...http_protocol import QuickAnswer

# the route table's names of the hot routes' handlers (route_table.py)
HOT_HANDLERS = frozenset({"resources:get_resource", "resources:related", "tag_answers:tags",
                          "tag_answers:simplified_tags"})
UPLOAD_HANDLERS = frozenset({"instances:upload"})  # POST /instances
LARGEST_BODY = 64 * 1024  # bytes of an answer given this way; a larger one goes the normal way
_PLAIN_HEADERS = frozenset({b"content-length", b"content-type"})
KEPT_BYTES = 16 * 1024 * 1024  # bodies of whole answers kept (answers of at most LARGEST_BODY bytes each)


def quick_answer(app: Starlette, scope: Scope) -> QuickAnswer | None:
    """``(status, headers, body)`` of a GET on a hot route, or of a small upload (``quick_upload``), as the
    route's handler answers it, or None."""
    if scope["method"] != "GET":
        return quick_upload(app, scope) if scope["method"] == "POST" else None
    state = app.state
    try:
        kept = state.read_answers
    except AttributeError:
        kept = state.read_answers = GenerationAnswers(KEPT_BYTES)
    archive = state.archive
    key = (scope["path"], scope["query_string"], archive.settings.default_encoding)
    generation = archive.generation()  # before anything is read (see Index.generation)
    answer = kept.get(key, generation, archive.stable_marks_since)
    if answer is not None:
        return answer
    found = _handler(app, scope, HOT_HANDLERS)
    if found is None:
        return None
    handler, bound = found
    response = _finished(handler(Request(scope), **bound))
    if response is None or response.status_code != 200 or response.background is not None \
            or len(response.body) > LARGEST_BODY \
            or any(name not in _PLAIN_HEADERS for name, _ in response.raw_headers):
        return None
    answer = 200, response.raw_headers, bytes(response.body)
    kept.put(key, generation, answer, answer[2])
    return answer


def quick_upload(app: Starlette, scope: Scope) -> QuickAnswer | None:
    """``POST /instances`` with a small body received whole (``LEAN_BODY``), answered by the route's own handler
    when it finishes at once: a file it stores on the event loop (``Archive.store_at_once``). When it would wait
    (a zip, a gzip-encoded body, a file to store in a worker thread) or fails, it has stored nothing, and the
    request goes the normal way, where the handler runs again. Once it has finished, its answer is the answer,
    whatever it is: the upload happened."""
    body = scope.get(LEAN_BODY)
    if body is None:
        return None
    found = _handler(app, scope, UPLOAD_HANDLERS)
    if found is None:
        return None
    handler, bound = found

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    response = _finished(handler(Request(scope, receive), **bound))
    if response is None:
        return None
    return response.status_code, response.raw_headers, bytes(response.body)


def _handler(app: Starlette, scope: Scope, handlers: frozenset[str]) -> tuple[Callable[..., Any], dict] | None:
    """The handler of the request's route and its bound arguments, if it is one of ``handlers`` (the route table's
    names); the scope then has what routing adds to it."""
    found = app.router.full_match(scope)  # type: ignore[attr-defined]  # (the face's IndexedRouter)
    if found is None:
        return None
    route, child_scope = found
    guarded = getattr(route.endpoint, "endpoints", {}).get(scope["method"])  # type: ignore[attr-defined]
    if getattr(guarded, "target", None) not in handlers:
        return None
    scope["app"] = app
    scope.setdefault("router", app.router)
    scope["route"] = route
    scope.update(child_scope)
    return guarded.resolve(), guarded.bound  # type: ignore[union-attr]


def _finished(coroutine: Coroutine[Any, Any, Response]) -> Response | None:
    """The coroutine's result if it finishes without suspending, else None (closed where it stopped: nothing it
    would have waited for has started, a worker thread's call included, since the thread pool's call first
    yields to the loop, or, outside a task, fails to find its event loop library)."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    except Exception:  # the normal path meets the same error and answers it in Orthanc's format
        return None
    coroutine.close()
    return None
