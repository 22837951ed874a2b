"""An event's final report (结案报告): what it holds, and the Word document (.docx).

:func:`report_data` gathers, once, everything the report shows — the event's particulars
and grade, the epidemic curve (linked cases by onset date), the townships with cases and
their catalog coordinates (for the map), the samples, the grading history, the timeline
from the first signal to closure (in the city's wall-clock time), the tasks and their
outcome, and the conclusion. :func:`event_report_docx` writes it as a Word document
(python-docx, figures drawn with matplotlib) and :mod:`yifang.respond.report_pdf` as a PDF,
so the two formats never disagree.

No personal data is written: cases are counted, never named. The Word figures carry
English axis labels so that they render without a Chinese font on the server; the text of
the document is Chinese.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.catalog.models import Region
from yifang.core.db import utcnow
from yifang.core.settings import get_settings
from yifang.respond import command, grading
from yifang.respond.config import grading_config
from yifang.respond.models import Event, Task
from yifang.respond.service import (
    EVENT,
    EVENT_TYPES,
    VERIFICATION,
    Viewer,
    disease_name,
    event_cases,
    event_samples,
    get_event,
)
from yifang.respond.tasks import TASK, owners

#: What each kind of timeline entry is called in the report.
KIND_ZH = {
    "signal": "预警信号",
    "verification": "信号核实",
    "event": "事件",
    "case": "病例",
    "grade": "定级",
    "task": "任务",
    "warning": "部门通报",
}

#: Actions the state machines do not name themselves.
ACTION_ZH = {
    "raised": "产生",
    "create": "创建",
    "created": "创建",
    "linked": "关联病例",
    "graded": "定级",
    "sent": "发送",
    "acknowledged": "确认收到",
}

SAMPLE_RESULT_ZH = {
    "pending": "待检",
    "positive": "阳性",
    "negative": "阴性",
    "inconclusive": "不确定",
}


@dataclass(frozen=True)
class Place:
    """A township with linked cases: catalog centroid (WGS 84 degrees) and case count."""

    code: str
    name: str
    longitude: float | None
    latitude: float | None
    cases: int


@dataclass(frozen=True)
class TimelineRow:
    """One line of the report's timeline, in words."""

    at: datetime  # the city's wall-clock time
    kind: str
    action: str
    actor: str
    note: str


@dataclass(frozen=True)
class ReportData:
    """Everything an event's final report shows, ready to lay out."""

    event: Event
    particulars: list[tuple[str, str]]
    onsets: list[date]
    places: list[Place]
    samples: list[tuple[str, str, str, str]]
    grades: list[tuple[str, str, str, str, str]]
    timeline: list[TimelineRow]
    tasks: list[tuple[str, str, str, str]]
    hours_to: dict[str, float]
    generated_at: datetime
    timezone: str

    @property
    def title(self) -> str:
        return self.event.title

    @property
    def number(self) -> str:
        return self.event.number


def local_time(at: datetime, zone: ZoneInfo) -> datetime:
    """A naive UTC time as the city's naive wall-clock time."""
    return at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)


def case_places(session: Session, event_id: int) -> list[Place]:
    """Townships (9-digit codes) of the event's linked cases with their counts and catalog
    coordinates (a township without coordinates keeps ``None``)."""
    towns = Counter(card.address_code[:9] for _, card in event_cases(session, event_id))
    out = []
    for code, n in sorted(towns.items()):
        region = session.get(Region, code)
        out.append(
            Place(
                code=code,
                name=region.name if region is not None else code,
                longitude=region.longitude if region is not None else None,
                latitude=region.latitude if region is not None else None,
                cases=n,
            )
        )
    return out


def _action_zh(kind: str, action: str) -> str:
    machines = {"verification": VERIFICATION, "event": EVENT, "task": TASK}
    machine = machines.get(kind)
    if machine is not None and action in machine.actions_zh:
        return machine.actions_zh[action]
    return ACTION_ZH.get(action, action)


