"""The e-mail letter sent with a statement, rendered from Jinja2 templates.

Each language has `templates/subject.<language>.j2` and
`templates/letter.<language>.j2`. The templates are plain text: nothing is
HTML-escaped, and a variable missing from the context raises an error instead
of printing as an empty string.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jinja2

import services
from services.formatting import (
    format_money,
    format_period,
    format_period_reference,
    language_of,
    plural_category,
)
from services.statements import CurrencyTotal, Statement

# The folder sits next to the `services` package both in a source checkout and
# in site-packages, where it is installed as package data.
TEMPLATES_DIR = Path(services.__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Letter:
    subject: str
    body: str


@dataclass(frozen=True)
class LetterTotal:
    """One currency's gross total as the letter prints it.

    `amount` is the absolute value when `is_credit` is true, because the
    templates word a negative total as a credit in the client's favour.
    """

    currency: str
    gross: str
    amount: str
    is_credit: bool


def render_letter(statement: Statement, *, sender_name: str) -> Letter:
    """Render the subject and body in the client's language.

    `sender_name` is the person or team signing the letter, and an empty
    string leaves the signature to the company name.
    """
    language = language_of(statement.client.language)
    context = {
        "language": language,
        "client": statement.client,
        "company": statement.company,
        "period": format_period(statement.period, language),
        "period_reference": format_period_reference(statement.period, language),
        "document_count": statement.document_count,
        "totals": [_letter_total(total, language) for total in statement.totals],
        "sender_name": sender_name.strip(),
    }

    environment = _environment()
    subject = environment.get_template(f"subject.{language}.j2").render(context)
    body = environment.get_template(f"letter.{language}.j2").render(context)
    # A subject is one header line, whatever the template or a name contains.
    return Letter(subject=" ".join(subject.split()), body=body)


def _letter_total(total: CurrencyTotal, language: str) -> LetterTotal:
    is_credit = total.gross < 0
    return LetterTotal(
        currency=total.currency,
        gross=format_money(total.gross, total.currency, language),
        amount=format_money(abs(total.gross), total.currency, language),
        is_credit=is_credit,
    )


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - plain-text e-mail, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["plural"] = _plural
    return environment


@jinja2.pass_context
def _plural(context: jinja2.runtime.Context, count: int, **forms: str) -> str:
    """Pick the word form for `count` by the CLDR plural rules of the letter's language.

    `{{ n | plural(one="dokumentas", few="dokumentai", other="dokumentų") }}`
    gives "21 dokumentas", "22 dokumentai" and "12 dokumentų"; a category
    without its own form uses `other`.
    """
    category = plural_category(count, context["language"])
    return forms.get(category, forms["other"])
