"""Settings: every variable documented where users look, bad values refused in one line, the token kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).parents[2]
ENV_EXAMPLE = ROOT / ".env.example"


def test_every_setting_is_in_env_example_and_the_configuration_doc_with_its_default() -> None:
    names = {name.upper() for name in Settings.model_fields}
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")} == names
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert [name for name in sorted(names) if f"`{name}`" not in configuration] == []
    assert load_settings(_env_file=ENV_EXAMPLE) == load_settings(_env_file=None), "the example shows the defaults"


def test_lists_and_booleans_parse_from_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USER_IDS", "123, 456,")
    monkeypatch.setenv("ALLOW_DMS", "false")
    settings = load_settings(_env_file=None)
    assert settings.admin_user_ids == [123, 456] and settings.allow_dms is False


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOLDOWN_SECONDS", "-1")
    monkeypatch.setenv("ADMIN_ROLE_IDS", "admins")
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert "\n" not in message and "COOLDOWN_SECONDS" in message and "ADMIN_ROLE_IDS" in message


def test_the_discord_api_url_must_be_an_http_url() -> None:
    assert load_settings(_env_file=None).discord_api_url == "https://discord.com/api/v10"
    proxy = load_settings(discord_api_url="http://127.0.0.1:8080/api/v10/", _env_file=None)
    assert proxy.discord_api_url == "http://127.0.0.1:8080/api/v10", "discord.py appends paths to it"
    for bad in (
        "discord.com/api/v10",
        "ws://127.0.0.1/api/v10",
        "https:///api",
        "http://proxy:x/api",
        "https://d/?v=10",
    ):
        with pytest.raises(SettingsError, match=r"DISCORD_API_URL: .*http\(s\) URL: .*https://discord.com/api/v10"):
            load_settings(discord_api_url=bad, _env_file=None)


def test_the_discord_api_url_is_https_unless_it_is_this_machine() -> None:
    for local in ("http://127.0.0.1:8080/api", "http://127.8.9.10/api", "http://[::1]:81/api", "http://LocalHost/api"):
        assert load_settings(discord_api_url=local, _env_file=None).discord_api_url == local
    for clear in ("http://proxy.internal/api/v10", "http://10.0.0.5:8080/api", "http://localhost.evil.example/api"):
        with pytest.raises(SettingsError, match=r"DISCORD_API_URL: must be https:// unless .* travel in clear"):
            load_settings(discord_api_url=clear, _env_file=None)


def test_credentials_in_the_discord_api_url_are_refused_without_being_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("https://bot:hunter2@proxy.internal/api/v10", "http://bot:hunter2@127.0.0.1:8080/api"):
        monkeypatch.setenv("DISCORD_API_URL", url)
        with pytest.raises(SettingsError, match=r"DISCORD_API_URL: must not contain user:password@") as error:
            load_settings(_env_file=None)
        assert "hunter2" not in str(error.value) and "hunter2" not in repr(error.value)


def test_the_token_never_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = "MTIz.secret-part.of-the-token"
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={token}\n", encoding="utf-8")
    settings = load_settings(_env_file=tmp_path / ".env")
    assert settings.discord_token is not None and settings.discord_token.get_secret_value() == token
    assert token not in repr(settings) and token not in str(settings.model_dump())
