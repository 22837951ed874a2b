"""An event's final report (结案报告) as PDF, drawn with reportlab.

The content is :func:`yifang.respond.report.report_data`, the same as the Word report's:
particulars and grade, the epidemic curve, the map of townships with cases, findings,
samples, grading history, the timeline from the first signal to closure, tasks and the
conclusion. Figures are reportlab vector graphics with Chinese labels.

Chinese text needs a font. reportlab embeds only TrueType-outline fonts, so the report
uses, in order: the file named by ``YIFANG_PDF_FONT`` (a .ttf/.ttc with TrueType
outlines), then a TrueType CJK font Debian installs in a usual place (WenQuanYi, AR PL),
each only if it draws Latin letters and digits too (Droid Sans Fallback does not), else
the Adobe CID font ``STSong-Light``, which needs no file on the server (PDF readers supply
a Song face; the text stays searchable). Noto CJK as packaged by Debian has PostScript
(CFF) outlines that reportlab cannot embed, so it is not tried.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy.orm import Session

from yifang.respond.report import Place, ReportData, daily_counts, report_data
from yifang.respond.service import Viewer

log = logging.getLogger(__name__)

#: TrueType CJK fonts looked for when ``YIFANG_PDF_FONT`` is not set (path, sub-font).
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)
CID_FONT = "STSong-Light"
#: A font must draw these (Han, Latin letters, digits) to set the whole report alone.
NEEDED_GLYPHS = "中疫Aa09-:"

BRAND = "#0b6e69"
BAR = "#c0392b"


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register and name the font the report's Chinese text is set in (see module doc)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    wanted = os.environ.get("YIFANG_PDF_FONT", "").strip()
    candidates = [(wanted, 0)] if wanted else []
    candidates += list(FONT_CANDIDATES)
    for path, index in candidates:
        if not Path(path).is_file():
            if path == wanted:
                log.warning("YIFANG_PDF_FONT=%s: no such file; using another font", path)
            continue
        try:
            font = TTFont("YifangCJK", path, subfontIndex=index)
        except (TTFError, OSError) as exc:
            log.warning("font %s cannot be embedded (%s); trying the next", path, exc)
            continue
        if not all(ord(ch) in font.face.charToGlyph for ch in NEEDED_GLYPHS):
            log.info("font %s lacks Latin letters or digits; trying the next", path)
            continue
        pdfmetrics.registerFont(font)
        return "YifangCJK"
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
    return CID_FONT


# --------------------------------------------------------------------------- figures


def curve_drawing(onsets: list[Any], width: float, height: float, font: str) -> Any:
    """The epidemic curve: cases per onset day as bars (days without cases shown as 0)."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    drawing = Drawing(width, height)
    days = daily_counts(onsets)
    if not days:
        drawing.add(String(width / 2, height / 2, "无关联病例", fontName=font, textAnchor="middle"))
        return drawing
    chart = VerticalBarChart()
    chart.x, chart.y = 40, 38
    chart.width, chart.height = width - 55, height - 60
    chart.data = [[n for _, n in days]]
    step = max(1, math.ceil(len(days) / 14))  # at most ~14 date labels
    chart.categoryAxis.categoryNames = [
        f"{d:%m-%d}" if i % step == 0 else "" for i, (d, _) in enumerate(days)
    ]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 45 if len(days) > 10 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(days) > 10 else "n"
    top = max(n for _, n in days)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(1, top)
    chart.valueAxis.valueStep = max(1, math.ceil(top / 5))
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = colors.HexColor(BAR)
    chart.bars[0].strokeColor = None
    chart.barSpacing = 1
    chart.groupSpacing = 2
    drawing.add(chart)
    drawing.add(String(4, height - 12, "病例数", fontName=font, fontSize=8))
    drawing.add(String(width / 2, 2, "发病日期", fontName=font, fontSize=8, textAnchor="middle"))
    return drawing


