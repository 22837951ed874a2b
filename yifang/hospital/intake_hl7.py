"""HL7 v2 intake: ADT (admission, visit, update, discharge) and ORU^R01 (results) messages,
read with ``hl7apy``, received over MLLP (an asyncio server) or from files, answered with an
ACK (AA accepted, AE error in the content, AR rejected).

What is read (HL7 v2.5 field numbers; 2.3–2.8 are accepted):

* MSH-4 sending facility = the hospital's organisation code (must be in the catalog),
  MSH-7 message time (orders out-of-order updates), MSH-9 type, MSH-10 control id (repeats
  are recognised), MSH-12 version, MSH-18 character set (UTF-8 unless it says GB18030);
* PID-3 identifiers (a valid resident ID number is the document number; the ``MR`` one, else
  the first other, the patient number), PID-5 name (family + given), PID-7 birth date,
  PID-8 sex, PID-11 address (XAD-9 county/township code, XAD-1/2 detail), PID-13 phone;
  NK1 with a parent/guardian relationship → guardian;
* PV1-2 patient class, PV1-3 location (department), PV1-7 attending doctor, PV1-19 visit
  number, PV1-44 admit time; PV2-3 admit reason (the chief complaint);
* DG1-3 diagnosis (ICD-10 code ^ text), DG1-5 time, DG1-6 type, DG1-21 action code (``D``
  withdraws the diagnosis);
* OBR-2/3 order numbers, OBR-7 observation time; OBX-3 observation, OBX-5 value, OBX-6 units,
  OBX-8 abnormal flags (POS/A/H → positive, NEG/N → negative), OBX-11 status, OBX-14 time.
  OBX of body temperature (LOINC 8310-5 or named 体温) and chief complaint (LOINC 10154-3)
  go to the visit, the others are laboratory results.

An ORU without PV1-19 gets the visit number ``LAB-<filler order number>``. Timestamps
without a UTC offset are the city's local time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from yifang.core.db import session_scope, utcnow
from yifang.core.settings import get_settings
from yifang.hospital.intake_fhir import valid_resident_id
from yifang.hospital.schemas import DiagnosisRecord, EncounterRecord, LabRecord, RecordError
from yifang.hospital.service import Parsed, Received, receive

log = logging.getLogger(__name__)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
SUPPORTED_EVENTS = {
    "ADT": {"A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A13"},
    "ORU": {"R01"},
}
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")
CLASSES = {"O": "outpatient", "E": "emergency", "I": "inpatient", "P": "preadmit"}
POSITIVE_FLAGS = frozenset({"POS", "A", "AA", "H", "HH", "DET", "R"})
NEGATIVE_FLAGS = frozenset({"NEG", "N", "ND"})
GUARDIAN = frozenset({"MTH", "FTH", "PAR", "GRD", "GRP", "GUA", "PRN", "母亲", "父亲", "监护人"})
TEMPERATURE = frozenset({"8310-5", "8331-1", "8332-9", "8333-7"})
COMPLAINT = frozenset({"10154-3", "8661-1"})
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


# --------------------------------------------------------------------------- escaping


def unescape(text: str) -> str:
    """HL7 escape sequences of the default delimiters back to characters."""
    return (
        text.replace("\\F\\", "|")
        .replace("\\S\\", "^")
        .replace("\\T\\", "&")
        .replace("\\R\\", "~")
        .replace("\\E\\", "\\")
    )


def escape(text: str) -> str:
    """Text made safe for an HL7 field (default delimiters); line breaks become spaces."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("&", "\\T\\").replace("~", "\\R\\")
    return out.replace("\r", " ").replace("\n", " ")


# --------------------------------------------------------------------------- field access


class _Fields:
    """Plain access to a segment's fields and components (ER7 text, unescaped)."""

    def __init__(self, segment: Any) -> None:
        self.name: str = segment.name
        text = segment.to_er7()
        self.parts = text.split("|")
        if self.name == "MSH":  # MSH-1 is the field separator itself
            self.parts = ["MSH", "|", *self.parts[1:]]

    def field(self, n: int) -> str:
        return self.parts[n] if n < len(self.parts) else ""

    def reps(self, n: int) -> list[str]:
        return [r for r in self.field(n).split("~") if r]

    def comp(self, n: int, c: int = 1, rep: str | None = None) -> str:
        value = rep if rep is not None else (self.reps(n) or [""])[0]
        parts = value.split("^")
        return unescape(parts[c - 1]).strip() if c - 1 < len(parts) else ""


