"""The fixed words printed on a statement PDF, in Lithuanian and English."""

from __future__ import annotations

from dataclasses import dataclass

from services.formatting import language_of


@dataclass(frozen=True)
class Labels:
    title: str
    period: str
    seller: str
    client: str
    company_code: str
    vat_code: str
    client_code: str
    number: str
    date: str
    type: str
    net: str
    vat: str
    gross: str
    currency: str
    total: str
    # Formatted with `rate`, the VAT rate already formatted as a percentage.
    vat_at_rate: str
    no_documents: str
    # Formatted with `page` and `pages`.
    page_of: str
    filename_prefix: str


_LABELS = {
    "lt": Labels(
        title="Sąskaitų sąrašas",
        period="Laikotarpis",
        seller="Pardavėjas",
        client="Pirkėjas",
        company_code="Įmonės kodas",
        vat_code="PVM mokėtojo kodas",
        client_code="Kliento kodas",
        number="Numeris",
        date="Data",
        type="Tipas",
        net="Suma be PVM",
        vat="PVM",
        gross="Suma su PVM",
        currency="Valiuta",
        total="Iš viso",
        vat_at_rate="PVM {rate}",
        no_documents="Šiuo laikotarpiu dokumentų nėra.",
        page_of="Puslapis {page} iš {pages}",
        filename_prefix="saskaitu-sarasas",
    ),
    "en": Labels(
        title="Statement of documents",
        period="Period",
        seller="Seller",
        client="Client",
        company_code="Company code",
        vat_code="VAT code",
        client_code="Client code",
        number="Number",
        date="Date",
        type="Type",
        net="Net",
        vat="VAT",
        gross="Gross",
        currency="Currency",
        total="Total",
        vat_at_rate="VAT {rate}",
        no_documents="No documents in this period.",
        page_of="Page {page} of {pages}",
        filename_prefix="statement",
    ),
}


def labels_for(language: str) -> Labels:
    return _LABELS[language_of(language)]
