"""Write one month of synthetic documents as an i.SAF 1.2 XML file (sales part)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape

from synthetic import SyntheticClient, SyntheticDocument

from services.periods import Period

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<iSAFFile xmlns="http://www.vmi.lt/cms/imas/isaf" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header>
    <FileDescription>
      <FileVersion>iSAF1.2</FileVersion>
      <FileDateCreated>{created}T08:00:00</FileDateCreated>
      <DataType>S</DataType>
      <SoftwareCompanyName>invoice-lists</SoftwareCompanyName>
      <SoftwareName>invoice-lists benchmark</SoftwareName>
      <SoftwareVersion>1</SoftwareVersion>
      <RegistrationNumber>300000001</RegistrationNumber>
      <NumberOfParts>1</NumberOfParts>
      <PartNumber>1</PartNumber>
      <SelectionCriteria>
        <SelectionStartDate>{start}</SelectionStartDate>
        <SelectionEndDate>{end}</SelectionEndDate>
      </SelectionCriteria>
    </FileDescription>
  </Header>
"""


def write_isaf(
    path: Path,
    period: Period,
    clients: dict[int, SyntheticClient],
    documents: Iterable[SyntheticDocument],
) -> int:
    """Write the file and return the number of invoices in it."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(
            HEADER.format(created=period.end, start=period.start, end=period.last_day)
        )
        out.write("  <SourceDocuments>\n    <SalesInvoices>\n")
        for document in documents:
            out.write(_invoice(clients[document.client_id], document))
            count += 1
        out.write("    </SalesInvoices>\n  </SourceDocuments>\n</iSAFFile>\n")
    return count


def _invoice(client: SyntheticClient, document: SyntheticDocument) -> str:
    vat_code = client.vat_code or "ND"
    totals = "".join(
        "          <DocumentTotal>\n"
        f"            <TaxableValue>{line.net}</TaxableValue>\n"
        f"            <TaxCode>{line.tax_code}</TaxCode>\n"
        f"            <TaxPercentage>{line.vat_rate}</TaxPercentage>\n"
        f"            <Amount>{line.vat}</Amount>\n"
        '            <VATPointDate2 xsi:nil="true"/>\n'
        "          </DocumentTotal>\n"
        for line in document.lines
    )
    return (
        "      <Invoice>\n"
        f"        <InvoiceNo>{document.number}</InvoiceNo>\n"
        "        <CustomerInfo>\n"
        f"          <CustomerID>{client.code}</CustomerID>\n"
        f"          <VATRegistrationNumber>{vat_code}</VATRegistrationNumber>\n"
        f"          <RegistrationNumber>{client.registration_code}"
        "</RegistrationNumber>\n"
        f"          <Country>{client.country}</Country>\n"
        f"          <Name>{escape(client.name)}</Name>\n"
        "        </CustomerInfo>\n"
        f"        <InvoiceDate>{document.date.isoformat()}</InvoiceDate>\n"
        f"        <InvoiceType>{document.source_type}</InvoiceType>\n"
        "        <SpecialTaxation/>\n"
        "        <References/>\n"
        '        <VATPointDate xsi:nil="true"/>\n'
        f"        <DocumentTotals>\n{totals}        </DocumentTotals>\n"
        "      </Invoice>\n"
    )
