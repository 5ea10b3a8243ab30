"""One Lua state (a lupa runtime of Lua 5.3, as Debian's Orthanc 1.10.1 links): sandbox, limits, print, one lock.

Orthanc guards each Lua state with a mutex: one script or callback at a time. Here too, and each run is bounded:

* time: a count hook (set from Lua, whose ``debug`` library is then removed from the script's reach) checks a
  deadline every few thousand instructions; past it, the hook fires on every instruction with an error, so that a
  ``pcall`` cannot swallow it for long. Coroutines get the same hook. A single C call (a pathological
  ``string.find``) is not interrupted: the hook runs between instructions.
* output: what ``print`` writes in one run is capped; past the cap, ``print`` raises a Lua error.
* memory: lupa's allocator refuses allocations past the state's limit (``not enough memory``).

Sandbox (Orthanc exposes Lua's standard libraries whole): ``os.exit`` and C modules (``package.loadlib``, the C
searchers) are gone; ``debug`` is gone (it could lift the time limit); ``os.execute``/``io.popen`` fail unless
LuaSystemCallsAllowed; opening a file for writing, ``os.remove``, ``os.rename``, ``os.tmpname``, ``io.output``
and ``io.tmpfile`` fail unless LuaFileWritesAllowed; reading standard input (which would block) fails always.
Python objects handed to Lua expose no attribute (lupa's attribute filter), and lupa's ``python`` module is removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import ScriptError
from .convert import Converter, as_text

log = logging.getLogger("pacsbox.lua")

CHUNK_NAME = "line"  # Orthanc loads every chunk under this name: errors read '[string "line"]:3: ...'
_HOOK_COUNT = 10_000  # instructions between two deadline checks


@dataclass(frozen=True)
class Limits:
    """Bounds of one run (a script or a callback) and what the sandbox lets through."""

    seconds: float = 10.0
    output_bytes: int = 1024 * 1024
    memory_bytes: int = 256 * 1024 * 1024
    system_calls: bool = False
    file_writes: bool = False


_PRELUDE = r"""
local expired, emit, system_calls, file_writes, limit_text = ...
local sethook, error, tostring, select, concat = debug.sethook, error, tostring, select, table.concat
local hook
hook = function()
  if expired() then
    sethook(hook, "", 1)
    error("the Lua script ran longer than LuaMaximumExecutionTime (" .. limit_text .. " s)", 0)
  end
end
local function arm() sethook(hook, "", HOOK_COUNT) end
local cocreate, coresume, costatus = coroutine.create, coroutine.resume, coroutine.status
coroutine.create = function(f)
  local co = cocreate(f)
  sethook(co, hook, "", HOOK_COUNT)
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local results = table.pack(coresume(co, ...))
    if not results[1] then error(results[2], 2) end
    return table.unpack(results, 2, results.n)
  end
end

print = function(...)
  local line = ""
  for i = 1, select("#", ...) do
    if i > 1 and line ~= "" then line = line .. ", " end
    line = line .. tostring((select(i, ...)))
  end
  local ok, message = emit(line)
  if not ok then error(message, 2) end
end

local function refused(name, key)
  return function() error(name .. " is refused by pacsbox" .. (key and (": set " .. key .. " to true") or ""), 2) end
end
os.exit = refused("os.exit")
if not system_calls then
  os.execute = refused("os.execute", "LuaSystemCallsAllowed")
  io.popen = refused("io.popen", "LuaSystemCallsAllowed")
end
if not file_writes then
  local open = io.open
  io.open = function(path, mode)
    if mode ~= nil and not tostring(mode):match("^r[b]?$") then
      error("io.open for writing is refused by pacsbox: set LuaFileWritesAllowed to true", 2)
    end
    return open(path, mode)
  end
  for _, name in ipairs({"remove", "rename", "tmpname"}) do
    os[name] = refused("os." .. name, "LuaFileWritesAllowed")
  end
  io.output = refused("io.output", "LuaFileWritesAllowed")
  io.tmpfile = refused("io.tmpfile", "LuaFileWritesAllowed")