def hl7_time(value: str) -> datetime | None:
    """An HL7 TS/DTM as the city's wall-clock time; None if empty. ValueError if bad."""
    value = value.strip()
    if not value:
        return None
    m = _TS.match(value)
    if not m:
        raise ValueError(value)
    year, month, day, hour, minute, second, offset = m.groups()
    moment = datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
    )
    if offset:
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        moment = moment.replace(tzinfo=tz).astimezone(ZoneInfo(get_settings().timezone))
        moment = moment.replace(tzinfo=None)
    return moment


def _error(location: str, code: str, zh: str, en: str, severity: str = "error") -> RecordError:
    return RecordError(
        location=location, code=code, message_zh=zh, message_en=en, severity=severity
    )


# --------------------------------------------------------------------------- parsing


def split_messages(text: str) -> list[str]:
    """The messages of a file or stream: MLLP frames or messages one after another, with
    segments ended by CR, LF or CRLF."""
    text = text.replace("\x0b", "").replace("\x1c", "\n")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    chunks = re.split(r"\r(?=MSH\|)", text.strip("\r \t"))
    return [c.strip("\r ") for c in chunks if c.strip("\r ")]


@dataclass
class Header:
    """What the ACK needs of an incoming message's MSH (read even from a broken message)."""

    control_id: str = ""
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger: str = ""
    version: str = "2.5"


