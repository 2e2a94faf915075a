"""Read a CSV file with a fixed header into rows numbered by their file line.

Files are read as UTF-8, or as windows-1257 when the bytes are not valid
UTF-8, because the Lithuanian ERPs that export i.SAF in windows-1257 export
their CSV files in it too. A file with some UTF-8 text and some bytes that are
not UTF-8 (damaged, or rows pasted from a windows-1257 file) is rejected with
their lines instead of being read as windows-1257. Fields are separated
by `,`, or by `;` when the header has `;` and no `,`, as Excel writes CSV with
Lithuanian settings.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.errors import ImportProblem
from services.imports.problems import empty_file
from services.imports.records import clean_text

# The encoding tried when a file is not valid UTF-8.
FALLBACK_ENCODING = "windows-1257"


@dataclass(frozen=True)
class CsvRow:
    """One record: the file line it starts on and its values by column name."""

    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return clean_text(self.values[column])


def read_rows(
    path: Path, columns: tuple[str, ...], problems: list[ImportProblem]
) -> Iterator[CsvRow]:
    """Yield the rows of a CSV file whose header names exactly `columns`.

    A byte order mark is accepted and blank lines are skipped. Problems with
    the encoding, the header or a row's field count go to `problems`, and the
    rows after a problem with the header or the encoding are not read. A file
    with a header and no rows yields nothing and has no problem.
    """
    file = path.name
    text = _read_text(path, problems)
    if text is None:
        return
    if not text.strip():
        header_row = ",".join(columns)
        problems.append(empty_file(file, f"a header row {header_row}, then rows"))
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader, None)
        if header is None or not _check_header(file, header, columns, problems):
            return
        names = [name.strip().lower() for name in header]
        line = reader.line_num + 1
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not any(value.strip() for value in fields):
                continue
            if len(fields) != len(names):
                problems.append(_field_count_problem(file, start, fields, names))
                continue
            yield CsvRow(start, dict(zip(names, fields, strict=True)))
    except csv.Error as error:
        problems.append(
            ImportProblem(
                file, f"line {reader.line_num}", "row", "", f"valid CSV: {error}"
            )
        )


def _read_text(path: Path, problems: list[ImportProblem]) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as error:
        problems.append(
            ImportProblem(
                path.name,
                str(path),
                "file",
                error.strerror or str(error),
                "a readable file",
            )
        )
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    stray = _stray_bytes_in_utf8(data)
    if stray:
        problems.extend(_stray_byte_problems(path.name, data, stray))
        return None
    try:
        return data.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.append(
            ImportProblem(
                path.name,
                f"line {line}",
                "bytes",
                data[error.start : error.start + 4].hex(" "),
                f"UTF-8 or {FALLBACK_ENCODING} text, but line {line} is neither; "
                "save the file as CSV UTF-8",
            )
        )
        return None


# A character of two to four bytes as UTF-8 writes it.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# Those characters as UTF-8 bytes: a quick test that can skip the scan.
_LITHUANIAN_UTF8 = re.compile(rb"[\xc2-\xc5][\x80-\xbf]|\xe2[\x80-\x83][\x80-\xbf]")
# Lines with stray bytes that are named one by one; the rest are counted.
MAX_STRAY_LINES = 20


def _is_lithuanian_text(character: str) -> bool:
    """Tell whether a character is one a Lithuanian file in UTF-8 would contain.

    These are the Latin letters with diacritics (U+00A0 to U+017F) and the
    quotes, dashes and currency signs (U+2000 to U+20CF). In windows-1257,
    two bytes that happen to form a UTF-8 character are almost always an
    uppercase letter before a quote or dash, such as "Ų“" (U+0613 as UTF-8),
    which is outside these ranges.
    """
    point = ord(character)
    return 0xA0 <= point <= 0x17F or 0x2000 <= point <= 0x20CF


def _stray_bytes_in_utf8(data: bytes) -> list[int]:
    """Return the offsets of the bytes that keep UTF-8 data from decoding.

    Data with even one Lithuanian letter or quote written as UTF-8 was written,
    at least in part, as UTF-8, so reading it as windows-1257 would garble those
    characters. For such data the stray bytes are returned and the file is
    rejected. An empty list means the data has no UTF-8 text.
    """
    if _LITHUANIAN_UTF8.search(data) is None:
        return []
    utf8_text = False
    stray: list[int] = []
    position = 0
    while position < len(data):
        if data[position] < 0x80:
            position += 1
            continue
        match = _UTF8_SEQUENCE.match(data, position)
        if match is None:
            stray.append(position)
            position += 1
            continue
        try:
            character = match.group().decode("utf-8")
        except UnicodeDecodeError:
            # An overlong form or a surrogate has the shape but is not UTF-8.
            stray.append(position)
            position += 1
            continue
        utf8_text = utf8_text or _is_lithuanian_text(character)
        position = match.end()
    return stray if utf8_text else []


def _stray_byte_problems(
    file: str, data: bytes, stray: list[int]
) -> list[ImportProblem]:
    """Name the first stray byte of each line, and count the lines past the limit."""
    problems: list[ImportProblem] = []
    lines: set[int] = set()
    line, counted = 1, 0
    for at in stray:
        line += data.count(b"\n", counted, at)
        counted = at
        if line in lines:
            continue
        lines.add(line)
        if len(lines) > MAX_STRAY_LINES:
            continue
        column = at - (data.rfind(b"\n", 0, at) + 1) + 1
        problems.append(
            ImportProblem(
                file,
                f"line {line}, byte {column}",
                "bytes",
                data[at : at + 1].hex(),
                "UTF-8 text, as the file has elsewhere; save the whole file as "
                "CSV UTF-8 from the program that made it, or retype the "
                "character there",
            )
        )
    if len(lines) > MAX_STRAY_LINES:
        problems.append(
            ImportProblem(
                file,
                f"{len(lines) - MAX_STRAY_LINES} more lines",
                "bytes",
                "",
                "UTF-8 text on those lines too",
            )
        )
    return problems


def _delimiter(text: str) -> str:
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    return ";" if ";" in header and "," not in header else ","


def _check_header(
    file: str,
    header: list[str],
    columns: tuple[str, ...],
    problems: list[ImportProblem],
) -> bool:
    names = [name.strip().lower() for name in header]
    missing = [column for column in columns if column not in names]
    unknown = [name for name in names if name not in columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    expected = "the header " + ",".join(columns)
    found = ",".join(header)
    for label, items in (
        ("missing", missing),
        ("unknown", unknown),
        ("repeated", repeated),
    ):
        if items:
            listed = ", ".join(repr(item) for item in items)
            problems.append(
                ImportProblem(
                    file,
                    "line 1",
                    "header",
                    found,
                    f"{expected}; {label} columns: {listed}",
                )
            )
    return not (missing or unknown or repeated)


def _field_count_problem(
    file: str, line: int, fields: list[str], names: list[str]
) -> ImportProblem:
    return ImportProblem(
        file,
        f"line {line}",
        "row",
        ",".join(fields),
        f"{len(names)} fields as in the header, found {len(fields)}; put values "
        "that contain ',' in double quotes",
    )
