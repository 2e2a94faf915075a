"""Statement address parsing: separators, validation, de-duplication."""

from __future__ import annotations

import pytest

from services.addresses import InvalidAddressError, parse_addresses
from services.errors import InvalidEmailError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("  ", []),
        ("apskaita@pavyzdys.lt", ["apskaita@pavyzdys.lt"]),
        ("a@x.lt;b@x.lt", ["a@x.lt", "b@x.lt"]),
        (" a@x.lt ; b@x.lt ;", ["a@x.lt", "b@x.lt"]),
        ("a@x.lt, b@x.lt", ["a@x.lt", "b@x.lt"]),
        ("a@x.lt b@x.lt\tc@x.lt", ["a@x.lt", "b@x.lt", "c@x.lt"]),
        ("Jonas@X.lt;jonas@x.LT;b@x.lt", ["Jonas@X.lt", "b@x.lt"]),
        ("šarūnas@ąžuolas.lt", ["šarūnas@ąžuolas.lt"]),
        ("Jonas <j@b.lt>", ["j@b.lt"]),
        ("Jonas Jonaitis <j@b.lt>; b@x.lt", ["j@b.lt", "b@x.lt"]),
        ('"Jonaitis, Jonas" <j@b.lt>, J@B.lt', ["j@b.lt"]),
    ],
    ids=[
        "empty",
        "blank",
        "one",
        "semicolon",
        "spaces-and-trailing",
        "comma",
        "whitespace",
        "case-duplicate",
        "lithuanian-letters",
        "named",
        "named-and-plain",
        "quoted-name-with-comma",
    ],
)
def test_parse_addresses_splits_and_deduplicates(
    text: str, expected: list[str]
) -> None:
    assert parse_addresses(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["apskaita", "apskaita@", "@pavyzdys.lt", "a@b", "a@@b.lt", "a@localhost"],
    ids=["no-at", "no-domain", "no-local-part", "no-dot", "two-ats", "localhost"],
)
def test_parse_addresses_names_the_invalid_one(bad: str) -> None:
    with pytest.raises(InvalidAddressError) as raised:
        parse_addresses(f"ok@pavyzdys.lt;{bad}")

    message = str(raised.value)
    assert raised.value.address == bad
    assert f"invalid e-mail address {bad!r}" in message
    assert "accounts@example.com" in message
    assert "ok@pavyzdys.lt" not in message


@pytest.mark.parametrize(
    "bad",
    ["Jonas <j@b>", "Jonas <j@b.lt", "Jonas j@b.lt>", "a@x.lt <j@b.lt>", "<>"],
    ids=["invalid-address", "unclosed", "unopened", "address-as-name", "empty"],
)
def test_parse_addresses_names_whole_named_entry(bad: str) -> None:
    with pytest.raises(InvalidEmailError) as raised:
        parse_addresses(f"ok@pavyzdys.lt; {bad}")

    assert f"invalid e-mail address {bad!r}" in str(raised.value)