def map_drawing(places: list[Place], width: float, height: float, font: str) -> Any:
    """Townships with cases at their catalog centroids, circles sized by cases, on a
    longitude/latitude frame (east-west distances shrunk by cos(latitude))."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, Rect, String
    from reportlab.lib import colors

    drawing = Drawing(width, height)
    points = [p for p in places if p.longitude is not None and p.latitude is not None]
    if not points:
        drawing.add(String(width / 2, height / 2, "无坐标可绘", fontName=font, textAnchor="middle"))
        return drawing
    lons = [float(p.longitude or 0.0) for p in points]
    lats = [float(p.latitude or 0.0) for p in points]
    pad = 0.08  # degrees around the points
    lon0, lon1 = min(lons) - pad, max(lons) + pad
    lat0, lat1 = min(lats) - pad, max(lats) + pad
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    margin = 30.0
    scale = min((width - 2 * margin) / ((lon1 - lon0) * kx), (height - 2 * margin) / (lat1 - lat0))
    ox = margin + ((width - 2 * margin) - (lon1 - lon0) * kx * scale) / 2
    oy = margin + ((height - 2 * margin) - (lat1 - lat0) * scale) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return ox + (lon - lon0) * kx * scale, oy + (lat - lat0) * scale

    x0, y0 = xy(lon0, lat0)
    x1, y1 = xy(lon1, lat1)
    drawing.add(
        Rect(x0, y0, x1 - x0, y1 - y0, fillColor=colors.HexColor("#f3f5f7"), strokeColor=None)
    )
    for frac in (0.25, 0.5, 0.75):  # graticule with degree labels
        lon = lon0 + (lon1 - lon0) * frac
        lat = lat0 + (lat1 - lat0) * frac
        gx, _ = xy(lon, lat0)
        _, gy = xy(lon0, lat)
        grid = colors.HexColor("#d9e0e6")
        drawing.add(Line(gx, y0, gx, y1, strokeColor=grid, strokeWidth=0.5))
        drawing.add(Line(x0, gy, x1, gy, strokeColor=grid, strokeWidth=0.5))
        drawing.add(
            String(gx, y0 - 10, f"{lon:.2f}°E", fontName=font, fontSize=6, textAnchor="middle")
        )
        drawing.add(
            String(x0 - 2, gy - 2, f"{lat:.2f}°N", fontName=font, fontSize=6, textAnchor="end")
        )
    top = max(p.cases for p in points)
    for p in sorted(points, key=lambda q: -q.cases):
        cx, cy = xy(float(p.longitude or 0.0), float(p.latitude or 0.0))
        r = 3 + 12 * math.sqrt(p.cases / top)
        drawing.add(
            Circle(
                cx,
                cy,
                r,
                fillColor=colors.Color(0.75, 0.22, 0.17, alpha=0.65),
                strokeColor=colors.white,
                strokeWidth=0.8,
            )
        )
        drawing.add(String(cx + r + 2, cy - 3, f"{p.name} {p.cases}例", fontName=font, fontSize=7))
    return drawing


# --------------------------------------------------------------------------- document


def _styles(font: str) -> dict[str, Any]:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK")
    return {
        "title": ParagraphStyle(
            "title", parent=base, fontSize=17, leading=24, textColor=colors.HexColor(BRAND)
        ),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontSize=12.5,
            leading=18,
            spaceBefore=10,
            spaceAfter=4,
            textColor=colors.HexColor(BRAND),
        ),
        "body": base,
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10.5),
        "small": ParagraphStyle(
            "small", parent=base, fontSize=8, leading=11, textColor=colors.HexColor("#5d6b7a")
        ),
    }


def _table(
    rows: Sequence[Sequence[str]],
    widths: list[float],
    styles: dict[str, Any],
    header: Sequence[str] | None = None,
) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    body = [*([header] if header else []), *rows]
    data = [[Paragraph(escape(str(c)), styles["cell"]) for c in row] for row in body]
    table = Table(data, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b9c3cc")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3f4f2")))
    else:
        style.append(("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f4f6f8")))
    table.setStyle(TableStyle(style))
    return table


def _paragraphs(text: str | None, style: Any) -> list[Any]:
    from reportlab.platypus import Paragraph

    lines = [line for line in (text or "—").splitlines() if line.strip()] or ["—"]
    return [Paragraph(escape(line), style) for line in lines]


def render_pdf(data: ReportData) -> bytes:
    """Lay the report out on A4 pages; returns the PDF bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

    font = cjk_font()
    styles = _styles(font)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{data.title} 结案报告",
        author="Yifang 医防",
        subject=data.number,
    )
    width = doc.width
    event = data.event
    story: list[Any] = [
        Paragraph(f"{_esc(data.title)} 结案报告", styles["title"]),
        Paragraph(
            f"事件编号 {_esc(data.number)}，报告生成 {data.generated_at:%Y-%m-%d %H:%M}"
            f"({_esc(data.timezone)})",
            styles["small"],
        ),
        Spacer(1, 6),
        _table(data.particulars, [width * 0.3, width * 0.7], styles),
    ]
    story.append(
        KeepTogether(
            [
                Paragraph("流行曲线", styles["h1"]),
                curve_drawing(data.onsets, width, 58 * mm, font),
            ]
        )
    )
    if data.places:
        story.append(
            KeepTogether(
                [
                    Paragraph("病例地区分布", styles["h1"]),
                    map_drawing(data.places, width, 75 * mm, font),
                    _table(
                        [(p.name, p.code, str(p.cases)) for p in data.places],
                        [width * 0.4, width * 0.35, width * 0.25],
                        styles,
                        header=("乡镇(街道)", "区划代码", "病例数"),
                    ),
                ]
            )
        )
    story.append(Paragraph("调查发现", styles["h1"]))
    story += _paragraphs(event.findings or event.summary, styles["body"])
    if data.samples:
        story.append(Paragraph("标本与实验室检测", styles["h1"]))
        story.append(
            _table(
                data.samples,
                [width * 0.3, width * 0.3, width * 0.15, width * 0.25],
                styles,
                header=("标本", "实验室", "结果", "病原体"),
            )
        )
    if data.grades:
        story.append(Paragraph("定级记录", styles["h1"]))
        story.append(
            _table(
                data.grades,
                [width * 0.18, width * 0.1, width * 0.1, width * 0.27, width * 0.35],
                styles,
                header=("时间", "级别", "相关信息", "依据", "人员与理由"),
            )
        )
    story.append(Paragraph("处置经过", styles["h1"]))
    if data.hours_to:
        steps = {
            "verification.suspected": "核实为疑似事件",
            "event.investigating": "开始调查",
            "event.confirmed": "确认",
            "event.responding": "启动处置",
            "event.closed": "结案",
        }
        text = ";".join(
            f"{label} {data.hours_to[key]:.1f} 小时"
            for key, label in steps.items()
            if key in data.hours_to
        )
        story.append(Paragraph(f"自预警信号起:{_esc(text)}", styles["small"]))
    story.append(
        _table(
            [(f"{r.at:%m-%d %H:%M}", r.kind, r.action, r.actor, r.note) for r in data.timeline],
            [width * 0.13, width * 0.12, width * 0.12, width * 0.15, width * 0.48],
            styles,
            header=("时间", "对象", "操作", "人员", "说明"),
        )
    )
    story.append(Paragraph("处置任务", styles["h1"]))
    if data.tasks:
        story.append(
            _table(
                data.tasks,
                [width * 0.42, width * 0.18, width * 0.12, width * 0.28],
                styles,
                header=("任务", "责任单位", "状态", "结果"),
            )
        )
    else:
        story.append(Paragraph("—", styles["body"]))
    story.append(Paragraph("结论", styles["h1"]))
    story += _paragraphs(event.conclusion, styles["body"])

    def footer(canvas: Any, doc_: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColorRGB(0.36, 0.42, 0.48)
        canvas.drawString(doc_.leftMargin, 10 * mm, f"{data.number}  {data.title}"[:80])
        canvas.drawRightString(
            doc_.leftMargin + doc_.width, 10 * mm, f"第 {canvas.getPageNumber()} 页"
        )
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def _esc(text: str) -> str:
    return escape(text)


def event_report_pdf(session: Session, viewer: Viewer, event_id: int) -> bytes:
    """The final report of one event the viewer may see, as PDF bytes (no personal data)."""
    return render_pdf(report_data(session, viewer, event_id))