def read_header(text: str) -> Header:
    """The MSH fields, by plain splitting (works when the parser cannot)."""
    first = text.replace("\n", "\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        return Header()
    sep = first[3]
    parts = first.split(sep)
    fields = ["MSH", sep, *parts[1:]]

    def at(n: int) -> str:
        return fields[n] if n < len(fields) else ""

    kind = at(9).split("^")
    return Header(
        control_id=at(10)[:64],
        sending_app=at(3).split("^")[0],
        sending_facility=at(4).split("^")[0],
        receiving_app=at(5).split("^")[0],
        receiving_facility=at(6).split("^")[0],
        message_type=kind[0] if kind else "",
        trigger=kind[1] if len(kind) > 1 else "",
        version=(at(12).split("^")[0] or "2.5"),
    )


def parse_hl7(text: str) -> Parsed:
    """Read one HL7 v2 message. Never raises: problems are in :attr:`Parsed.errors`, with
    the segment and field (``PID-7``) they concern."""
    head = read_header(text)
    fmt = f"{head.message_type}^{head.trigger}" if head.message_type else "HL7v2"
    if not head.control_id and not head.message_type:
        return Parsed(
            "HL7v2",
            [],
            [
                _error(
                    "MSH",
                    "no_header",
                    "消息不以MSH段开头",
                    "the message does not start with an MSH segment",
                )
            ],
        )
    if (
        head.message_type not in SUPPORTED_EVENTS
        or head.trigger not in SUPPORTED_EVENTS[head.message_type]
    ):
        return Parsed(
            fmt,
            [],
            [
                _error(
                    "MSH-9",
                    "unsupported_message",
                    f"不支持的消息类型 {fmt}",
                    f"unsupported message type {fmt}",
                )
            ],
            head.sending_facility or None,
            head.control_id or None,
        )
    if head.version not in SUPPORTED_VERSIONS:
        return Parsed(
            fmt,
            [],
            [
                _error(
                    "MSH-12",
                    "unsupported_version",
                    f"不支持的版本 {head.version}",
                    f"unsupported version {head.version}",
                )
            ],
            head.sending_facility or None,
            head.control_id or None,
        )
    try:
        msg = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    except Exception as exc:
        return Parsed(
            fmt,
            [],
            [
                _error(
                    "message",
                    "unparseable",
                    f"消息无法解析:{exc}",
                    f"the message cannot be parsed: {exc}",
                )
            ],
            head.sending_facility or None,
            head.control_id or None,
        )
    segments = [_Fields(s) for s in msg.children]
    errors: list[RecordError] = []
    msh = segments[0]
    org = msh.comp(4, 1)
    if not org:
        errors.append(
            _error("MSH-4", "required", "缺少发送机构(MSH-4)", "MSH-4 sending facility is missing")
        )
    try:
        sent = hl7_time(msh.field(7))
    except ValueError:
        errors.append(
            _error(
                "MSH-7",
                "invalid_time",
                f"消息时间无效:{msh.field(7)}",
                f"MSH-7 is not a valid time: {msh.field(7)}",
            )
        )
        sent = None
    if not head.control_id:
        errors.append(
            _error(
                "MSH-10",
                "required",
                "缺少消息控制号(MSH-10)",
                "MSH-10 message control id is missing",
            )
        )
    record = _record(segments, org, sent, head, errors)
    records = [record] if record is not None else []
    return Parsed(fmt, records, errors, org or None, head.control_id or None, sent)


def _time(seg: _Fields, n: int, errors: list[RecordError]) -> datetime | None:
    try:
        return hl7_time(seg.comp(n, 1))
    except ValueError:
        errors.append(
            _error(
                f"{seg.name}-{n}",
                "invalid_time",
                f"{seg.name}-{n} 时间无效:{seg.field(n)}",
                f"{seg.name}-{n} is not a valid time: {seg.field(n)}",
            )
        )
        return None


def _record(
    segments: list[_Fields],
    org: str,
    sent: datetime | None,
    head: Header,
    errors: list[RecordError],
) -> EncounterRecord | None:
    data: dict[str, Any] = {"org_code": org, "source_time": sent, "diagnoses": [], "labs": []}
    order = ""
    order_time: datetime | None = None
    for seg in segments:
        if seg.name == "PID":
            _pid(seg, data, errors)
        elif seg.name == "NK1":
            relation = seg.comp(3, 1) or seg.comp(3, 2)
            if relation in GUARDIAN and "guardian_name" not in data:
                data["guardian_name"] = (seg.comp(2, 1) + seg.comp(2, 2))[:40] or None
        elif seg.name == "PV1":
            _pv1(seg, data, errors)
        elif seg.name == "PV2":
            reason = seg.comp(3, 2) or seg.comp(3, 1)
            if reason:
                data["chief_complaint"] = reason
        elif seg.name == "DG1":
            code, text = seg.comp(3, 1), seg.comp(3, 2) or seg.comp(4, 1)
            if not code and not text:
                errors.append(
                    _error(
                        "DG1-3",
                        "required",
                        "诊断缺少编码和名称(DG1-3)",
                        "DG1-3 diagnosis has neither code nor text",
                    )
                )
                continue
            data["diagnoses"].append(
                DiagnosisRecord(
                    entry_key=f"DG1:{code or text}"[:96],
                    icd10=code[:32] or None,
                    text=text[:200] or None,
                    diagnosed_at=_time(seg, 5, errors),
                    kind=seg.comp(6, 1)[:16] or None,
                    refuted=seg.comp(21, 1).upper() == "D",
                )
            )
        elif seg.name == "OBR":
            order = seg.comp(3, 1) or seg.comp(2, 1) or head.control_id
            order_time = _time(seg, 7, errors)
        elif seg.name == "OBX":
            _obx(seg, data, order or head.control_id, order_time, errors)
    if head.trigger == "A11":
        data["status"] = "cancelled"
    if not data.get("visit_number"):
        if head.message_type == "ORU" and order:
            data["visit_number"] = f"LAB-{order}"[:64]
        else:
            errors.append(
                _error("PV1-19", "required", "缺少就诊号(PV1-19)", "PV1-19 visit number is missing")
            )
            return None
    if not org:
        return None
    if data.get("status") == "cancelled":
        data["diagnoses"] = [d.model_copy(update={"refuted": True}) for d in data["diagnoses"]]
    try:
        return EncounterRecord.model_validate(data)
    except Exception as exc:
        errors.append(_error("message", "invalid", f"内容无效:{exc}", f"invalid content: {exc}"))
        return None


def _pid(seg: _Fields, data: dict[str, Any], errors: list[RecordError]) -> None:
    for rep in seg.reps(3):
        value = seg.comp(3, 1, rep)
        kind = seg.comp(3, 5, rep)
        if not value:
            continue
        if valid_resident_id(value) and "id_number" not in data:
            data["id_number"], data["id_type"] = value.upper(), "1"
        elif kind == "MR" or "patient_number" not in data:
            data["patient_number"] = value[:64]
    name = seg.comp(5, 1) + seg.comp(5, 2)
    if name:
        data["patient_name"] = name[:40]
    birth = seg.comp(7, 1)
    if birth:
        try:
            moment = hl7_time(birth)
            data["birth_date"] = moment.date() if moment else None
        except ValueError:
            errors.append(
                _error(
                    "PID-7",
                    "invalid_date",
                    f"出生日期无效:{birth}",
                    f"PID-7 birth date is not a valid date: {birth}",
                )
            )
    sex = seg.comp(8, 1).upper()
    if sex:
        if sex in ("M", "F", "1", "2"):
            data["sex"] = {"M": "1", "F": "2"}.get(sex, sex)
        elif sex not in ("U", "O", "A", "N"):
            errors.append(
                _error(
                    "PID-8",
                    "invalid_code",
                    f"性别代码无效:{sex}",
                    f"PID-8 sex code is not valid: {sex}",
                )
            )
    for rep in seg.reps(11):
        code = seg.comp(11, 9, rep)
        if code.isdigit() and len(code) >= 6:
            data["address_code"] = code[:12]
        detail = (seg.comp(11, 1, rep) + seg.comp(11, 2, rep)).strip()
        if detail:
            data["address_detail"] = detail[:100]
        break
    phone = seg.comp(13, 1) or seg.comp(13, 12)
    if phone:
        data["phone"] = phone[:20]


def _pv1(seg: _Fields, data: dict[str, Any], errors: list[RecordError]) -> None:
    data["encounter_class"] = CLASSES.get(seg.comp(2, 1).upper())
    department = seg.comp(3, 1) or seg.comp(10, 1)
    if department:
        data["department"] = department[:64]
    doctor = seg.comp(7, 2) + seg.comp(7, 3)
    if doctor:
        data["doctor_name"] = doctor[:40]
    visit = seg.comp(19, 1)
    if visit:
        data["visit_number"] = visit[:64]
    data["visit_time"] = _time(seg, 44, errors)


def _obx(
    seg: _Fields,
    data: dict[str, Any],
    order: str,
    order_time: datetime | None,
    errors: list[RecordError],
) -> None:
    code, name = seg.comp(3, 1), seg.comp(3, 2)
    value = unescape(seg.field(5)).replace("^", " ").strip()
    if code in TEMPERATURE or "体温" in name:
        try:
            celsius = float(value)
        except ValueError:
            errors.append(
                _error(
                    "OBX-5",
                    "invalid_number",
                    f"体温不是数字:{value}",
                    f"OBX-5 temperature is not a number: {value}",
                )
            )
            return
        if seg.comp(6, 1).lower() in ("[degf]", "degf", "°f"):
            celsius = (celsius - 32) * 5 / 9
        if 25 <= celsius <= 45:
            data["temperature_c"] = round(celsius, 1)
        else:
            errors.append(
                _error(
                    "OBX-5",
                    "out_of_range",
                    f"体温 {value} 不合理",
                    f"temperature {value} is implausible",
                    "warning",
                )
            )
        return
    if code in COMPLAINT:
        data["chief_complaint"] = value
        return
    flags = {f.upper() for f in seg.reps(8)}
    positive = True if flags & POSITIVE_FLAGS else (False if flags & NEGATIVE_FLAGS else None)
    number = None
    if seg.comp(2, 1) in ("NM", "SN"):
        try:
            number = float(value)
        except ValueError:
            number = None
    data["labs"].append(
        LabRecord(
            result_key=f"{order}:{code or name}:{seg.field(4)}"[:128],
            test_code=code[:64] or None,
            test_name=name[:128] or None,
            result_text=value[:200] or None,
            value_num=number,
            unit=seg.comp(6, 1)[:32] or None,
            positive=positive,
            status={"F": "final", "C": "corrected", "P": "preliminary"}.get(seg.comp(11, 1)),
            observed_at=_time(seg, 14, errors) or order_time,
        )
    )


# --------------------------------------------------------------------------- acknowledgements

ERROR_CODES = {
    "required": ("101", "Required field missing"),
    "invalid_time": ("102", "Data type error"),
    "invalid_date": ("102", "Data type error"),
    "invalid_number": ("102", "Data type error"),
    "invalid_code": ("103", "Table value not found"),
    "unsupported_message": ("200", "Unsupported message type"),
    "unsupported_version": ("203", "Unsupported version id"),
    "unknown_organisation": ("204", "Unknown key identifier"),
    "no_header": ("100", "Segment sequence error"),
    "unparseable": ("100", "Segment sequence error"),
    "processing_failed": ("207", "Application internal error"),
}
#: Errors that reject the message outright (AR) rather than report an error in it (AE).
REJECTING = frozenset(
    {
        "no_header",
        "unparseable",
        "unsupported_message",
        "unsupported_version",
        "unknown_organisation",
    }
)


def ack_code(status: str, errors: list[dict[str, Any]]) -> str:
    """AA for accepted and duplicate messages, AR when the message itself is refused
    (unreadable, unsupported, unknown sender), AE for errors in its content."""
    if status in ("accepted", "duplicate"):
        return "AA"
    if any(e.get("code") in REJECTING for e in errors):
        return "AR"
    return "AE"


def build_ack(
    head: Header, code: str, text: str, errors: list[dict[str, Any]], control_id: str
) -> str:
    """The ACK message (ER7, segments ended by CR)."""
    now = datetime.now(ZoneInfo(get_settings().timezone)).strftime("%Y%m%d%H%M%S")
    version = head.version if head.version in SUPPORTED_VERSIONS else "2.5"
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                "YIFANG",
                escape(head.receiving_facility or "CDC"),
                escape(head.sending_app),
                escape(head.sending_facility),
                now,
                "",
                f"ACK^{escape(head.trigger)}^ACK",
                control_id,
                "P",
                version,
            ]
        ),
        "|".join(["MSA", code, escape(head.control_id), escape(text[:200])]),
    ]
    for e in errors[:20]:
        number, label = ERROR_CODES.get(str(e.get("code")), ("207", "Application internal error"))
        location = str(e.get("location", ""))
        seg, _, field_no = location.partition("-")
        loc = f"{seg}^1^{field_no}" if field_no.isdigit() else escape(location)
        severity = "W" if e.get("severity") == "warning" else "E"
        message = f"{e.get('message_zh', '')} / {e.get('message_en', '')}"
        segments.append(
            "|".join(
                ["ERR", "", loc, f"{number}^{label}^HL70357", severity, "", "", "", escape(message)]
            )
        )
    return "\r".join(segments) + "\r"


