"""An event's final report (结案报告) as a Word document (.docx, python-docx).

Holds the event's particulars and grade, the epidemic curve (linked cases by onset date,
drawn with matplotlib), a map of the townships with cases (points at the catalog's
township coordinates, sized by cases), the timeline from the first signal to closure, the
tasks and their outcome, and the conclusion. Figures carry English axis labels so that they
render without a Chinese font on the server; the text of the document is Chinese.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.catalog.models import Region
from yifang.respond import command
from yifang.respond.config import grading_config
from yifang.respond.models import Task
from yifang.respond.service import EVENT, EVENT_TYPES, Viewer, disease_name, event_cases, get_event


def _curve_png(onsets: list[date]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 2.6), dpi=150)
    if onsets:
        counts = Counter(onsets)
        first, last = min(onsets), max(onsets)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        import matplotlib.dates as mdates

        x = [mdates.date2num(d) for d in days]
        ax.bar(x, [counts.get(d, 0) for d in days], width=0.9, color="#c0392b")
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


def _map_png(points: list[tuple[float, float, int, str]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=150)
    for lon, lat, n, code in points:
        ax.scatter([lon], [lat], s=40 + 30 * n, color="#2c3e50", alpha=0.6)
        ax.annotate(
            f"{code[-3:]}: {n}", (lon, lat), fontsize=7, xytext=(4, 4), textcoords="offset points"
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

    event = get_event(session, viewer, event_id)
    cases = event_cases(session, event.id)
    doc = Document()
    doc.add_heading(f"{event.title}", level=0)
    doc.add_paragraph(f"事件编号 {event.number}")
    names = grading_config().level_names
    grade = (
        f"{event.level}级({names.get(event.level, {}).get('zh', '')})" if event.level else "未定级"
    )
    rows = [
        ("病种", disease_name(session, event.disease_code) or "—"),
        ("事件类型", EVENT_TYPES.get(event.event_type, (event.event_type,))[0]),
        ("地区", event.region_code),
        ("状态", EVENT.labels[event.status][0]),
        ("突发公共卫生事件相关信息", {True: "是", False: "否", None: "未判定"}[event.related_info]),
        ("事件分级", grade),
        ("病例数", str(max(len(cases), event.affected or 0))),
        ("死亡数", str(max(sum(c.death_date is not None for _, c in cases), event.deaths or 0))),
        ("调查组", "、".join(event.team or []) or "—"),
    ]
    table = doc.add_table(rows=0, cols=2)
    table.style = "Light Grid Accent 1"
    for label, value in rows:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    doc.add_heading("流行曲线", level=1)
    doc.add_picture(io.BytesIO(_curve_png([c.onset_date for _, c in cases])), width=Cm(15))
    towns = Counter(c.address_code[:9] for _, c in cases)
    points = []
    for code, n in sorted(towns.items()):
        region = session.get(Region, code)
        if region is not None and region.longitude is not None and region.latitude is not None:
            points.append((region.longitude, region.latitude, n, code))
    if points:
        doc.add_heading("病例分布", level=1)
        doc.add_picture(io.BytesIO(_map_png(points)), width=Cm(12))
    doc.add_heading("调查发现", level=1)
    doc.add_paragraph(event.findings or "—")
    doc.add_heading("处置经过", level=1)
    timeline = doc.add_table(rows=1, cols=4)
    timeline.style = "Light Grid Accent 1"
    for cell, text in zip(
        timeline.rows[0].cells, ("时间(UTC)", "对象", "操作", "人员"), strict=True
    ):
        cell.text = text
    for entry in command.timeline(session, viewer, event.id):
        cells = timeline.add_row().cells
        cells[0].text = f"{entry.at:%Y-%m-%d %H:%M}"
        cells[1].text, cells[2].text, cells[3].text = entry.kind, entry.action, entry.actor
    doc.add_heading("任务", level=1)
    task_table = doc.add_table(rows=1, cols=4)
    task_table.style = "Light Grid Accent 1"
    for cell, text in zip(
        task_table.rows[0].cells, ("任务", "责任单位", "状态", "结果"), strict=True
    ):
        cell.text = text
    for task in session.scalars(select(Task).where(Task.event_id == event.id).order_by(Task.id)):
        cells = task_table.add_row().cells
        cells[0].text, cells[1].text = task.title, task.owner
        cells[2].text, cells[3].text = task.status, task.result or task.cancelled_reason or ""
    doc.add_heading("结论", level=1)
    doc.add_paragraph(event.conclusion or "—")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
