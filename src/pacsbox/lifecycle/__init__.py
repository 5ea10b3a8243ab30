"""Start, reuse, share, reset and stop throwaway servers: pacsbox itself, the installed real Orthanc, or any
long-running command (engine ``command``).

Each named instance has a state folder under ``$PACSBOX_HOME/instances/<name>`` (config, PID, ports, a
configuration fingerprint, a size-capped log and the data). ``ensure`` returns a live matching server in
milliseconds or starts one detached; a file lock makes concurrent callers share it.
"""

from .command import PatternNotFound, Ready, StartupTimeout, ensure_command
from .home import DEFAULT_NAME, InstancePaths, pacsbox_home
from .instance import Instance, InstanceError, InstanceNotRunning, StartupFailed
from .manager import ensure, get_instance, list_instances, restart, stop
from .topology import link

__all__ = [
    "DEFAULT_NAME",
    "Instance",
    "InstanceError",
    "InstanceNotRunning",
    "InstancePaths",
    "PatternNotFound",
    "Ready",
    "StartupFailed",
    "StartupTimeout",
    "ensure",
    "ensure_command",
    "get_instance",
    "link",
    "list_instances",
    "pacsbox_home",
    "restart",
    "stop",
]
