"""The one settings object, read from the environment and an optional `.env` file."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import ConfigurationError

DEMO_COMPANY = {
    "company_name": "UAB „Demonstracinė įmonė“",
    "company_code": "300000001",
    "company_vat_code": "LT100000000017",
    "company_address": "Gedimino pr. 1, LT-01103 Vilnius",
}


class Settings(BaseSettings):
    """Every setting of the product; field names match the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///invoice-lists.db"
    timezone: str = "Europe/Vilnius"

    company_name: str = ""
    company_code: str = ""
    company_vat_code: str = ""
    company_address: str = ""

    mail_from: str = ""
    mail_from_name: str = ""
    mail_reply_to: str = ""
    sendgrid_api_key: str = ""
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_timeout_seconds: float = Field(default=30.0, gt=0)
    sendgrid_max_attempts: int = Field(default=5, ge=1)
    outbox_dir: Path = Path("outbox")

    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str = ""
    finance_users: str = ""
    finance_usergroup: str = ""

    schedule_day: int = Field(default=1, ge=1, le=28)
    schedule_time: time = time(9, 0)

    sendgrid_webhook_public_key: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as "
                "'Europe/Vilnius'"
            ) from error
        return value

    @field_validator("mail_from", "mail_reply_to")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        if not value:
            return value
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValueError(
                f"{value!r} is not an e-mail address ({error}); expected an "
                "address such as accounts@example.com"
            ) from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def finance_user_ids(self) -> frozenset[str]:
        return frozenset(
            part.strip() for part in self.finance_users.split(",") if part.strip()
        )

    def with_demo_company(self) -> Settings:
        """Return a copy whose empty company fields are filled with demo values."""
        missing = {
            name: value
            for name, value in DEMO_COMPANY.items()
            if not getattr(self, name)
        }
        return self.model_copy(update=missing)

    def require(self, *names: str) -> None:
        """Raise `ConfigurationError` naming every one of `names` that is empty."""
        missing = [name.upper() for name in names if not getattr(self, name)]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ConfigurationError(
                f"{', '.join(missing)} {verb} not set; set them in the environment "
                "or in .env"
            )


def load_settings() -> Settings:
    """Read the settings, turning a validation failure into `ConfigurationError`."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']).upper()}: "
            f"{item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from error
