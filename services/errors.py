"""The product's exceptions.

InvoiceListsError            base; `str()` is the message shown to a person
├── ConfigurationError       a missing or invalid setting
├── SchemaOutdatedError      the database needs `invoices db upgrade`
├── ImportRejectedError      an input file with errors; nothing was stored
├── NotFoundError            an unknown client, month or task
├── InvalidStateError        the action does not apply in the current state
├── InvalidEmailError        an address that is not a valid e-mail address
└── DeliveryError            the mail backend rejected or lost a message
"""

from __future__ import annotations

from dataclasses import dataclass


class InvoiceListsError(Exception):
    """Base of every error the product reports to a person."""


class ConfigurationError(InvoiceListsError):
    pass


class SchemaOutdatedError(InvoiceListsError):
    pass


class NotFoundError(InvoiceListsError):
    pass


class InvalidStateError(InvoiceListsError):
    pass


class InvalidEmailError(InvoiceListsError):
    pass


@dataclass(frozen=True)
class ImportProblem:
    """One error in an input file: its place, field, value and what is expected."""

    file: str
    location: str
    field: str
    value: str
    expected: str

    def __str__(self) -> str:
        return (
            f"{self.file}, {self.location}: {self.field} {self.value!r} is invalid: "
            f"expected {self.expected}"
        )


class ImportRejectedError(InvoiceListsError):
    """An input file with one or more errors; nothing from it was stored."""

    def __init__(self, file: str, problems: list[ImportProblem]) -> None:
        self.file = file
        self.problems = problems
        count = len(problems)
        lines = "\n".join(f"  {problem}" for problem in problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(
            f"{file} was rejected with {count} {noun}; nothing was imported:\n{lines}"
        )


class DeliveryError(InvoiceListsError):
    """A message the mail backend did not accept.

    `retryable` is true for rate limits and server errors, and `unknown` is true
    when the request may have reached the service but no response came back.
    `account` is true when the rejection concerns the API key or the sender, so
    every other message would be rejected the same way.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        unknown: bool = False,
        retry_after: float | None = None,
        account: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.unknown = unknown
        self.retry_after = retry_after
        self.account = account
