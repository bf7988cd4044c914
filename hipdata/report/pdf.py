"""A small report-building layer on fpdf2: reproducible PDF reports with selectable Unicode text.

:class:`ReportPDF` lays out a report from top to bottom: a title block, headings, paragraphs,
tables (headers repeated on every page a table spans, numbers right-aligned), matplotlib figures
embedded as vector SVG, and a definitions table. Text is set in DejaVu Sans, embedded from the
copy matplotlib ships, so ``≤ 3/10``, ``–`` and ``é`` are real, selectable text (fpdf2's core
fonts are Latin-1 only). Every page after the first carries the report title; every page carries
"Page n of N".

Output is reproducible: the same content gives a byte-identical file. The creation date is the
report's ``generated`` date (not the clock), fpdf2 derives the document ID from the content and
that date, and figures are written with a fixed SVG hash salt and no date. :meth:`ReportPDF.save`
writes atomically (a temporary file in the target folder, then :func:`os.replace`), so a failed
save never leaves a half-written PDF at the target path.

Examples
--------
>>> import datetime as dt
>>> import pandas as pd
>>> report = ReportPDF("Quarterly audit", generated=dt.date(2026, 7, 1))
>>> report.title_block("Quarterly audit", "Clinic C01, 2026Q2", {"Clinic": "C01"})
>>> report.heading("Sessions")
>>> report.paragraph("Pain stayed ≤ 3/10 in 84 % of sessions.")
>>> report.table(pd.DataFrame({"Clinic": ["C01"], "Sessions": ["412"]}), caption="Sessions.")
>>> pdf_bytes = report.to_bytes()
>>> pdf_bytes[:5]
b'%PDF-'
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

#: Font family name used for all text. matplotlib writes the same name into SVG text, so
#: figures embedded with ``svg.fonttype="none"`` resolve to the embedded font too.
FONT_FAMILY = "DejaVu Sans"
#: DejaVu Sans files shipped with matplotlib, by fpdf2 style.
FONT_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
#: Salt for matplotlib's SVG element ids, fixed so that a figure's SVG is the same on every run.
SVG_HASHSALT = "hipdata"

BODY_PT = 9.5
SMALL_PT = 8.0
TABLE_PT = 8.5
HEADING_PT = {1: 14.0, 2: 11.5, 3: 10.0}
TITLE_PT = 20.0
SUBTITLE_PT = 12.0
LINE_HEIGHT = 1.4  # line height as a multiple of the font size
MARGIN_MM = 18.0
TOP_MARGIN_MM = 16.0
BOTTOM_MARGIN_MM = 18.0
#: A heading is moved to the next page unless this much room remains below it, so that it is
#: never left alone at the foot of a page.
HEADING_KEEP_MM = 35.0
#: A table's caption is kept with its header row and this many body rows.
TABLE_KEEP_ROWS = 3
CELL_PADDING_MM = (0.9, 1.6)  # vertical, horizontal
RULE_GREY = 170
HEADER_FILL = (232, 236, 241)
MUTED_GREY = 90
BANNER_RGB = (176, 0, 0)
PT_PER_MM = 72 / 25.4

_ORIENTATIONS = {"portrait": "P", "landscape": "L", "p": "P", "l": "L"}
# A cell "looks numeric" when it is a number, optionally with a sign, thousands separators, a
# percent sign, a leading comparison (suppressed cells such as "<5") and a trailing "(12.5%)".
_NUMBER = r"[-+−]?\d[\d,\u202f ]*(?:\.\d+)?"
_NUMERIC_CELL = re.compile(
    rf"^\s*[<>≤≥~]?\s*{_NUMBER}\s*%?(?:\s*(?:\(\s*{_NUMBER}\s*%?\s*\)|/\s*{_NUMBER}))?\s*$"
)
# Cells that stand for "no value" and say nothing about the column's type.
_PLACEHOLDERS = {"", "-", "–", "—", "NA", "n/a"}
_SVG_SIZE = re.compile(rb'<svg[^>]*?width="(?P<width>[\d.]+)pt" height="(?P<height>[\d.]+)pt"')
_SVG_METADATA_KEYS = ("Date", "Creator", "Format", "Type")
_ALIGN_NAMES = {"L": "LEFT", "R": "RIGHT", "C": "CENTER", "J": "JUSTIFY"}


def _font_path(style: str) -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_FILES[style]


def _creation_datetime(generated: dt.date | dt.datetime) -> dt.datetime:
    """A timezone-aware datetime for the PDF's creation date (UTC midnight for a date)."""
    if isinstance(generated, dt.datetime):
        return generated if generated.tzinfo else generated.replace(tzinfo=dt.UTC)
    if isinstance(generated, dt.date):
        return dt.datetime(generated.year, generated.month, generated.day, tzinfo=dt.UTC)
    raise TypeError(
        f"generated must be a date or datetime (the report's generation date), got {generated!r}"
    )


