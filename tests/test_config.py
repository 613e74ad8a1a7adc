"""Typed configs: YAML + overrides validate into dataclasses; every error names its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geodl_hpc.config import (
    JobConfig,
    apply_overrides,
    dump_config,
    load_job_config,
    parse_override,
    to_dict,
)
from geodl_hpc.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_demo_config_loads_with_documented_values() -> None:
    config = load_job_config(REPO / "configs" / "demo.yaml")
    assert config.job == "ingest_murchison"
    assert config.storage.chunk == 256
    assert config.storage.codec == "zstd"
    assert config.murchison.resolution == 500.0


def test_overrides_are_yaml_typed_and_nested() -> None:
    config = load_job_config(REPO / "configs" / "demo.yaml", ["storage.chunk=128", "murchison.resolution=1000"])
    assert config.storage.chunk == 128
    assert config.murchison.resolution == 1000.0  # int in YAML, float in the config
    assert parse_override("output=runs/x y") == (["output"], "runs/x y")


def test_defaults_without_a_file() -> None:
    assert load_job_config(None) == JobConfig()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["storage.chunk=big"], "storage.chunk: expected an integer, got 'big'"),
        (["storage.chunks=3"], "storage.chunks: unknown key; known keys here: chunk, codec, level"),
        (["storage.codec=lzma"], "storage.codec: 'lzma' is not one of"),
        (["storage=3"], "storage: expected a mapping of options"),
        (["overwrite=maybe"], "overwrite: expected true or false"),
        (["storage.chunk=0"], "storage.chunk: must be positive"),
        (["murchison.resolution=-5"], "murchison.resolution: must be positive"),
        (["nokey"], "nokey: an override must look like key.sub=value"),
        (["output.sub=1"], "output: is a value, not a section"),
    ],
)
def test_bad_values_name_the_key_path(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load_job_config(REPO / "configs" / "demo.yaml", overrides)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("job: ingest_murchison\nstorage: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+, column \d+") as info:
        load_job_config(bad)
    assert "\n" not in str(info.value)


def test_missing_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_job_config(tmp_path / "nope.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of options at the top level, got list"):
        load_job_config(listing)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_job_config(REPO / "configs" / "demo.yaml", ["storage.level=5"])
    dump_config(config, tmp_path / "resolved.yaml")
    again = load_job_config(tmp_path / "resolved.yaml")
    assert again == config
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text()) == to_dict(config)


def test_apply_overrides_does_not_mutate_input() -> None:
    data = {"storage": {"chunk": 1}}
    result = apply_overrides(data, ["storage.chunk=2"])
    assert data == {"storage": {"chunk": 1}}
    assert result == {"storage": {"chunk": 2}}
