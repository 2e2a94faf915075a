"""Read a CSV file with a fixed header into rows numbered by their file line.

Files are read as UTF-8, or as windows-1257 when the bytes are not valid
UTF-8, because the Lithuanian ERPs that export i.SAF in windows-1257 export
their CSV files in it too. A UTF-8 file with a few damaged bytes is rejected
with their lines instead of being read as windows-1257. Fields are separated
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
        problems.extend(_stray_byte_problem(path.name, data, at) for at in stray)
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
# A file with more stray bytes than this is taken as windows-1257, not UTF-8.
MAX_STRAY_BYTES = 20


def _stray_bytes_in_utf8(data: bytes) -> list[int]:
    """Return the offsets of the bytes that keep mostly-UTF-8 data from decoding.

    Lithuanian text in windows-1257 has one byte per letter followed by
    ASCII, which almost never forms a UTF-8 sequence. So when most non-ASCII
    bytes do form UTF-8 characters, the file was meant as UTF-8 and a few
    bytes were damaged, and reading it as windows-1257 would garble every
    letter. An empty list means the data is not UTF-8 with stray bytes.
    """
    characters = 0
    stray: list[int] = []
    position = 0
    while position < len(data):
        if data[position] < 0x80:
            position += 1
            continue
        match = _UTF8_SEQUENCE.match(data, position)
        if match is None:
            stray.append(position)
            if len(stray) > MAX_STRAY_BYTES:
                return []
            position += 1
            continue
        characters += 1
        position = match.end()
    return stray if characters > len(stray) else []


def _stray_byte_problem(file: str, data: bytes, at: int) -> ImportProblem:
    line = data[:at].count(b"\n") + 1
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    return ImportProblem(
        file,
        f"line {line}",
        "bytes",
        f"{data[at : at + 1].hex()} at byte {column} of the line",
        "UTF-8 text like the rest of the file; retype the character there "
        "and save the file as CSV UTF-8",
    )


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