def _decode(data: bytes) -> str:
    head = data[:512]
    if b"GB18030" in head.upper() or b"GBK" in head.upper() or b"GB2312" in head.upper():
        return data.decode("gb18030", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def handle_message(
    text: str, source: str = "hl7-mllp", actor: str = "mllp"
) -> tuple[str, Received]:
    """Receive one message in its own transaction and return the ACK to send back."""
    head = read_header(text)
    with session_scope() as session:
        received = receive(
            session, source=source, raw=text, parse=lambda: parse_hl7(text), actor=actor
        )
        message = received.message
        code = ack_code(message.status, message.errors)
        if message.status == "duplicate":
            note = f"duplicate of message {message.duplicate_of_id}; nothing changed"
        elif message.status == "accepted":
            figures = received.report.as_dict() if received.report else {}
            note = (
                f"accepted: {figures.get('encounters', 0)} encounter(s), "
                f"{figures.get('drafts', 0)} draft card(s)"
            )
        else:
            note = f"{message.status}: {len(message.errors)} error(s)"
        ack = build_ack(head, code, note, [e for e in message.errors], f"ACK{message.id}")
    return ack, received


def ingest_file(text: str, actor: str = "file") -> Iterator[tuple[str, Received]]:
    """Receive every message of an HL7 file; yields each message's ACK and outcome."""
    for message in split_messages(text):
        yield handle_message(message, source="hl7-file", actor=actor)


# --------------------------------------------------------------------------- MLLP server


class MLLPServer:
    """An asyncio MLLP listener: each framed message is received (in a worker thread, in its
    own transaction) and answered with its ACK on the same connection.

    ``max_bytes`` bounds one message (a sender that never ends a frame is cut off); frames
    are answered in order per connection; many connections are served at once.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2575,
        handler: Callable[[str], tuple[str, Received]] = handle_message,
        max_bytes: int = 10_000_000,
        idle_seconds: float = 600.0,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        """Stop listening and close the server."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buffer = b""
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), self.idle_seconds)
                except TimeoutError:
                    break
                if not chunk:
                    break
                buffer += chunk
                while True:
                    end = buffer.find(FS + CR)
                    if end < 0:
                        break
                    start = buffer.find(VT)
                    frame = buffer[start + 1 if 0 <= start < end else 0 : end]
                    buffer = buffer[end + 2 :]
                    text = _decode(frame)
                    try:
                        ack, _ = await asyncio.to_thread(self.handler, text)
                    except Exception as exc:  # keep the connection; tell the sender
                        log.exception("MLLP message from %s failed", peer)
                        ack = build_ack(
                            read_header(text),
                            "AE",
                            f"internal error: {exc}",
                            [
                                {
                                    "code": "processing_failed",
                                    "location": "message",
                                    "message_zh": "系统内部错误",
                                    "message_en": str(exc),
                                }
                            ],
                            f"ACKERR{int(utcnow().timestamp())}",
                        )
                    writer.write(VT + ack.encode("utf-8") + FS + CR)
                    await writer.drain()
                if len(buffer) > self.max_bytes:
                    log.warning(
                        "MLLP frame from %s exceeds %d bytes: connection closed",
                        peer,
                        self.max_bytes,
                    )
                    break
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def frame(message: str) -> bytes:
    """A message in its MLLP envelope (UTF-8)."""
    return VT + message.encode("utf-8") + FS + CR