def _cell_texts(frame: pd.DataFrame) -> list[list[str]]:
    """The frame's values as strings, as given; missing values become empty cells."""
    as_text = frame.astype(object).where(frame.notna(), "").astype(str)
    return as_text.to_numpy().tolist()


def _looks_numeric(column: pd.Series, texts: Iterable[str]) -> bool:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return True
    values = [text for text in texts if text.strip() not in _PLACEHOLDERS]
    return bool(values) and all(_NUMERIC_CELL.match(text) for text in values)


def _break_wide_fractions(
    rows: list[list[str]], inner_widths: np.ndarray, width_of
) -> list[list[str]]:
    """Cells whose word ``n/d`` is wider than its column get a space after the slash, so the
    table wraps the fraction there instead of inside a number: at registry size ``83%
    (155,808/187,423)`` in a narrow column would otherwise print ``187,42`` and ``3)`` on two
    lines. Cells that fit are returned unchanged."""

    def fitted(text: str, room: float) -> str:
        if "/" not in text:
            return text
        words = text.split(" ")
        wide = ["/" in word and width_of(word) > room for word in words]
        if not any(wide):
            return text
        return " ".join(
            word.replace("/", "/ ") if too_wide else word
            for word, too_wide in zip(words, wide, strict=True)
        )

    return [
        [fitted(text, float(room)) for text, room in zip(row, inner_widths, strict=True)]
        for row in rows
    ]


def _fit_widths(natural: np.ndarray, available: float) -> np.ndarray:
    """Column widths: natural widths when they fit, else the widest columns capped equally.

    The cap ``c`` solves ``sum(min(w_i, c)) = available``, so narrow columns (numbers) keep their
    width and only the wide ones (labels, free text) wrap.
    """
    if natural.sum() <= available:
        return natural
    ordered = np.sort(natural)
    used = 0.0
    for i, width in enumerate(ordered):
        cap = (available - used) / (len(ordered) - i)
        if width >= cap:
            return np.minimum(natural, cap)
        used += width
    return natural


def _svg_size(svg: bytes) -> tuple[float, float]:
    """Width and height (pt) from the root element of a matplotlib SVG."""
    match = _SVG_SIZE.search(svg)
    if match is None:
        raise ValueError("figure: matplotlib's SVG carries no width/height in pt")
    return float(match["width"]), float(match["height"])


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and os.replace."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open with mode 0o666 lets the umask set the permissions, as for any new file
    # (tempfile's files are private, 0o600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class _Document(FPDF):
    """fpdf2 document with the report's running header and page-number footer."""

    def __init__(self, running_title: str, banner: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.running_title = running_title
        self.banner = banner

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FONT_FAMILY, "", SMALL_PT)
        self.set_text_color(MUTED_GREY)
        self.cell(0, 5, self.running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(RULE_GREY)
        self.set_line_width(0.2)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_text_color(0)
        self.ln(4)

    def footer(self) -> None:
        if self.banner:
            self.set_y(-16.5)
            self.set_font(FONT_FAMILY, "B", SMALL_PT)
            self.set_text_color(*BANNER_RGB)
            self.cell(0, 4.5, self.banner, align="C")
        self.set_y(-12)
        self.set_font(FONT_FAMILY, "", SMALL_PT)
        self.set_text_color(MUTED_GREY)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)


