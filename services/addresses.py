"""E-mail addresses for statements: parsing, validation and de-duplication."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from services.errors import InvalidEmailError

# Commas, semicolons and whitespace never occur in an unquoted address, so any
# run of them separates two addresses. Quoted local parts are not supported.
_SEPARATORS = re.compile(r"[;,\s]+")


def parse_addresses(text: str) -> list[str]:
    """Split `text` into validated addresses, keeping the first of each spelling.

    Addresses are separated by `;`, `,` or whitespace. Two addresses that differ
    only in letter case count as one. Domains are checked for syntax only, with
    no DNS lookup. Raise `InvalidEmailError` naming the first invalid address.
    """
    addresses: list[str] = []
    seen: set[str] = set()
    for candidate in _SEPARATORS.split(text.strip()):
        if not candidate:
            continue
        check_address(candidate)
        folded = fold_address(candidate)
        if folded in seen:
            continue
        seen.add(folded)
        addresses.append(candidate)
    return addresses


def check_address(address: str) -> None:
    """Raise `InvalidEmailError` unless `address` is a syntactically valid address."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmailError(
            f"invalid e-mail address {address!r}: {error} Expected an address such "
            "as accounts@example.com; separate several addresses with ';'"
        ) from error


def fold_address(address: str) -> str:
    """Return the form two addresses are compared in: lower-cased."""
    return address.lower()
