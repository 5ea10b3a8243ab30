"""Orthanc's Lua scripting, run by a real Lua 5.3 (lupa): LuaScripts, /tools/execute-script and the callbacks."""