class ReportPDF:
    """A report laid out top to bottom and saved as a reproducible PDF.

    Parameters
    ----------
    title : str
        Report title: the document's metadata title and the running header of pages 2 onwards.
    generated : date or datetime
        Generation date, used as the PDF creation date so that the output is reproducible
        (the clock is never read).
    orientation : {"portrait", "landscape"}
        Orientation of the first page (A4).
    author : str, optional
        Document metadata author.
    banner : str, optional
        Printed at the foot of every page, e.g. ``"internal — not for circulation"``.

    Notes
    -----
    Content methods add to the document in order. Tables and figures are numbered
    ("Table 1.", "Figure 1.") when given a caption. ``.pdf`` gives the underlying
    :class:`fpdf.FPDF` for anything not covered here.
    """

    def __init__(
        self,
        title: str,
        *,
        generated: dt.date | dt.datetime,
        orientation: str = "portrait",
        author: str | None = None,
        banner: str | None = None,
    ) -> None:
        self.title = title
        self.generated = generated
        self.pdf = _Document(
            running_title=title,
            banner=banner,
            orientation=self._orientation(orientation),
            unit="mm",
            format="A4",
        )
        pdf = self.pdf
        for style in FONT_FILES:
            pdf.add_font(FONT_FAMILY, style, _font_path(style))
        pdf.set_creation_date(_creation_datetime(generated))
        pdf.set_title(title)
        pdf.set_lang("en")
        pdf.set_creator("hipdata")
        if author:
            pdf.set_author(author)
        pdf.set_margins(MARGIN_MM, TOP_MARGIN_MM, MARGIN_MM)
        pdf.set_auto_page_break(True, margin=BOTTOM_MARGIN_MM)
        pdf.alias_nb_pages()
        pdf.add_page()
        self._font(BODY_PT)
        self._n_tables = 0
        self._n_figures = 0
        self._outline_level = -1

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _orientation(orientation: str) -> str:
        try:
            return _ORIENTATIONS[orientation.lower()]
        except KeyError:
            raise ValueError(
                f"orientation must be 'portrait' or 'landscape', got {orientation!r}"
            ) from None

    def _font(self, size_pt: float, style: str = "") -> None:
        self.pdf.set_font(FONT_FAMILY, style, size_pt)

    def _line_mm(self, size_pt: float) -> float:
        return LINE_HEIGHT * size_pt / PT_PER_MM

    def _ensure_room(self, height_mm: float) -> None:
        """Start a new page unless ``height_mm`` fits below the current position."""
        pdf = self.pdf
        at_top = pdf.get_y() <= pdf.t_margin + 12  # already at the top (below the header)
        if not at_top and pdf.will_page_break(height_mm):
            pdf.add_page(same=True)

    def _small_text(self, text: str, *, style: str = "I") -> None:
        self._font(SMALL_PT, style)
        self.pdf.multi_cell(0, self._line_mm(SMALL_PT), text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self._font(BODY_PT)

    # -- content ---------------------------------------------------------------------------

    def title_block(
        self, title: str, subtitle: str | None = None, fields: Mapping[str, object] | None = None
    ) -> None:
        """The first page's title, subtitle and provenance fields.

        Parameters
        ----------
        title, subtitle : str
            Large title and the line below it (e.g. clinic and quarter).
        fields : mapping
            Label -> value rows, e.g. clinic, quarter, generation date, hipdata version, input
            data hash, parameters. Values are shown with ``str()``.
        """
        pdf = self.pdf
        self._font(TITLE_PT, "B")
        pdf.multi_cell(0, self._line_mm(TITLE_PT), title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if subtitle:
            self._font(SUBTITLE_PT)
            pdf.set_text_color(MUTED_GREY)
            pdf.multi_cell(
                0, self._line_mm(SUBTITLE_PT), subtitle, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            pdf.set_text_color(0)
        pdf.ln(3)
        if fields:
            self._font(TABLE_PT)
            with pdf.table(
                col_widths=(0.28, 0.72),
                first_row_as_headings=False,
                borders_layout=TableBordersLayout.NONE,
                text_align=("LEFT", "LEFT"),
                line_height=self._line_mm(TABLE_PT),
                padding=(0.4, 0),
                align=Align.L,
            ) as table:
                for label, value in fields.items():
                    row = table.row()
                    row.cell(str(label), style=FontFace(emphasis="BOLD"))
                    row.cell("" if value is None else str(value))
        pdf.set_draw_color(RULE_GREY)
        pdf.set_line_width(0.3)
        pdf.ln(2)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(5)
        self._font(BODY_PT)

    def heading(self, text: str, level: int = 1) -> None:
        """A section heading (level 1-3), also added to the PDF outline (bookmarks).

        A heading that would land within ``HEADING_KEEP_MM`` of the page foot starts a new page
        instead, so it is never orphaned from the text it introduces.
        """
        if level not in HEADING_PT:
            raise ValueError(f"heading level must be 1, 2 or 3, got {level}")
        size = HEADING_PT[level]
        pdf = self.pdf
        space_before = 4.0 if level == 1 else 2.5
        self._ensure_room(space_before + self._line_mm(size) + HEADING_KEEP_MM)
        if pdf.get_y() > pdf.t_margin + 12:
            pdf.ln(space_before)
        # Outline levels may rise one step at a time; a level-3 heading right after a level-1
        # one is bookmarked at level 2.
        outline_level = min(level - 1, self._outline_level + 1)
        pdf.start_section(text, level=outline_level)
        self._outline_level = outline_level
        self._font(size, "B")
        pdf.multi_cell(0, self._line_mm(size), text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
        self._font(BODY_PT)

    def paragraph(self, text: str, *, markdown: bool = False) -> None:
        """A paragraph of body text (``markdown=True`` allows ``**bold**`` and ``__italic__``)."""
        self._font(BODY_PT)
        self.pdf.multi_cell(
            0,
            self._line_mm(BODY_PT),
            text,
            markdown=markdown,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.pdf.ln(2)

    def bullets(self, items: Iterable[str]) -> None:
        """A bulleted list, one item per entry."""
        pdf = self.pdf
        self._font(BODY_PT)
        indent = 5.0
        for item in items:
            pdf.set_x(pdf.l_margin)
            pdf.cell(indent, self._line_mm(BODY_PT), "•")
            pdf.multi_cell(
                pdf.epw - indent,
                self._line_mm(BODY_PT),
                str(item),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        pdf.ln(2)

    def table(
        self,
        data: pd.DataFrame,
        *,
        col_widths: Sequence[float] | None = None,
        align: str | Sequence[str] = "auto",
        caption: str | None = None,
        note: str | None = None,
        font_size: float = TABLE_PT,
    ) -> None:
        """A table of a DataFrame's columns and values, headers repeated on every page.

        Values are printed as given (``str()``; missing values empty): format numbers, dates
        and suppressed cells before calling. A long table breaks between rows and repeats its
        header row on each new page; its caption is kept with the header and the first rows.

        Parameters
        ----------
        data : DataFrame
            The table; its column names are the header row, its index is not printed (use
            ``reset_index()`` to show it).
        col_widths : sequence of float, optional
            Relative column widths. Default: each column's natural width, the widest columns
            capped (and wrapped) when the table is wider than the page.
        align : "auto", str or sequence of str
            ``"auto"`` right-aligns numeric columns (numeric dtype, or text that reads as numbers,
            percentages, ``n (x%)`` or suppressed ``<5``) and left-aligns the rest; or one of
            ``"LEFT"``, ``"RIGHT"``, ``"CENTER"`` for all columns, or one per column.
        caption : str, optional
            Shown above the table as "Table n. caption".
        note : str, optional
            Small print below the table (sources, suppression, definitions).
        font_size : float
            Font size in points.
        """
        if data.columns.nlevels != 1:
            raise ValueError("table: flatten MultiIndex columns into one header row first")
        if data.shape[1] == 0:  # nothing to lay out (e.g. nobody discharged): say so
            data = pd.DataFrame({"": ["not available"]})
        pdf = self.pdf
        headers = [str(column) for column in data.columns]
        rows = _cell_texts(data)
        alignment = self._column_alignment(data, rows, align)
        line_height = self._line_mm(font_size) * 0.9
        row_height = line_height + 2 * CELL_PADDING_MM[0]

        caption_height = self._line_mm(BODY_PT) + 1.5 if caption else 0.0
        self._ensure_room(caption_height + row_height * (1 + min(len(rows), TABLE_KEEP_ROWS)))
        if caption:
            self._n_tables += 1
            self._font(BODY_PT, "B")
            pdf.multi_cell(
                0,
                self._line_mm(BODY_PT),
                f"Table {self._n_tables}. {caption}",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            pdf.ln(1.5)

        self._font(font_size)
        if col_widths is None:
            widths = self._natural_widths(headers, rows, font_size)
        else:
            if len(col_widths) != len(headers):
                raise ValueError(
                    f"table: {len(col_widths)} col_widths for {len(headers)} columns {headers}"
                )
            relative = np.asarray(col_widths, dtype=float)
            widths = relative / relative.sum() * pdf.epw
        # fpdf2 refuses a table even a rounding error wider than the page
        widths = widths * min(1.0, (pdf.epw - 1e-6) / float(widths.sum()))
        rows = _break_wide_fractions(rows, widths - 2 * CELL_PADDING_MM[1], pdf.get_string_width)
        pdf.set_draw_color(RULE_GREY)
        pdf.set_line_width(0.2)
        # fpdf2 builds and lays out the table row by row; this loop feeds it, it computes nothing.
        with pdf.table(
            width=float(widths.sum()),
            col_widths=tuple(float(w) for w in widths),
            align=Align.L,
            text_align=alignment,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            headings_style=FontFace(emphasis="BOLD", fill_color=HEADER_FILL),
            line_height=line_height,
            padding=CELL_PADDING_MM,
            repeat_headings=1,
            v_align="TOP",
        ) as table:
            table.row(headers)
            for row in rows:
                table.row(row)
        pdf.ln(1.5)
        if note:
            self._small_text(note)
        self._font(BODY_PT)
        pdf.ln(2.5)

    def _column_alignment(
        self, data: pd.DataFrame, rows: list[list[str]], align: str | Sequence[str]
    ) -> tuple[str, ...]:
        n_columns = data.shape[1]
        if isinstance(align, str) and align.lower() == "auto":
            return tuple(
                "RIGHT" if _looks_numeric(data.iloc[:, j], (row[j] for row in rows)) else "LEFT"
                for j in range(n_columns)
            )
        if isinstance(align, str):
            align = [align] * n_columns
        if len(align) != n_columns:
            raise ValueError(f"table: {len(align)} alignments for {n_columns} columns")
        return tuple(_ALIGN_NAMES.get(a.upper(), a.upper()) for a in align)

    def _natural_widths(
        self, headers: list[str], rows: list[list[str]], font_size: float
    ) -> np.ndarray:
        pdf = self.pdf
        padding = 2 * CELL_PADDING_MM[1] + 1.0
        self._font(font_size, "B")
        header_widths = [pdf.get_string_width(text) for text in headers]
        self._font(font_size)
        widths = []
        for j, header_width in enumerate(header_widths):
            longest = max((pdf.get_string_width(row[j]) for row in rows), default=0.0)
            widths.append(max(header_width, longest) + padding)
        return _fit_widths(np.asarray(widths), pdf.epw)

    def figure(
        self,
        fig,
        *,
        caption: str | None = None,
        width_mm: float = 160.0,
        close: bool = True,
    ) -> None:
        """Embed a matplotlib figure as a vector image, with text kept as selectable text.

        The figure is written as SVG with ``svg.fonttype="none"`` (text stays text, drawn in the
        embedded DejaVu Sans), a fixed ``svg.hashsalt`` and no date, so the same figure always
        gives the same bytes; it is then closed (``close=False`` keeps it open).

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure (e.g. ``ax.figure`` of a seaborn-style plotting function).
        caption : str, optional
            Shown below as "Figure n. caption".
        width_mm : float
            Printed width, at most the text width; the height keeps the figure's aspect ratio.
        close : bool
            Close the figure afterwards (figures are not garbage-collected while open).
        """
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": SVG_HASHSALT}):
            # No metadata block: it would carry a date, and fpdf2 does not read it anyway.
            # bbox_inches="tight" keeps legends and labels placed outside the axes.
            fig.savefig(
                buffer,
                format="svg",
                bbox_inches="tight",
                metadata=dict.fromkeys(_SVG_METADATA_KEYS),
            )
        width_pt, height_pt = _svg_size(buffer.getvalue())
        if close:
            plt.close(fig)
        pdf = self.pdf
        width = min(width_mm, pdf.epw)
        height = width * height_pt / width_pt
        caption_height = 2 * self._line_mm(SMALL_PT) + 2 if caption else 0.0
        self._ensure_room(height + caption_height)
        buffer.seek(0)
        pdf.image(buffer, x=Align.C, w=width, h=height)
        if caption:
            self._n_figures += 1
            pdf.ln(1)
            self._small_text(f"Figure {self._n_figures}. {caption}", style="")
        pdf.ln(3)

    def definitions(
        self,
        rows: Mapping[str, str] | Iterable[tuple[str, str]] | pd.DataFrame,
        *,
        headings: tuple[str, str] = ("Term", "Definition"),
        caption: str | None = None,
    ) -> None:
        """A two-column table of terms and their definitions (e.g. every indicator shown).

        ``rows`` is a mapping term -> definition, pairs, or a two-column DataFrame.
        """
        if isinstance(rows, pd.DataFrame):
            pairs = rows.iloc[:, :2].astype(str).to_numpy().tolist()
        elif isinstance(rows, Mapping):
            pairs = [[str(k), str(v)] for k, v in rows.items()]
        else:
            pairs = [[str(term), str(definition)] for term, definition in rows]
        frame = pd.DataFrame(pairs, columns=list(headings), dtype="str")
        self.table(frame, col_widths=(0.27, 0.73), align=("LEFT", "LEFT"), caption=caption)

    def page_break(self, *, orientation: str | None = None) -> None:
        """Start a new page, optionally switching orientation (e.g. landscape for a wide table).

        Pages that a long table or text spills onto keep the orientation of the page before.
        """
        if orientation is None:
            self.pdf.add_page(same=True)
        else:
            self.pdf.add_page(orientation=self._orientation(orientation))
        self._font(BODY_PT)

    # -- output ----------------------------------------------------------------------------

    @property
    def page_count(self) -> int:
        """Pages laid out so far."""
        return self.pdf.pages_count

    def to_bytes(self) -> bytes:
        """The finished PDF. Call once all content is added."""
        return bytes(self.pdf.output())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the PDF to ``path`` atomically; returns the path.

        The bytes go to a temporary file in the same folder, which then replaces ``path`` in one
        step (:func:`os.replace`); if anything fails, the temporary file is removed and ``path``
        is left as it was.
        """
        path = Path(path)
        _write_atomically(path, self.to_bytes())
        return path
