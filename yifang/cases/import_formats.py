"""Reading card files row by row: CSV (UTF-8, UTF-8 with BOM, GB18030), XLSX and JSON Lines.

A file is first inspected whole without being held in memory (:func:`inspect_file`): one
pass computes its SHA-256 and proves it decodes in the detected encoding, so an unreadable
file is refused with one clear error before anything is stored. Then a reader streams its
rows in chunks of raw strings (:meth:`RowReader.chunks`), each row with its number as a
spreadsheet shows it (the header is row 1 of a CSV or XLSX; a JSON Lines row is its line).

Rows a reader cannot take apart (a CSV line with the wrong number of fields, a line of
invalid JSON) are handed back as problems of that row, not of the file: they are
quarantined like any other invalid row.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

BLOCK = 1 << 20  # bytes read at a time
SAMPLE = 64 * 1024  # bytes looked at to recognise the format
MAX_FIELD = 1 << 20  # a CSV field longer than this (characters) means a broken file

ROW_PROBLEM_FIELD = "_row"


class ImportFileError(Exception):
    """A file that cannot be imported at all; nothing was stored.

    ``code`` is stable (``file.empty`` …); the messages say what is wrong and what to do.
    """

    code = "file.unreadable"

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.message_zh = message_zh
        self.message_en = message_en


class UnsupportedFormatError(ImportFileError):
    """Not CSV, XLSX or JSON Lines (e.g. an old .xls, a PDF, a binary file)."""

    code = "file.format"


class EmptyFileError(ImportFileError):
    """The file holds no bytes, or only blank lines."""

    code = "file.empty"


class NoDataRowsError(ImportFileError):
    """A header but no data rows."""

    code = "file.no_rows"


class UndecodableFileError(ImportFileError):
    """Text that is neither UTF-8 nor GB18030."""

    code = "file.encoding"


class CorruptFileError(ImportFileError):
    """A damaged or truncated file (e.g. an XLSX cut short)."""

    code = "file.corrupt"


class MissingColumnsError(ImportFileError):
    """Required columns are absent from the header."""

    code = "file.columns"


@dataclass(frozen=True)
class FileInfo:
    """What :func:`inspect_file` found: format (csv, xlsx, jsonl), text encoding, size in
    bytes and SHA-256 of the content."""

    path: Path
    file_format: str
    encoding: str | None
    size: int
    sha256: str


@dataclass
class Chunk:
    """Up to ``n`` rows: their numbers, raw values (column → list of str/None, in the
    reader's header order) and the rows that could not be taken apart."""

    row_numbers: list[int]
    columns: dict[str, list[str | None]]
    problems: list[tuple[int, dict[str, Any], str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_numbers)


def _utf8_valid(path: Path, offset: int) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with path.open("rb") as fh:
        fh.seek(offset)
        try:
            while block := fh.read(BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _scan(path: Path, encoding: str | None, offset: int) -> tuple[str, bool]:
    """SHA-256 of the file and whether it decodes in ``encoding`` (None = don't check)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)("strict") if encoding else None
    ok = True
    with path.open("rb") as fh:
        head = fh.read(offset)
        digest.update(head)
        while block := fh.read(BLOCK):
            digest.update(block)
            if decoder is not None and ok:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    ok = False
        if decoder is not None and ok:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                ok = False
    return digest.hexdigest(), ok


def _sniff_format(path: Path, head: bytes) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedFormatError(
            "不支持旧版 Excel(.xls)文件,请另存为 .xlsx 或 CSV 后再导入",
            "old Excel (.xls) files are not supported; save as .xlsx or CSV and import again",
        )
    if head.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"\x1f\x8b", b"Rar!", b"7z")):
        raise UnsupportedFormatError(
            "文件不是 CSV、XLSX 或 JSON Lines 格式",
            "the file is not CSV, XLSX or JSON Lines",
        )
    text_start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text_start.startswith(b"{"):
        return "jsonl"
    return "csv"


def inspect_file(path: Path) -> FileInfo:
    """Recognise the format and encoding of ``path`` and hash it, reading it once (twice
    for a GB18030 file). Raises an :class:`ImportFileError` for a file that cannot be
    imported."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(SAMPLE)
    except OSError as exc:
        raise ImportFileError(
            f"无法读取文件:{exc.strerror or exc}", f"cannot read the file: {exc}"
        ) from exc
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise EmptyFileError("文件为空", "the file is empty")
    file_format = _sniff_format(path, head)
    if file_format == "xlsx":
        digest, _ = _scan(path, None, 0)
        if not zipfile.is_zipfile(path):
            raise CorruptFileError(
                "XLSX 文件已损坏或不完整(可能未下载完)",
                "the XLSX file is damaged or truncated (perhaps an incomplete download)",
            )
        return FileInfo(path, "xlsx", None, size, digest)
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedFormatError(
            "文件不是文本格式(CSV / JSON Lines)", "the file is not text (CSV or JSON Lines)"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, offset = "utf-16", 0
    elif head.startswith(b"\xef\xbb\xbf"):
        encoding, offset = "utf-8-sig", 3
    else:
        encoding, offset = "utf-8", 0
    digest, ok = _scan(path, encoding if encoding != "utf-8-sig" else "utf-8", offset)
    if not ok and encoding == "utf-8":
        _, ok = _scan(path, "gb18030", 0)
        encoding = "gb18030"
    if not ok:
        raise UndecodableFileError(
            "文件编码无法识别:请保存为 UTF-8 或 GB18030 编码后再导入",
            "the file's text encoding is not UTF-8 or GB18030; save it in one of them",
        )
    return FileInfo(path, file_format, encoding, size, digest)


def _text(value: Any) -> str | None:
    """A cell as text: dates ISO, whole numbers without '.0', empty as None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class RowReader:
    """Streams the rows of one inspected file. ``header`` is read on opening; ``position``
    and ``total`` measure progress (bytes, or rows for XLSX; ``total`` may be None)."""

    header: list[str]
    position: int = 0
    total: int | None = None

    def chunks(self, size: int) -> Iterator[Chunk]:  # pragma: no cover - interface
        """Chunks of at most ``size`` rows, in file order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dedupe_header(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = (raw or "").strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


class CsvReader(RowReader):
    """CSV with a header row; the delimiter (comma, tab or semicolon) is read from it."""

    def __init__(self, info: FileInfo) -> None:
        self._raw: IO[bytes] = info.path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding=info.encoding or "utf-8", newline="")
        self.total = info.size
        csv.field_size_limit(MAX_FIELD)
        first = self._text.readline()
        while first and not first.strip():
            first = self._text.readline()
        delimiter = max((",", "\t", ";"), key=first.count)
        self._dialect_delimiter = delimiter
        header = next(csv.reader([first], delimiter=delimiter), [])
        self.header = _dedupe_header([h.lstrip("\ufeff") for h in header])
        self._reader = csv.reader(self._text, delimiter=delimiter)
        self._row_number = 1

    def chunks(self, size: int) -> Iterator[Chunk]:
        width = len(self.header)
        reader = self._reader
        while True:
            numbers: list[int] = []
            rows: list[list[str]] = []
            problems: list[tuple[int, dict[str, Any], str, str, str]] = []
            try:
                for row in reader:
                    self._row_number += 1
                    if len(row) != width:
                        if not any(cell.strip() for cell in row):
                            continue  # a blank line
                        if len(row) > width and not any(c.strip() for c in row[width:]):
                            row = row[:width]
                        else:
                            raw: dict[str, Any] = dict(zip(self.header, row, strict=False))
                            if len(row) > width:
                                raw["_extra"] = row[width:]
                            problems.append(
                                (
                                    self._row_number,
                                    raw,
                                    "row.field_count",
                                    f"该行有 {len(row)} 列,表头有 {width} 列",
                                    f"the row has {len(row)} fields, the header {width}",
                                )
                            )
                            continue
                    numbers.append(self._row_number)
                    rows.append(row)
                    if len(rows) + len(problems) >= size:
                        break
            except csv.Error as exc:
                raise CorruptFileError(
                    f"CSV 文件第 {self._row_number} 行附近格式错误:{exc}",
                    f"the CSV file is malformed near row {self._row_number}: {exc}",
                ) from exc
            except UnicodeDecodeError as exc:
                raise UndecodableFileError(
                    "文件中有无法解码的字节", f"the file holds undecodable bytes: {exc}"
                ) from exc
            self.position = self._raw.tell()
            if not rows and not problems:
                return
            columns: dict[str, list[str | None]] = (
                {
                    name: list(values)
                    for name, values in zip(self.header, zip(*rows, strict=True), strict=True)
                }
                if rows
                else {name: [] for name in self.header}
            )
            yield Chunk(numbers, columns, problems)

    def close(self) -> None:
        self._text.close()


class JsonLinesReader(RowReader):
    """One JSON object per line; the columns are the keys seen so far."""

    def __init__(self, info: FileInfo) -> None:
        self._raw: IO[bytes] = info.path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding=info.encoding or "utf-8")
        self.total = info.size
        self._line = 0
        self._pending: tuple[int, dict[str, Any]] | None = None
        self.header = []
        for line in self._text:
            self._line += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                raise UnsupportedFormatError(
                    "文件不是 JSON Lines 格式(每行一个 JSON 对象)",
                    "the file is not JSON Lines (one JSON object per line)",
                )
            self.header = [str(k) for k in obj]
            self._pending = (self._line, obj)
            break

    def chunks(self, size: int) -> Iterator[Chunk]:
        while True:
            numbers: list[int] = []
            objects: list[dict[str, Any]] = []
            problems: list[tuple[int, dict[str, Any], str, str, str]] = []
            if self._pending is not None:
                numbers.append(self._pending[0])
                objects.append(self._pending[1])
                self._pending = None
            try:
                while len(objects) + len(problems) < size:
                    line = self._text.readline()
                    if not line:
                        break
                    self._line += 1
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        obj = None
                    if not isinstance(obj, dict):
                        problems.append(
                            (
                                self._line,
                                {"line": line.rstrip("\r\n")[:2000]},
                                "row.invalid_json",
                                "该行不是有效的 JSON 对象",
                                "the line is not a valid JSON object",
                            )
                        )
                        continue
                    for key in obj:
                        if str(key) not in self.header:
                            self.header.append(str(key))
                    numbers.append(self._line)
                    objects.append(obj)
            except UnicodeDecodeError as exc:
                raise UndecodableFileError(
                    "文件中有无法解码的字节", f"the file holds undecodable bytes: {exc}"
                ) from exc
            self.position = self._raw.tell()
            if not objects and not problems:
                return
            columns = {name: [_text(o.get(name)) for o in objects] for name in self.header}
            yield Chunk(numbers, columns, problems)

    def close(self) -> None:
        self._text.close()


class XlsxReader(RowReader):
    """The first worksheet of an XLSX workbook, streamed (openpyxl read-only mode)."""

    def __init__(self, info: FileInfo) -> None:
        import openpyxl

        try:
            self._book = openpyxl.load_workbook(info.path, read_only=True, data_only=True)
            sheet = self._book.worksheets[0]
            self.total = sheet.max_row
            self._rows = sheet.iter_rows(values_only=True)
            self._row_number = 0
            header: list[str] = []
            for values in self._rows:
                self._row_number += 1
                if any(v is not None and str(v).strip() for v in values):
                    header = [_text(v) or "" for v in values]
                    break
        except ImportFileError:
            raise
        except Exception as exc:  # zipfile, XML and openpyxl errors alike
            raise CorruptFileError(
                "XLSX 文件已损坏或不完整,无法读取", f"the XLSX file is damaged or truncated: {exc}"
            ) from exc
        while header and not header[-1]:
            header.pop()
        self.header = _dedupe_header(header)

    def chunks(self, size: int) -> Iterator[Chunk]:
        width = len(self.header)
        while True:
            numbers: list[int] = []
            rows: list[list[str | None]] = []
            try:
                for values in self._rows:
                    self._row_number += 1
                    cells = [_text(v) for v in values[:width]]
                    if not any(c is not None and c.strip() for c in cells):
                        continue
                    cells += [None] * (width - len(cells))
                    numbers.append(self._row_number)
                    rows.append(cells)
                    if len(rows) >= size:
                        break
            except Exception as exc:
                raise CorruptFileError(
                    f"XLSX 文件在第 {self._row_number} 行附近损坏",
                    f"the XLSX file is damaged near row {self._row_number}: {exc}",
                ) from exc
            self.position = self._row_number
            if not rows:
                return
            columns = {
                name: list(v) for name, v in zip(self.header, zip(*rows, strict=True), strict=True)
            }
            yield Chunk(numbers, columns)

    def close(self) -> None:
        self._book.close()


def open_reader(info: FileInfo) -> RowReader:
    """A reader for an inspected file."""
    if info.file_format == "xlsx":
        return XlsxReader(info)
    if info.file_format == "jsonl":
        return JsonLinesReader(info)
    return CsvReader(info)
