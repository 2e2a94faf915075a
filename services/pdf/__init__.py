"""Statement PDFs rendered with fpdf2, and their attachment file names."""

from services.pdf.filenames import attachment_filename
from services.pdf.layout import render_statement_pdf

__all__ = ["attachment_filename", "render_statement_pdf"]
