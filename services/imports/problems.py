"""Problems with an input file as a whole, worded as sentences of their own.

`ImportProblem` reads "FIELD 'VALUE' is invalid: expected ...", which fits a
field of a row or an element. An empty file, XML that is not well-formed or
bytes in another encoding have no such field, so these print their own text.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.errors import ImportProblem


@dataclass(frozen=True)
class EmptyFileProblem(ImportProblem):
    """A file with no content at all: 0 bytes, or only whitespace."""

    def __str__(self) -> str:
        return f"{self.file} is empty: expected {self.expected}"


def empty_file(file: str, expected: str) -> EmptyFileProblem:
    return EmptyFileProblem(file, "", "file", "", expected)


@dataclass(frozen=True)
class FileProblem(ImportProblem):
    """A problem at a place in a file; `expected` is the whole message."""

    def __str__(self) -> str:
        return f"{self.file}, {self.location}: {self.expected}"


def file_problem(file: str, location: str, field: str, message: str) -> FileProblem:
    return FileProblem(file, location, field, "", message)