end
io.read = refused("io.read (standard input)")
io.input = refused("io.input")
local lines = io.lines
io.lines = function(path, ...)
  if path == nil then error("io.lines on standard input is refused by pacsbox", 2) end
  return lines(path, ...)
end
io.stdin = nil
-- Lua 5.3 does not verify precompiled chunks: a crafted one can crash the interpreter, and the server with it.
-- Only source text is loaded (string.dump stays, harmless without a way to load what it makes).
local load_text, loadfile_text = load, loadfile
-- (the environment goes on as given or not at all: an explicit nil would become the chunk's _ENV)
load = function(chunk, name, _, ...) return load_text(chunk, name, "t", ...) end
loadfile = function(path, _, ...)
  if path == nil then error("loadfile on standard input is refused by pacsbox", 2) end
  return loadfile_text(path, "t", ...)
end
dofile = function(path)
  if path == nil then error("dofile on standard input is refused by pacsbox", 2) end
  local chunk, message = loadfile_text(path, "t")
  if not chunk then error(message, 2) end
  return chunk()
end
-- Finalizers run with debug hooks off (lgc.c, GCTM), out of reach of the time limit: a __gc that never returns
-- would hold the state for ever. A metatable is checked when it is set, the moment Lua marks an object for
-- finalization (a __gc added later is never called).
local set_metatable = setmetatable
setmetatable = function(object, metatable)
  if type(metatable) == "table" and rawget(metatable, "__gc") ~= nil then
    error("__gc metamethods are refused by pacsbox (finalizers run outside LuaMaximumExecutionTime)", 2)
  end
  return set_metatable(object, metatable)
end
package.loadlib = nil
package.cpath = ""
package.searchers[3], package.searchers[4] = nil, nil
package.loaded.debug = nil
debug = nil
python = nil
return arm
""".replace("HOOK_COUNT", str(_HOOK_COUNT))


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not reachable from Lua")


class LuaState:
    """A sandboxed Lua runtime that runs one chunk or callback at a time, within its limits."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.lock = threading.Lock()
        from lupa import lua53 as lupa  # imported with the first Lua state (LuaScripts, execute-script): cold start

        self._lupa = lupa
        self.runtime = lupa.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                       unpack_returned_tuples=True, max_memory=limits.memory_bytes,
                                       attribute_filter=_no_attributes)
        self.convert = Converter(self.runtime)
        self._deadline = float("inf")
        self._output: list[str] = []
        self._output_size = 0
        self._capture = False
        self._arm = self.runtime.execute(_PRELUDE, self._expired, self._emit, limits.system_calls,
                                         limits.file_writes, f"{limits.seconds:g}".encode())
        self._globals = self.runtime.globals()
        # a Lua closure around a Python callable: type() says "function", as for Orthanc's C functions, and a
        # failure is a Lua error at the caller's line
        self._as_lua_function = self.runtime.eval(
            "function(f) return function(...) local ok, value = f(...) if not ok then error(value, 2) end"
            " return value end end")
        self._compile = self.runtime.eval(f"function(code) return load(code, '{CHUNK_NAME}') end")
        # pcall keeps the error object whole (lupa would turn a table into text): (true, first result) or
        # (false, error object)
        self._protected = self.runtime.eval(
            "function(f, ...) local ok, result = pcall(f, ...) return ok, result end")

    # -- what Lua calls back ------------------------------------------------------------------------------
    def _expired(self) -> bool:
        return time.monotonic() > self._deadline

    def _emit(self, line: Any) -> tuple[bool, bytes | None]:
        text = as_text(line)
        self._output_size += len(text) + 1
        if self._output_size > self.limits.output_bytes:
            return False, f"the Lua script printed more than LuaMaximumOutputSize ({self.limits.output_bytes} bytes)"\
                .encode()
        log.warning("Lua says: %s", text if len(text) <= 2000 else text[:2000] + "...")
        if self._capture:
            self._output.append(text + "\n")
        return True, None

    # -- registering ----------------------------------------------------------------------------------------
    def define(self, name: str, function: Callable[..., Any]) -> None:
        """A global Lua function implemented in Python (it receives Lua values, returns Lua values)."""
        def reported(*args: Any) -> tuple[bool, Any]:
            try:
                return True, function(*args)
            except ScriptError as error:
                return False, (error.details or "").encode()
            except Exception as error:  # a helper's bug fails the script, never the server
                return False, f"{name}: {type(error).__name__}: {error}".encode()

        self._globals[name.encode()] = self._as_lua_function(reported)

    def define_lua(self, code: str) -> None:
        """Run trusted set-up code (the toolbox), outside the limits."""
        self.runtime.execute(code)

    # -- running --------------------------------------------------------------------------------------------
    def has_function(self, name: str) -> bool:
        return self._lupa.lua_type(self._globals[name.encode()]) == "function"

    def execute(self, code: str | bytes, capture: bool = False, wait: float | None = None) -> str:
        """Run a chunk; returns what it printed when ``capture``. ScriptError on any failure."""
        source = code.encode("utf-8") if isinstance(code, str) else code
        with self._locked(wait):
            self._start_run(capture)
            try:
                chunk = self._compile(source)
                if isinstance(chunk, tuple):  # load's (nil, message)
                    raise ScriptError(as_text(chunk[1]))
                self._guarded(chunk)
                return "".join(self._output)
            finally:
                self._end_run()

    def call(self, name: str, *args: Any, wait: float | None = None) -> Any:
        """Call a global function if the state defines it (None otherwise); arguments are converted from JSON-like
        Python values. Returns the first result (a Lua value)."""
        with self._locked(wait):
            if not self.has_function(name):
                return None
            self._start_run(False)
            try:
                lua_args = [self.convert.to_lua(arg) for arg in args]
                return self._guarded(self._globals[name.encode()], *lua_args)
            finally:
                self._end_run()

    def _locked(self, wait: float | None):
        state = self

        class _Held:
            def __enter__(self) -> None:
                # a holder runs at most its limit plus one REST or HTTP call (bounded by the same limit)
                timeout = wait if wait is not None else 2 * state.limits.seconds + 5
                if not state.lock.acquire(timeout=timeout):
                    raise ScriptError(f"the Lua state ({state.name}) is busy with another script")

            def __exit__(self, *exc: object) -> None:
                state.lock.release()

        return _Held()

    def _start_run(self, capture: bool) -> None:
        self._deadline = time.monotonic() + self.limits.seconds
        self._output, self._output_size, self._capture = [], 0, capture
        self._arm()

    def _end_run(self) -> None:
        self._deadline = float("inf")
        self._capture = False

    def _guarded(self, function: Any, *args: Any) -> Any:
        try:
            ok, result = self._protected(function, *args)
        except self._lupa.LuaMemoryError as error:
            raise ScriptError(_lua_message(error) or "not enough memory (LuaMaximumMemory)") from None
        except self._lupa.LuaError as error:
            raise ScriptError(_lua_message(error)) from None
        except ScriptError:
            raise
        except Exception as error:  # a Python helper failed: the script fails, the server does not
            raise ScriptError(f"{type(error).__name__}: {error}") from None
        if ok:
            return result
        if isinstance(result, ScriptError):
            raise result
        if isinstance(result, (bytes, int, float)):
            raise ScriptError(_lua_message(as_text(result)))
        if isinstance(result, BaseException):
            raise ScriptError(f"{type(result).__name__}: {result}")
        # error() with a table or with nothing: Orthanc answers its generic internal error for these
        raise ScriptError("An unhandled exception was generated inside the HTTP server", lua_message=False)

    def close(self) -> None:
        """Drop the runtime's globals (the interpreter itself goes with the last reference)."""
        with self.lock:
            self._globals = None  # type: ignore[assignment]


def _lua_message(error: Exception | str) -> str:
    """Lua's message without lupa's traceback (Orthanc's Details show the first line: ``[string "line"]:1: boom``)."""
    text = str(error)
    for prefix in ("error loading code: ",):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.split("\nstack traceback:", 1)[0]
