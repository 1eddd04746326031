"""Settings.from_env: TMN_* variables, their parsing, their rejection, and the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == ""
    assert settings.db_pool_size == 10
    assert settings.debug is False
    assert settings.cors_origins == ()
    assert settings.log_level == "INFO"


def test_variables_are_parsed_from_strings() -> None:
    settings = Settings.from_env(
        {
            "TMN_DB_POOL_SIZE": "5",
            "TMN_DEBUG": "true",
            "TMN_DB_ECHO": "false",
            "TMN_CORS_ORIGINS": "a,b",
            "TMN_LOG_LEVEL": "DEBUG",
            "TMN_IDEMPOTENCY_TTL_HOURS": "48",
            "TMN_PUBLIC_BASE_URL": "https://tmn.example",
            "TMN_DATABASE_URL": "postgresql+asyncpg://tmn@db/tmn",
        }
    )
    assert settings.db_pool_size == 5
    assert settings.debug is True
    assert settings.db_echo is False
    assert settings.cors_origins == ("a", "b")
    assert isinstance(settings.cors_origins, tuple)
    assert settings.log_level == "DEBUG"
    assert settings.idempotency_ttl_hours == 48
    assert settings.public_base_url == "https://tmn.example"
    assert settings.database_url == "postgresql+asyncpg://tmn@db/tmn"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a,b", ("a", "b")),
        (" https://a.example , https://b.example ", ("https://a.example", "https://b.example")),
        ("a,,b,", ("a", "b")),
        ("only", ("only",)),
        ("", ()),
    ],
)
def test_cors_origins_are_comma_separated(raw: str, expected: tuple[str, ...]) -> None:
    assert Settings.from_env({"TMN_CORS_ORIGINS": raw}).cors_origins == expected


def test_only_tmn_variables_are_read() -> None:
    settings = Settings.from_env({"DB_POOL_SIZE": "3", "DEBUG": "true", "tmn_debug": "true", "TMN_NOPE": "x"})
    assert settings == Settings()


def test_overrides_win_and_none_is_ignored() -> None:
    settings = Settings.from_env({"TMN_DB_POOL_SIZE": "5", "TMN_DEBUG": "true"}, db_pool_size=3, debug=None)
    assert settings.db_pool_size == 3
    assert settings.debug is True


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TMN_LOG_LEVEL", "LOUD"),
        ("TMN_DB_POOL_SIZE", "many"),
        ("TMN_DB_POOL_SIZE", "2.5"),
        ("TMN_DEBUG", "maybe"),
        ("TMN_IDEMPOTENCY_TTL_HOURS", ""),
    ],
)
def test_bad_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({key: value})
    assert isinstance(caught.value, ValueError)
    assert "TMN_" in str(caught.value)


def test_embedded_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"TMN_DATA_DIR": str(tmp_path)})
    assert settings.database_url == ""
    assert settings.is_embedded
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'tmn.sqlite3'}"


def test_empty_database_url_means_the_embedded_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"TMN_DATABASE_URL": "", "TMN_DATA_DIR": str(tmp_path)})
    assert settings.is_embedded
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith(str(tmp_path.resolve() / "tmn.sqlite3"))


def test_relative_data_dir_is_made_absolute() -> None:
    url = Settings.from_env({"TMN_DATA_DIR": "var"}).effective_database_url
    path = Path(url.removeprefix("sqlite+aiosqlite:///"))
    assert path.is_absolute()
    assert path == Path("var").resolve() / "tmn.sqlite3"


def test_a_given_database_url_is_used_as_is(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://tmn:secret@db:5432/tmn"
    settings = Settings.from_env({"TMN_DATABASE_URL": url, "TMN_DATA_DIR": str(tmp_path)})
    assert settings.effective_database_url == url
    assert not settings.is_embedded


def test_every_setting_is_in_the_readme() -> None:
    """The README's configuration table names every TMN_* variable the code reads."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [
        f"TMN_{name.upper()}" for name in Settings.__struct_fields__ if f"`TMN_{name.upper()}`" not in readme
    ]
    assert missing == []
