"""The split of the text after `/invoices` into a subcommand and its words.

The permission check and the command handler both read the text through this
module, so they always agree on which subcommand a request names.
"""

from __future__ import annotations

import shlex


def split_words(text: str) -> list[str]:
    """Split like a shell, so quoted client names stay one word."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def subcommand_of(text: str) -> tuple[str, list[str]]:
    """Return the lower-cased subcommand, `help` when there is none, and the rest."""
    words = split_words(text)
    if not words:
        return "help", []
    return words[0].lower(), words[1:]
