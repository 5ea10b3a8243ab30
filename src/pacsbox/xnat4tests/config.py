"""xnat4tests' ``Config``: the same field names, defaults, YAML files and ``Config.load`` rules (xnat4tests 0.4.1).

Only ``xnat_root_dir``, ``xnat_mnt_dirs``, ``docker_container`` (the pacsbox instance name), ``docker_host`` and
``xnat_port`` (``xnat_uri``), ``connection_attempts`` x ``connection_attempt_sleep`` (the start-up timeout) act.
The Docker-only fields — ``docker_build_dir``, ``docker_image``, ``docker_registry_image``,
``docker_registry_container``, ``docker_network_name``, ``registry_port`` and ``build_args`` — are accepted, kept
and ignored: there is no image to build, no container, no network and no registry.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

#: What xnat4tests mounts from ``xnat_root_dir`` into its container; pacsbox creates the same folders there.
DEFAULT_MNT_DIRS = ("home/logs", "home/work", "build", "archive", "prearchive")


def xnat4tests_home() -> Path:
    """``$XNAT4TESTS_HOME``; else ``$PACSBOX_HOME/xnat4tests`` when ``PACSBOX_HOME`` is set (so a scratch pacsbox
    home keeps everything in one place); else ``~/.xnat4tests``, as xnat4tests (read at each call, where
    xnat4tests reads it at import)."""
    if os.environ.get("XNAT4TESTS_HOME"):
        return Path(os.environ["XNAT4TESTS_HOME"])
    if os.environ.get("PACSBOX_HOME"):
        return Path(os.environ["PACSBOX_HOME"]) / "xnat4tests"
    return Path.home() / ".xnat4tests"


def default_xnat_root() -> Path:
    return xnat4tests_home() / "xnat_root" / "default"


def default_build_dir() -> Path:
    return xnat4tests_home() / "build"


@dataclass
class BuildArgs:
    """The Docker build arguments of xnat4tests' image (accepted and ignored)."""

    xnat_version: str = "1.9.3"
    xnat_cs_plugin_version: str = "3.7.3"
    xnat_batch_launch_plugin_version: str = "0.9.0-xpl"
    java_ms: str = "256m"
    java_mx: str = "2g"


def _build_args(value: BuildArgs | Mapping[str, Any] | None) -> BuildArgs:
    if isinstance(value, BuildArgs):
        return value
    return BuildArgs(**dict(value or {}))  # unknown keys raise TypeError, as xnat4tests' attrs class does


def _port(value: str | int) -> str:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"a port must be a number from 1 to 65535, not {value!r}")
    return text


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


# Applied on construction and on every assignment, as attrs' converters are (attrs.define converts on setattr).
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "xnat_root_dir": Path,
    "docker_build_dir": Path,
    "xnat_port": _port,
    "registry_port": _port,
    "xnat_mnt_dirs": list,
    "build_args": _build_args,
    "loaded_from": _optional_path,
}


@dataclass
class Config:
    """How to launch and reach the test server, under xnat4tests' field names (see the module docstring for
    which fields act). ``xnat_port`` accepts an int or a str and is kept as a str, like the YAML's value."""

    xnat_root_dir: Path = field(default_factory=default_xnat_root)
    xnat_mnt_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_MNT_DIRS))
    docker_build_dir: Path = field(default_factory=default_build_dir)
    docker_image: str = "xnat4tests"
    docker_container: str = "xnat4tests"
    docker_host: str = "localhost"
    xnat_port: str = "8080"
    docker_registry_image: str = "registry"
    docker_registry_container: str = "xnat4tests-docker-registry"
    docker_network_name: str = "xnat4tests"
    registry_port: str = "80"
    connection_attempts: int = 20
    connection_attempt_sleep: int = 5
    build_args: BuildArgs = field(default_factory=BuildArgs)
    loaded_from: Path | None = None

    # fixed, as in xnat4tests (the server is started with exactly this user)
    xnat_user: ClassVar[str] = "admin"
    xnat_password: ClassVar[str] = "admin"

    def __setattr__(self, name: str, value: Any) -> None:
        convert = _CONVERTERS.get(name)
        super().__setattr__(name, convert(value) if convert else value)

    def __post_init__(self) -> None:
        # xnat4tests' validator: a non-default root must be creatable in an existing folder
        if self.xnat_root_dir != default_xnat_root() and not self.xnat_root_dir.parent.exists():
            raise ValueError(f"Parent of XNAT root directory {self.xnat_root_dir.parent} does not exist")

    @property
    def xnat_uri(self) -> str:
        return f"http://{self.docker_host}:{self.xnat_port}"

    @property
    def registry_uri(self) -> str:
        return self.docker_host

    @classmethod
    def load(cls, name: str | os.PathLike[str] | Config | Mapping[str, Any] = "default") -> Config:
        """The configuration ``name`` names, by xnat4tests' rules.

        A ``Config`` passes through (a mapping of fields is accepted too); a ``Path``, or a string holding ``/`` or
        ``\\``, is a YAML file that must exist; any other string is ``$XNAT4TESTS_HOME/configs/<name>.yaml``.
        A missing ``default`` file is written with every field commented out; another missing name raises
        ``KeyError``. The file's values override the defaults; ``loaded_from`` records the file.
        """
        if isinstance(name, Config):
            return name
        if isinstance(name, Mapping):
            return cls(**name)
        if isinstance(name, os.PathLike) or "/" in name or "\\" in name:
            path = Path(name)
            if not path.exists():
                raise FileNotFoundError(f"Did not find configuration file at explicit path '{path}'")
        else:
            path = xnat4tests_home() / "configs" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            if name != "default":
                raise KeyError(f"Could not find configuration file at {path}")
            write_commented_default(path)
        values = read_yaml(path)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"Unknown field(s) {', '.join(unknown)} in the configuration file {path}; the fields "
                            f"are {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**{**values, "loaded_from": path})


def write_commented_default(path: Path) -> None:
    """Every field at its default, commented out, as a starting point to edit (as xnat4tests writes it)."""
    yaml = _yaml()
    defaults = {key: (str(value) if isinstance(value, Path) else value)
                for key, value in dataclasses.asdict(Config()).items() if key != "loaded_from"}
    lines = yaml.safe_dump(defaults, sort_keys=False).splitlines()
    path.write_text("".join(f"#{line}\n" for line in lines))


def read_yaml(path: Path) -> dict[str, Any]:
    """A configuration file's mapping ({} for an empty or all-comment file)."""
    yaml = _yaml()

    class Loader(yaml.SafeLoader):
        """Safe loading, plus the ``!!python/object/apply:pathlib.PosixPath`` tags of the default file the real
        xnat4tests writes (it dumps Path objects), so an uncommented copy of that file loads too."""

    def path_of(loader: Any, _suffix: str, node: Any) -> Path:
        return Path(*loader.construct_sequence(node))

    Loader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:pathlib.", path_of)
    with open(path) as handle:
        values = yaml.load(handle, Loader=Loader)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"The configuration file {path} must hold a mapping of fields, not {type(values).__name__}")
    return values


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError("Config.load reads YAML files with PyYAML: pip install pyyaml") from None
    return yaml
