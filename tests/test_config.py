"""The organisation config: valid files load, mistakes name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chairside.config import ConfigError, load_organisation, secret
from chairside.paths import REPO_ROOT

DEMO = REPO_ROOT / "config" / "demo_org.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def demo_data() -> dict:
    return yaml.safe_load(DEMO.read_text())


def test_demo_config_loads_with_defaults_expanded(monkeypatch):
    monkeypatch.delenv("CHAIRSIDE_OPENDENTAL_BASE_URL", raising=False)
    monkeypatch.setenv("CHAIRSIDE_OD_RPS", "7.5")
    org = load_organisation(DEMO)
    riverside = org.connection("od_riverside")
    assert riverside.base_url == "http://127.0.0.1:8765/api/v1"
    assert riverside.requests_per_second == 7.5
    assert riverside.page_size == 100
    assert {"riverside_family", "riverside_kids", "lakeside"} <= {loc.id for loc in org.locations}


def test_every_mistake_is_reported_with_its_field(tmp_path):
    data = demo_data()
    data["connections"][0]["timezone"] = "Mars/Olympus"
    data["connections"][0]["page_sise"] = 50
    data["connections"][1]["customer_key_env"] = "sk_live_51Hsecret"
    data["connections"][1]["page_size"] = 5000
    with pytest.raises(ConfigError) as error:
        load_organisation(write(tmp_path, data))
    message = str(error.value)
    assert "connections[0].timezone: unknown time zone 'Mars/Olympus'" in message
    assert "connections[0].page_sise: unknown field" in message
    assert "connections[1].customer_key_env: must be the NAME of an environment variable" in message
    assert "connections[1].page_size: Input should be less than or equal to 1000" in message
    assert "sk_live_51Hsecret" not in message  # a pasted secret is never echoed


def test_references_and_duplicates_are_checked(tmp_path):
    data = demo_data()
    phones = next(c for c in data["connections"] if c["vendor"] == "twilio")
    phones["numbers"]["+12015550199"] = "attic"
    data["locations"][0]["connection"] = "od_nowhere"
    data["connections"][1]["id"] = "od_riverside"
    with pytest.raises(ConfigError) as error:
        load_organisation(write(tmp_path, data))
    message = str(error.value)
    assert "connections: duplicate id(s) ['od_riverside']" in message
    assert "locations[0].connection: 'od_nowhere' is not a connection id" in message
    assert "numbers['+12015550199']: 'attic' is not a location id" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("id: [unclosed", "not valid YAML"),
        ("id: x\nname: y\nconnections:\n  - base_url: ${NOT_SET_ANYWHERE}\n",
         "${NOT_SET_ANYWHERE} is used but the variable is not set"),
        ("id: x\nname: y\nconnections: []\n", "connections: List should have at least 1 item"),
    ],
)  # fmt: skip
def test_unusable_files_say_why(tmp_path, content, expected):
    path = tmp_path / "org.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected.replace("$", r"\$").replace("[", r"\[")):
        load_organisation(path)


def test_missing_file_and_missing_secret(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="config file not found"):
        load_organisation(tmp_path / "nope.yaml")
    monkeypatch.delenv("OD_DEVELOPER_KEY", raising=False)
    with pytest.raises(ConfigError, match="OD_DEVELOPER_KEY is not set"):
        secret("OD_DEVELOPER_KEY", purpose="od_riverside developer key")
