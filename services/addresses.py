"""E-mail addresses for statements: parsing, validation and de-duplication."""

from __future__ import annotations

import re
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from services.errors import InvalidEmailError

EXAMPLE = "accounts@example.com"

# `;` and `,` separate entries unless they are inside a quoted display name.
_ENTRY_SEPARATORS = re.compile(r'[;,](?=(?:[^"]*"[^"]*")*[^"]*$)')
# An entry with a display name, as in "Jonas Jonaitis <jonas@example.com>".
_NAMED_ADDRESS = re.compile(r'^(?:"[^"]*"|[^"<>@]+)?\s*<[^<>]*>$')
_WHITESPACE = re.compile(r"\s+")


class InvalidAddressError(InvalidEmailError):
    """An invalid address, with the text that held it and the validator's reason."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(
            f"invalid e-mail address {address!r}: {reason} Expected an address such "
            f"as {EXAMPLE}; separate several addresses with ';'"
        )


def parse_addresses(text: str) -> list[str]:
    """Split `text` into validated addresses, keeping the first of each spelling.

    Addresses are separated by `;`, `,` or whitespace. An entry such as
    `Jonas <jonas@example.com>` gives the address between the angle brackets.
    Two addresses that differ only in letter case count as one. Domains are
    checked for syntax only, with no DNS lookup. Raise `InvalidAddressError`
    naming the first invalid entry.
    """
    addresses: list[str] = []
    seen: set[str] = set()
    for candidate in _candidates(text):
        folded = fold_address(candidate)
        if folded in seen:
            continue
        seen.add(folded)
        addresses.append(candidate)
    return addresses


def _candidates(text: str) -> list[str]:
    """Return the checked address of every entry in `text`, in order."""
    candidates: list[str] = []
    for entry in _ENTRY_SEPARATORS.split(text):
        entry = entry.strip()
        if "<" in entry or ">" in entry or '"' in entry:
            candidates.append(_named_address(entry))
            continue
        for word in _WHITESPACE.split(entry):
            if word:
                check_address(word)
                candidates.append(word)
    return candidates


def _named_address(entry: str) -> str:
    _, address = parseaddr(entry)
    if not _NAMED_ADDRESS.match(entry) or not address:
        raise InvalidAddressError(
            entry, "An address with a name must be written as Name <address>."
        )
    try:
        check_address(address)
    except InvalidAddressError as error:
        raise InvalidAddressError(entry, error.reason) from error
    return address


def check_address(address: str) -> None:
    """Raise `InvalidAddressError` unless `address` is a syntactically valid address."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddressError(address, str(error)) from error


def fold_address(address: str) -> str:
    """Return the form two addresses are compared in: lower-cased."""
    return address.lower()