def _timeline_note(entry: command.TimelineEntry, task_titles: dict[int, str]) -> str:
    d = entry.detail
    if entry.kind == "signal":
        return str(d.get("explanation_zh") or "")
    if entry.kind == "task":
        title = task_titles.get(int(d.get("id") or 0), "")
        return f"{title}{(':' + d['reason']) if d.get('reason') else ''}"
    if entry.kind == "grade":
        level = d.get("level")
        related = "相关信息" if d.get("related_info") else "非相关信息"
        return f"{level + '级' if level else '未分级'},{related}"
    if entry.kind == "case":
        return f"报告卡 {d.get('card_id')}"
    if entry.kind == "warning" and d.get("owner"):
        return owners().get(str(d["owner"]), {}).get("zh", str(d["owner"]))
    parts = []
    if d.get("to"):
        labels = {"verification": VERIFICATION, "event": EVENT}.get(entry.kind)
        to = str(d["to"])
        parts.append("→ " + (labels.labels.get(to, (to,))[0] if labels else to))
    if d.get("reason"):
        parts.append(str(d["reason"]))
    return " ".join(parts)


def report_data(session: Session, viewer: Viewer, event_id: int) -> ReportData:
    """Gather the report of one event the viewer may see (no personal data)."""
    event = get_event(session, viewer, event_id)
    zone = ZoneInfo(get_settings().timezone)
    cases = event_cases(session, event.id)
    names = grading_config().level_names
    grade = (
        f"{event.level}级({names.get(event.level, {}).get('zh', '')})" if event.level else "未定级"
    )
    region = session.get(Region, event.region_code)
    owner_names = owners()

    def period(start: date | None, end: date | None) -> str:
        if start is None:
            return "—"
        return f"{start.isoformat()} 至 {end.isoformat() if end else '今'}"

    particulars = [
        ("事件编号", event.number),
        ("病种", disease_name(session, event.disease_code) or "—"),
        ("事件类型", EVENT_TYPES.get(event.event_type, (event.event_type,))[0]),
        ("地区", f"{region.name if region else ''} {event.region_code}".strip()),
        ("状态", EVENT.labels[event.status][0]),
        ("突发公共卫生事件相关信息", {True: "是", False: "否", None: "未判定"}[event.related_info]),
        ("事件分级", grade),
        ("病例数", str(max(len(cases), event.affected or 0))),
        ("死亡数", str(max(sum(c.death_date is not None for _, c in cases), event.deaths or 0))),
        ("调查组", "、".join(event.team or []) or "—"),
        ("调查时间", period(event.investigation_start, event.investigation_end)),
    ]
    samples = [
        (
            s.sample_type,
            s.laboratory or "—",
            SAMPLE_RESULT_ZH.get(s.result, s.result),
            s.pathogen or "",
        )
        for s in event_samples(session, event.id)
    ]
    grades = [
        (
            f"{local_time(g.at, zone):%Y-%m-%d %H:%M}",
            f"{g.level}级" if g.level else "未分级",
            "是" if g.related_info else "否",
            "采纳建议" if g.accepted else f"人工判定(建议 {g.suggested_level or '未分级'})",
            f"{g.actor}{(':' + g.reason) if g.reason else ''}",
        )
        for g in grading.grades(session, event.id)
    ]
    task_rows = list(
        session.scalars(select(Task).where(Task.event_id == event.id).order_by(Task.id))
    )
    titles = {t.id: t.title for t in task_rows}
    entries = command.timeline(session, viewer, event.id)
    timeline: list[TimelineRow] = []
    linked = 0  # consecutive links of cards by one person make one line
    for e in entries:
        if e.kind == "case" and timeline and linked and timeline[-1].actor == e.actor:
            linked += 1
            timeline[-1] = replace(timeline[-1], note=f"报告卡 {linked} 张")
            continue
        linked = 1 if e.kind == "case" else 0
        timeline.append(
            TimelineRow(
                at=local_time(e.at, zone),
                kind=KIND_ZH.get(e.kind, e.kind),
                action=_action_zh(e.kind, e.action),
                actor=e.actor,
                note=_timeline_note(e, titles),
            )
        )
    tasks = [
        (
            t.title,
            owner_names.get(t.owner, {}).get("zh", t.owner),
            TASK.labels.get(t.status, (t.status,))[0],
            t.result or t.cancelled_reason or "",
        )
        for t in task_rows
    ]
    return ReportData(
        event=event,
        particulars=particulars,
        onsets=sorted(c.onset_date for _, c in cases),
        places=case_places(session, event.id),
        samples=samples,
        grades=grades,
        timeline=timeline,
        tasks=tasks,
        hours_to=command.step_durations(entries),
        generated_at=local_time(utcnow(), zone),
        timezone=get_settings().timezone,
    )


