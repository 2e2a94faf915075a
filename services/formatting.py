"""Numbers, money, dates, periods and labels in a client's language, through Babel.

Languages are `lt` and `en`; any other language code is formatted as `en`.
English follows British conventions (en_GB): "€1,234.56" and "30 Nov 2026".

Every space that Babel puts inside a number or between a number and its sign
is a no-break space, U+00A0: "1 234,56 €" in Lithuanian is "1\\xa0234,56\\xa0€".
CLDR has used both U+00A0 and the narrow U+202F for grouping in some locales
and versions, so U+202F is replaced by U+00A0 and the text stays the same
whichever CLDR data the installed Babel carries.
"""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_skeleton, get_month_names
from babel.numbers import format_currency, format_decimal, format_percent

from services.models import DocumentType
from services.periods import Period

LANGUAGES = ("lt", "en")
DEFAULT_LANGUAGE = "en"

NO_BREAK_SPACE = "\u00a0"
_NARROW_NO_BREAK_SPACE = "\u202f"

_LOCALES = {"lt": "lt", "en": "en_GB"}
# At least two decimals; more are printed if the amount has them, so that an
# amount is never rounded on its way to the page.
_AMOUNT_PATTERN = "#,##0.00"

_DOCUMENT_TYPE_LABELS = {
    "lt": {
        DocumentType.INVOICE: "PVM sąskaita faktūra",
        DocumentType.CREDIT_NOTE: "Kreditinė sąskaita",
        DocumentType.DEBIT_NOTE: "Debetinė sąskaita",
    },
    "en": {
        DocumentType.INVOICE: "Invoice",
        DocumentType.CREDIT_NOTE: "Credit note",
        DocumentType.DEBIT_NOTE: "Debit note",
    },
}


def language_of(language: str) -> str:
    """Return `language` if it is supported, or the default language `en`."""
    code = language.strip().lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


@functools.cache
def locale_of(language: str) -> Locale:
    return Locale.parse(_LOCALES[language_of(language)])


def format_amount(amount: Decimal, language: str) -> str:
    """Format an amount without a currency sign: "1 234,56" (lt), "1,234.56" (en)."""
    text = format_decimal(
        _without_negative_zero(amount),
        format=_AMOUNT_PATTERN,
        locale=locale_of(language),
        decimal_quantization=False,
    )
    return _normalize_spaces(text)


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """Format an amount with its currency: "1 234,56 €" (lt), "€1,234.56" (en).

    The currency's own number of decimals is the minimum (two for EUR, none
    for JPY), and extra decimals in `amount` are printed rather than rounded.
    """
    text = format_currency(
        _without_negative_zero(amount),
        currency,
        locale=locale_of(language),
        decimal_quantization=False,
    )
    return _normalize_spaces(text)


def format_date(day: date, language: str) -> str:
    """Format a date: "2026-11-30" (lt), "30 Nov 2026" (en)."""
    return _normalize_spaces(
        babel_format_date(day, format="medium", locale=locale_of(language))
    )


def format_period(period: Period, language: str) -> str:
    """Name a month on its own, as a heading: "2026 m. lapkritis", "November 2026"."""
    return _normalize_spaces(
        format_skeleton("yMMMM", period.start, locale=locale_of(language))
    )


def format_period_reference(period: Period, language: str) -> str:
    """Name a month inside a sentence: "2026 m. spalio mėn.", "October 2026".

    Lithuanian needs the genitive month name ("už 2026 m. spalio mėn.") where
    a month follows a preposition, and Babel's format-context month names are
    genitive, while the stand-alone ones used by `format_period` are nominative.
    """
    if language_of(language) == "lt":
        month = get_month_names("wide", "format", locale_of(language))[period.month]
        return f"{period.year} m. {month} mėn."
    return format_period(period, language)


def format_rate(rate: Decimal, language: str) -> str:
    """Format a VAT rate given in percent: "21 %", "5,5 %" (lt), "21%" (en)."""
    text = format_percent(
        rate / 100, locale=locale_of(language), decimal_quantization=False
    )
    return _normalize_spaces(text)


def document_type_label(document_type: DocumentType, language: str) -> str:
    """Name a document type: "PVM sąskaita faktūra" (lt), "Invoice" (en)."""
    return _DOCUMENT_TYPE_LABELS[language_of(language)][document_type]


def plural_category(count: int, language: str) -> str:
    """Return the CLDR plural category of `count`: "one", "few", "many" or "other"."""
    category: str = locale_of(language).plural_form(count)
    return category


def _without_negative_zero(amount: Decimal) -> Decimal:
    # Decimal("-0.00") would print as "-0,00"; adding zero drops the sign.
    return amount + 0 if amount.is_zero() else amount


def _normalize_spaces(text: str) -> str:
    return text.replace(_NARROW_NO_BREAK_SPACE, NO_BREAK_SPACE)
