"""Config: xnat4tests' fields, defaults, conversions and Config.load's rules for names, paths and YAML files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pacsbox.xnat4tests import BuildArgs, Config


def test_defaults_follow_xnat4tests(homes):
    config = Config()
    home = homes / "xnat4tests-home"
    assert config.xnat_root_dir == home / "xnat_root" / "default"
    assert config.docker_build_dir == home / "build"
    assert config.xnat_mnt_dirs == ["home/logs", "home/work", "build", "archive", "prearchive"]
    assert (config.docker_container, config.docker_host, config.xnat_port) == ("xnat4tests", "localhost", "8080")
    assert (config.connection_attempts, config.connection_attempt_sleep, config.registry_port) == (20, 5, "80")
    assert config.build_args == BuildArgs()
    assert (Config.xnat_user, Config.xnat_password) == ("admin", "admin")
    assert config.xnat_uri == "http://localhost:8080"
    assert config.loaded_from is None


def test_conversions_on_construction_and_assignment(homes):
    config = Config(xnat_root_dir=str(homes), xnat_port=9999, build_args={"xnat_version": "1.8.5"})
    assert config.xnat_root_dir == homes and isinstance(config.xnat_root_dir, Path)
    assert config.xnat_port == "9999" and config.xnat_uri == "http://localhost:9999"
    assert config.build_args.xnat_version == "1.8.5" and config.build_args.java_mx == "2g"
    config.xnat_root_dir = str(homes / "other")
    config.xnat_port = 8081
    assert config.xnat_root_dir == homes / "other" and config.xnat_port == "8081"
    with pytest.raises(TypeError):
        Config(build_args={"no_such_arg": "1"})
    with pytest.raises(ValueError, match="port must be a number"):
        Config(xnat_port="http")
    with pytest.raises(ValueError, match="Parent of XNAT root directory"):
        Config(xnat_root_dir=homes / "missing" / "root")


def test_load_passes_a_config_through_and_accepts_a_mapping(homes):
    config = Config(xnat_port=1234)
    assert Config.load(config) is config
    assert Config.load({"xnat_port": 4321}).xnat_port == "4321"


def test_default_file_is_written_commented_out(homes):
    config = Config.load("default")
    written = homes / "xnat4tests-home" / "configs" / "default.yaml"
    assert config.loaded_from == written
    lines = written.read_text().splitlines()
    assert lines and all(line.startswith("#") for line in lines)
    assert "#xnat_port: '8080'" in lines and "#docker_container: xnat4tests" in lines
    assert config == Config(loaded_from=written)


def test_yaml_values_override_and_docker_fields_are_kept(homes):
    configs = homes / "xnat4tests-home" / "configs"
    configs.mkdir(parents=True)
    root = homes / "root"
    (configs / "mine.yaml").write_text(
        f"xnat_root_dir: {root}\nxnat_port: 8999\ndocker_container: mine\ndocker_image: ignored_image\n"
        "docker_network_name: ignored_net\nbuild_args:\n  xnat_version: 1.8.5\n  xnat_cs_plugin_version: 3.2.0\n")
    config = Config.load("mine")
    assert (config.xnat_root_dir, config.xnat_port, config.docker_container) == (root, "8999", "mine")
    assert (config.docker_image, config.docker_network_name) == ("ignored_image", "ignored_net")
    assert config.build_args.xnat_cs_plugin_version == "3.2.0"
    assert config.loaded_from == configs / "mine.yaml"
    # a path (or a string holding a separator) is a file anywhere
    assert Config.load(configs / "mine.yaml") == config
    assert Config.load(str(configs / "mine.yaml")) == config


def test_the_real_xnat4tests_default_file_uncommented_loads(homes):
    # what xnat4tests' yaml.dump of Path fields looks like
    path = homes / "real.yaml"
    path.write_text("xnat_root_dir: !!python/object/apply:pathlib.PosixPath\n- /\n- tmp\n- xroot\nxnat_port: '8080'\n"
                    "loaded_from: null\n")
    assert Config.load(path).xnat_root_dir == Path("/tmp/xroot")


def test_load_errors(homes):
    with pytest.raises(KeyError, match=r"Could not find configuration file at .*configs/nosuch\.yaml"):
        Config.load("nosuch")
    with pytest.raises(FileNotFoundError, match="Did not find configuration file at explicit path"):
        Config.load(str(homes / "nosuch.yaml"))
    bad = homes / "bad.yaml"
    bad.write_text("xnat_prot: 8080\n")
    with pytest.raises(TypeError, match=r"Unknown field\(s\) xnat_prot in the configuration file"):
        Config.load(bad)


def test_missing_pyyaml_says_how_to_install_it(homes, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError, match="pip install pyyaml"):
        Config.load("default")