def daily_counts(onsets: list[date]) -> list[tuple[date, int]]:
    """Cases per onset day from the first to the last onset (days without cases: 0)."""
    if not onsets:
        return []
    counts = Counter(onsets)
    first, last = min(onsets), max(onsets)
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
        for i in range((last - first).days + 1)
    ]


# --------------------------------------------------------------------------- Word


def _curve_png(onsets: list[date]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 2.6), dpi=150)
    days = daily_counts(onsets)
    if days:
        x = [mdates.date2num(d) for d, _ in days]
        ax.bar(x, [n for _, n in days], width=0.9, color="#c0392b")
        ax.xaxis_date()
    ax.set_xlabel("onset date")
    ax.set_ylabel("cases")
    ax.set_title("Epidemic curve")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _map_png(points: list[Place]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=150)
    for p in points:
        lon, lat = float(p.longitude or 0.0), float(p.latitude or 0.0)
        ax.scatter([lon], [lat], s=40 + 30 * p.cases, color="#2c3e50", alpha=0.6)
        ax.annotate(
            f"{p.code[-3:]}: {p.cases}",
            (lon, lat),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_title("Cases by township")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def event_report_docx(session: Session, viewer: Viewer, event_id: int) -> bytes:
    """The report of one event the viewer may see, as .docx bytes (no personal data)."""
    from docx import Document
    from docx.shared import Cm

    data = report_data(session, viewer, event_id)
    event = data.event
    doc = Document()
    doc.add_heading(f"{event.title}", level=0)
    doc.add_paragraph(f"事件编号 {event.number}")

    def table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
        cols = len(header) if header else len(rows[0]) if rows else 2
        t = doc.add_table(rows=0, cols=cols)
        t.style = "Light Grid Accent 1"
        for row in [*([header] if header else []), *rows]:
            cells = t.add_row().cells
            for cell, text in zip(cells, row, strict=True):
                cell.text = text

    table(None, data.particulars)
    doc.add_heading("流行曲线", level=1)
    doc.add_picture(io.BytesIO(_curve_png(data.onsets)), width=Cm(15))
    points = [p for p in data.places if p.longitude is not None and p.latitude is not None]
    if points:
        doc.add_heading("病例分布", level=1)
        doc.add_picture(io.BytesIO(_map_png(points)), width=Cm(12))
        table(("乡镇", "病例数"), [(p.name, str(p.cases)) for p in data.places])
    doc.add_heading("调查发现", level=1)
    doc.add_paragraph(event.findings or "—")
    if data.samples:
        doc.add_heading("标本与实验室检测", level=1)
        table(("标本", "实验室", "结果", "病原体"), data.samples)
    if data.grades:
        doc.add_heading("定级记录", level=1)
        table(("时间", "级别", "相关信息", "依据", "人员"), data.grades)
    doc.add_heading("处置经过", level=1)
    table(
        (f"时间({data.timezone})", "对象", "操作", "人员", "说明"),
        [(f"{r.at:%Y-%m-%d %H:%M}", r.kind, r.action, r.actor, r.note) for r in data.timeline],
    )
    doc.add_heading("任务", level=1)
    table(("任务", "责任单位", "状态", "结果"), data.tasks)
    doc.add_heading("结论", level=1)
    doc.add_paragraph(event.conclusion or "—")
    doc.add_paragraph(f"报告生成时间 {data.generated_at:%Y-%m-%d %H:%M}({data.timezone})")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
