"""Importers for i.SAF XML, documents CSV and clients CSV files.

Each importer checks the whole input before storing anything and stores it in
one transaction, so a file with errors leaves the database as it was.
"""

from services.imports.clients_csv import import_clients_csv
from services.imports.documents_csv import import_documents_csv
from services.imports.isaf import import_isaf
from services.imports.report import ImportReport

__all__ = ["ImportReport", "import_clients_csv", "import_documents_csv", "import_isaf"]
