"""DejaVu Sans for statement PDFs, parsed once per process instead of once per PDF.

`FPDF.add_font` parses the whole TTF with fontTools (about 0.7 MB each for
regular and bold), and `FPDF.output` subsets that parsed font again. Both
steps dominate the time of a one-page statement. So each font is cut once to
`REPERTOIRE`: Latin letters with Lithuanian and other European accents, the
usual punctuation, dashes, quotation marks and €. One `TTFFont` is built from
each cut font, and every PDF gets a light copy with its own subset map and
its own fontTools object to subset.

A statement with a character outside `REPERTOIRE` (Cyrillic, Greek, ...) gets
the full font files through `FPDF.add_font`, which is slower but prints them.

`FPDF.output` of fpdf2 2.8.9 subsets both fonts again for every PDF and
builds a 128 KiB CIDToGIDMap for each, so statements are written by
`services.pdf.output.StatementOutputProducer`, which keeps those subsets.
"""

from __future__ import annotations

import copy
import functools
import itertools
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import cast

from fontTools import subset as font_subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont as FontToolsFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
FAMILY = "dejavu"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

REPERTOIRE = frozenset(
    itertools.chain(
        range(0x20, 0x7F),  # Basic Latin
        range(0xA0, 0x180),  # Latin-1 Supplement and Latin Extended-A
        range(0x2010, 0x2028),  # dashes, quotation marks, bullet, ellipsis
        (0x202F, 0x2030, 0x2039, 0x203A, 0x20AC, 0x2116, 0x2122, 0x2212),
    )
)


@dataclass(frozen=True)
class _Face:
    """One style of the font cut to `REPERTOIRE`: its metrics and its tables.

    `tables` is a pickled fontTools font with every table decompiled, made in
    this process from the bundled font file. Unpickling gives each PDF its own
    copy in about half the time that decompiling the font bytes again takes.
    """

    template: TTFFont
    tables: bytes


def add_statement_fonts(pdf: FPDF, texts: Iterable[str]) -> None:
    """Register regular and bold DejaVu Sans on `pdf` for printing `texts`."""
    if all(ord(char) in REPERTOIRE for text in texts for char in text):
        for style, face in _faces().items():
            pdf.fonts[f"{FAMILY}{style}"] = _copy_for(pdf, face)
        return

    for style, filename in FONT_FILES.items():
        pdf.add_font(FAMILY, style, FONTS_DIR / filename)


def statement_faces() -> list[_Face]:
    """Return the cut regular and bold faces, preparing them on first use."""
    return list(_faces().values())


def statement_tables(font: TTFFont) -> bytes | None:
    """Return the pickled cut font that `font` was copied from, else None."""
    for face in _faces().values():
        if font.ttfont is face.template.ttfont:
            return face.tables
    return None


@functools.cache
def _faces() -> dict[str, _Face]:
    faces = {}
    for style, filename in FONT_FILES.items():
        data = _cut_to_repertoire(FONTS_DIR / filename)
        # TTFFont hands its path to fontTools, which reads a file object as
        # well. Only HarfBuzz text shaping opens the path again, and statement
        # PDFs never turn text shaping on.
        template = TTFFont(FPDF(), cast(Path, BytesIO(data)), f"{FAMILY}{style}", style)
        faces[style] = _Face(template=template, tables=_decompiled(data))
    return faces


def _cut_to_repertoire(path: Path) -> bytes:
    options = font_subset.Options()
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.layout_features = []
    # Hinting only sharpens glyphs on low-resolution screens; without it the
    # font is smaller and quicker to subset again for each PDF.
    options.hinting = False
    # Every table left is read and written again for each PDF, so only the
    # ones a PDF viewer needs for a TrueType font stay.
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "MATH", "kern", "hdmx", "FFTM"]
    options.drop_tables += ["gasp"]

    font = FontToolsFont(path, recalcTimestamp=False)
    subsetter = font_subset.Subsetter(options)
    subsetter.populate(unicodes=REPERTOIRE)
    subsetter.subset(font)

    buffer = BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def _decompiled(data: bytes) -> bytes:
    font = FontToolsFont(BytesIO(data), recalcTimestamp=False, recalcBBoxes=False)
    font.ensureDecompiled(recurse=False)
    font.reader = None
    return pickle.dumps(font, protocol=pickle.HIGHEST_PROTOCOL)


def _copy_for(pdf: FPDF, face: _Face) -> TTFFont:
    """Copy the parsed font for one PDF, with that PDF's own mutable state.

    `FPDF.output` stores the PDF's object ids in `desc` and reads the glyphs
    used from `subset`, so those are fresh for every PDF. The cmap, widths,
    glyph ids and the fontTools font are only read and stay shared. This
    follows the attributes of fpdf2 2.8's `TTFFont`.
    """
    font = copy.copy(face.template)
    font.i = len(pdf.fonts) + 1
    # The fontTools font stays shared, because `StatementOutputProducer`
    # subsets a cached copy of `face.tables` and never this object.
    font.ttfont = face.template.ttfont

    font.desc = copy.copy(face.template.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font.subset = SubsetMap(font)
    return font
