"""The response's configurable data: time limits, reason lists, channels, grading thresholds.

Read from ``yifang/respond/data/*.yaml``, or from the folder ``YIFANG_RESPOND_DATA_DIR``
names (a city's own copy), once per process. Every value a city may need to change lives in
those files; the code holds none of them. Bad files fail loudly at first use, naming the
file and the entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data"
LEVELS: tuple[str, ...] = ("I", "II", "III", "IV")  # most serious first
GROUPINGS: tuple[str, ...] = ("unit", "township", "county", "city", "event")


class RespondSettings(BaseSettings):
    """Mail, SMS and data-folder knobs, read from ``YIFANG_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="YIFANG_", env_file=".env", extra="ignore")

    respond_data_dir: Path | None = Field(
        default=None, description="Folder with a city's own response.yaml/grading.yaml/plans.yaml."
    )
    smtp_host: str = Field(default="", description="SMTP server; empty: no email is sent.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_from: str = Field(default="yifang@localhost", description="Sender address.")
    smtp_user: str = Field(default="", description="SMTP login (optional).")
    smtp_password: str = Field(default="", description="SMTP password (optional).")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_timeout: float = Field(default=10.0, description="Seconds.")
    sms_backend: str = Field(
        default="log",
        description="'log' (write to the log) or 'module:factory' returning an SmsSender.",
    )


@lru_cache(maxsize=1)
def get_respond_settings() -> RespondSettings:
    """The process-wide response settings, read once."""
    return RespondSettings()


def _data_file(name: str) -> Path:
    folder = get_respond_settings().respond_data_dir
    if folder is not None and (folder / name).exists():
        return folder / name
    return DATA_DIR / name


def _read(name: str) -> dict[str, Any]:
    path = _data_file(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top")
    return data


@dataclass(frozen=True)
class ResponseConfig:
    """data/response.yaml, parsed."""

    version: str
    deadline_hours: dict[str, float]
    disease_hours: dict[str, float]
    dismiss_reasons: dict[str, dict[str, str]]
    checks: dict[str, dict[str, str]]
    escalate_after_hours: float
    task_remind_before_hours: float
    task_escalate_after_hours: float
    task_default_deadline_hours: float
    attachment_max_bytes: int
    attachment_types: dict[str, list[str]]
    default_follow_up_days: int
    fever_celsius: float
    risk_levels: list[dict[str, Any]]
    agenda_signal_limit: int
    indicator_top_diseases: int
    channels: dict[str, list[str]]
    owners: dict[str, dict[str, str]]

    def verification_hours(
        self, disease_code: str | None, disease_class: str, class_a: bool, source: str = "cards"
    ) -> float:
        """Hours allowed to verify a signal of this disease (2 h / 24 h by default); a
        syndrome's or other stream's signal (no disease) by its source's limit."""
        if disease_code is None:
            return self.deadline_hours.get(source, self.deadline_hours["default"])
        if disease_code in self.disease_hours:
            return self.disease_hours[disease_code]
        if disease_class == "A":
            return self.deadline_hours.get("class_a", self.deadline_hours["default"])
        if class_a:
            return self.deadline_hours.get("managed_as_class_a", self.deadline_hours["default"])
        return self.deadline_hours["default"]

    def risk_level(self, score: int) -> str:
        """The band of a likelihood × impact score (1-25)."""
        level = self.risk_levels[0]["level"]
        for band in sorted(self.risk_levels, key=lambda b: b["min_score"]):
            if score >= band["min_score"]:
                level = band["level"]
        return str(level)


@lru_cache(maxsize=1)
def response_config() -> ResponseConfig:
    """data/response.yaml (or the city's copy), checked."""
    data = _read("response.yaml")
    try:
        ver = data["verification"]
        tasks = data["tasks"]
        att = data["attachments"]
        contacts = data["contacts"]
        cons = data["consultation"]
        channels = data["notifications"]["channels"]
        hours = {k: float(v) for k, v in ver["deadline_hours"].items()}
        if "default" not in hours:
            raise ValueError("verification.deadline_hours needs a 'default'")
        for key, chans in channels.items():
            bad = set(chans) - {"app", "email", "sms"}
            if bad:
                raise ValueError(f"notifications.channels.{key}: unknown channel(s) {sorted(bad)}")
        return ResponseConfig(
            version=str(data.get("version", "")),
            deadline_hours=hours,
            disease_hours={k: float(v) for k, v in (ver.get("disease_hours") or {}).items()},
            dismiss_reasons=dict(ver["dismiss_reasons"]),
            checks=dict(ver.get("checks") or {}),
            escalate_after_hours=float(ver.get("escalate_after_hours", 0)),
            task_remind_before_hours=float(tasks["remind_before_hours"]),
            task_escalate_after_hours=float(tasks["escalate_after_hours"]),
            task_default_deadline_hours=float(tasks["default_deadline_hours"]),
            attachment_max_bytes=int(att["max_bytes"]),
            attachment_types={str(k): list(v) for k, v in att["types"].items()},
            default_follow_up_days=int(contacts["default_follow_up_days"]),
            fever_celsius=float(contacts["fever_celsius"]),
            risk_levels=list(cons["risk_levels"]),
            agenda_signal_limit=int(cons["agenda_signal_limit"]),
            indicator_top_diseases=int(cons["indicator_top_diseases"]),
            channels={k: list(v) for k, v in channels.items()},
            owners=dict(data.get("owners") or {}),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{_data_file('response.yaml')}: missing or malformed {exc}") from exc


@dataclass(frozen=True)
class GradeRule:
    """One threshold of grading.yaml (see the file's header for the meaning)."""

    id: str
    level: str | None  # None: a 相关信息 reporting threshold
    per: str
    diseases: tuple[str, ...] = ()
    subtypes: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    window_days: int | str | None = None
    min_cases: int | None = None
    min_deaths: int | None = None
    min_groups: int | None = None
    confirmed: bool = False
    zh: str = ""
    en: str = ""


@dataclass(frozen=True)
class GradingConfig:
    """data/grading.yaml, parsed."""

    version: str
    related_info: tuple[GradeRule, ...]
    levels: tuple[GradeRule, ...]
    level_names: dict[str, dict[str, str]] = field(default_factory=dict)


def _rule(entry: dict[str, Any], level: str | None, where: str) -> GradeRule:
    if "id" not in entry:
        raise ValueError(f"grading.yaml: {where} has no 'id'")
    rid = str(entry["id"])
    per = str(entry.get("per", "event"))
    if per not in GROUPINGS:
        raise ValueError(f"grading.yaml: rule {rid}: per '{per}' not one of {GROUPINGS}")
    if level is not None and level not in LEVELS:
        raise ValueError(f"grading.yaml: rule {rid}: level '{level}' not one of {LEVELS}")
    window = entry.get("window_days")
    if window is not None and window != "incubation_mean" and not isinstance(window, int):
        raise ValueError(f"grading.yaml: rule {rid}: window_days must be days or incubation_mean")
    if not any(entry.get(k) for k in ("min_cases", "min_deaths", "min_groups")):
        raise ValueError(f"grading.yaml: rule {rid}: needs min_cases, min_deaths or min_groups")
    if not entry.get("diseases") and not entry.get("event_types"):
        raise ValueError(f"grading.yaml: rule {rid}: needs diseases or event_types")
    return GradeRule(
        id=rid,
        level=level,
        per=per,
        diseases=tuple(entry.get("diseases") or ()),
        subtypes=tuple(entry.get("subtypes") or ()),
        event_types=tuple(entry.get("event_types") or ()),
        tags=tuple(entry.get("tags") or ()),
        window_days=window,
        min_cases=entry.get("min_cases"),
        min_deaths=entry.get("min_deaths"),
        min_groups=entry.get("min_groups"),
        confirmed=bool(entry.get("confirmed", False)),
        zh=str(entry.get("zh", "")),
        en=str(entry.get("en", "")),
    )


@lru_cache(maxsize=1)
def grading_config() -> GradingConfig:
    """data/grading.yaml (or the city's copy), checked."""
    data = _read("grading.yaml")
    related = tuple(
        _rule(e, None, f"related_info #{i + 1}") for i, e in enumerate(data["related_info"])
    )
    levels = tuple(
        _rule(e, str(e.get("level")), f"levels #{i + 1}") for i, e in enumerate(data["levels"])
    )
    return GradingConfig(
        version=str(data.get("version", "")),
        related_info=related,
        levels=levels,
        level_names=dict(data.get("level_names") or {}),
    )


@lru_cache(maxsize=1)
def plans_file() -> dict[str, Any]:
    """data/plans.yaml (or the city's copy), with every template's tasks checked."""
    data = _read("plans.yaml")
    for i, tpl in enumerate(data.get("templates") or []):
        for key in ("code", "name_zh", "name_en", "tasks"):
            if key not in tpl:
                raise ValueError(f"plans.yaml: template #{i + 1} has no '{key}'")
        for j, task in enumerate(tpl["tasks"]):
            for key in ("owner", "zh"):
                if key not in task:
                    raise ValueError(f"plans.yaml: {tpl['code']} task #{j + 1} has no '{key}'")
    return data


def clear_caches() -> None:
    """Forget the parsed files (tests, or after a city edits them)."""
    for fn in (get_respond_settings, response_config, grading_config, plans_file):
        fn.cache_clear()
