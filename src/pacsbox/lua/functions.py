"""The functions Orthanc 1.10.1 gives Lua scripts, defined on one Lua state.

REST: ``RestApiGet(uri, builtin, headers)``, ``RestApiPost/Put(uri, body, builtin, headers)``,
``RestApiDelete(uri, builtin, headers)`` answer the body (true for a delete), nil on an error status.
HTTP: ``HttpGet(url, headers)``, ``HttpPost/Put(url, body, headers)`` answer the body ("" on an error status, nil
when nothing answered), ``HttpDelete(url, headers)`` answers "SUCCESS" or nil, with
``SetHttpCredentials(user, password)`` and ``SetHttpTimeout(seconds)`` (the latter is pacsbox's: Orthanc 1.10.1 has
none). JSON: ``ParseJson``, ``DumpJson(value, keepStrings)``, ``PrintRecursive``. ``GetOrthancConfiguration()``.
Jobs of a callback (``Delete``, ``SendToModality``, ``SendToPeer``) run once the callback returns, as Orthanc runs
them as a job; outside a callback they fail, as in Orthanc. ``CallSystem(command, args)`` runs a program only
when LuaSystemCallsAllowed is true.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.config import Config
from ..core.errors import ScriptError
from .bridge import HttpClient, RestApi
from .convert import as_text
from .state import LuaState

if TYPE_CHECKING:
    from .engine import PendingJobs

log = logging.getLogger("pacsbox.lua")

_PRINT_RECURSIVE = r"""
function PrintRecursive(s, l, i)
  l = l or 100
  i = i or ""
  if l < 1 then print("ERROR: Item limit reached.") return l - 1 end
  local ts = type(s)
  if ts ~= "table" then print(i, ts, s) return l - 1 end
  print(i, ts)
  for k, v in pairs(s) do
    l = PrintRecursive(v, l, i .. "\t[" .. tostring(k) .. "]")
    if l < 0 then break end
  end
  return l
end
"""


def configuration_json(config: Config) -> dict[str, Any]:
    """The server's configuration as GetOrthancConfiguration gives it (every option, under Orthanc's names)."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, Mapping):
            value = json.loads(json.dumps(dict(value), default=list))
        elif isinstance(value, tuple):
            value = list(value)
        values[item.name] = value
    return values


def define_functions(state: LuaState, config: Config, rest: RestApi, jobs: PendingJobs) -> None:
    """Define Orthanc's Lua functions on ``state``."""
    convert = state.convert
    http = HttpClient()

    def headers_of(table: Any) -> dict[str, str]:
        if table is None:
            return {}
        value = convert.to_python(table, keep_strings=True)
        if not isinstance(value, dict):
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def text_body(body: Any) -> bytes:
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        return convert.to_python(body, keep_strings=True).__str__().encode()

    def rest_call(method: str, uri: Any, body: bytes, headers: Any) -> Any:
        if not isinstance(uri, bytes):
            raise ScriptError(f"RestApi{method.title()}: the URI must be a string")
        answer = rest.call(method, as_text(uri), body, headers_of(headers))
        if not answer.ok:
            log.info("Lua RestApi%s %s: HTTP status %d", method.title(), as_text(uri), answer.status)
            return None
        return True if method == "DELETE" else answer.body

    state.define("RestApiGet", lambda uri, builtin=None, headers=None: rest_call("GET", uri, b"", headers))
    state.define("RestApiPost", lambda uri, body=None, builtin=None, headers=None:
                 rest_call("POST", uri, text_body(body), headers))
    state.define("RestApiPut", lambda uri, body=None, builtin=None, headers=None:
                 rest_call("PUT", uri, text_body(body), headers))
    state.define("RestApiDelete", lambda uri, builtin=None, headers=None: rest_call("DELETE", uri, b"", headers))

    def http_call(method: str, url: Any, body: bytes | None, headers: Any) -> Any:
        if not isinstance(url, bytes):
            raise ScriptError(f"Http{method.title()}: the URL must be a string")
        answer = http.request(method, as_text(url), body, headers_of(headers))
        if not answer.ok:
            log.info("Lua Http%s %s: status %d", method.title(), as_text(url), answer.status)
        # as Orthanc 1.10.1 (measured): nil when nothing answered; an error status gives an empty body (DELETE:
        # nil); a DELETE that succeeded gives "SUCCESS"
        if method == "DELETE":
            return b"SUCCESS" if answer.ok else None
        if answer.status == 0:
            return None
        return answer.body if answer.ok else b""

    state.define("HttpGet", lambda url, headers=None: http_call("GET", url, None, headers))
    state.define("HttpPost", lambda url, body=None, headers=None: http_call("POST", url, text_body(body), headers))
    state.define("HttpPut", lambda url, body=None, headers=None: http_call("PUT", url, text_body(body), headers))
    state.define("HttpDelete", lambda url, headers=None: http_call("DELETE", url, None, headers))

    def set_credentials(user: Any, password: Any) -> None:
        http.credentials = (as_text(user), as_text(password))

    def set_timeout(seconds: Any) -> None:
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ScriptError("SetHttpTimeout: the timeout must be a number of seconds")
        http.timeout = min(float(seconds), state.limits.seconds) or state.limits.seconds

    state.define("SetHttpCredentials", set_credentials)
    state.define("SetHttpTimeout", set_timeout)

    state.define("ParseJson", convert.parse_json)
    state.define("DumpJson", convert.dump_json)
    state.define_lua(_PRINT_RECURSIVE)
    state.define("GetOrthancConfiguration", lambda: convert.to_lua(configuration_json(config)))

    def call_system(command: Any, arguments: Any = None) -> Any:
        if not config.LuaSystemCallsAllowed:
            raise ScriptError("CallSystem is refused by pacsbox: set LuaSystemCallsAllowed to true")
        argv = [as_text(command)] + [str(a) for a in (convert.to_python(arguments, keep_strings=True) or [])]
        try:
            completed = subprocess.run(argv, timeout=state.limits.seconds, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ScriptError(f"CallSystem: {error}") from None
        return completed.returncode

    state.define("CallSystem", call_system)

    def job(name: str, operation: dict[str, Any]) -> None:
        if not jobs.active():
            raise ScriptError(f"{name} can only be called from a Lua callback (Orthanc runs it as the callback's "
                              "job)")
        jobs.add(operation)

    def delete(resource: Any) -> Any:
        if resource is None:
            raise ScriptError("Cannot delete a nonexistent resource")
        job("Delete", {"operation": "delete", "resource": as_text(resource)})
        return resource

    def send_to_modality(resource: Any, modality: Any, local_aet: Any = None, timeout: Any = None) -> Any:
        if resource is None:
            raise ScriptError("Cannot send a nonexistent resource")
        job("SendToModality", {"operation": "store", "resource": as_text(resource), "modality": as_text(modality),
                               "local_aet": as_text(local_aet) if local_aet is not None else None})
        return resource

    def send_to_peer(resource: Any, peer: Any) -> Any:
        if resource is None:
            raise ScriptError("Cannot send a nonexistent resource")
        job("SendToPeer", {"operation": "store-peer", "resource": as_text(resource), "peer": as_text(peer)})
        return resource

    state.define("Delete", delete)
    state.define("SendToModality", send_to_modality)
    state.define("SendToPeer", send_to_peer)
