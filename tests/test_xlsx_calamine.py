"""The calamine fast path for .xlsx reads exactly the cells the openpyxl path reads.

A differential test: random hostile workbooks (written by openpyxl) are read twice, by
:func:`hipdata.io.readers._read_xlsx` with the fast path and with the fast path switched off
(the openpyxl path), and every part of the two raw tables must be equal. Each workbook that
holds no feature the fast path refuses must be read by the fast path, so the test cannot pass by
falling back every time.
"""

from __future__ import annotations

import datetime as dt
import random
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from hipdata.io import readers

pytest.importorskip("python_calamine")

DATE_FORMATS = [
    "yyyy-mm-dd",
    "YYYY-MM-DD HH:MM:SS",
    "yyyy-mm-dd h:mm:ss",
    "dd.mm.yyyy",
    "d/m/yyyy",
    "mm-dd-yy",
    "d-mmm-yy",
    "m/d/yy h:mm",
    "h:mm:ss",
    "hh:mm",
    "h:mm AM/PM",
    "mm:ss",
    "mmss.0",
    "[h]:mm:ss",
    "[mm]:ss",
    "yyyy-mm-dd hh:mm:ss.000",
]
NUMBER_FORMATS = ["General", "0", "0.00", "#,##0", "0%", '0.0 "kg"', "@", "0.00E+00", "[Red]0.0"]


def _value(rng: random.Random, *, hostile: bool):
    """One cell value and its number format (``None``: openpyxl's default for the type)."""
    kind = rng.randrange(16 if hostile else 13)
    if kind == 0:
        return rng.choice(
            ["P001", "  padded  ", "007", "1,5", "Tü é ß", "日本語", "😀", "", " "]
        ), None
    if kind == 1:
        return rng.choice([True, False]), None
    if kind == 2:
        return rng.randint(-(10**15) + 1, 10**15 - 1), rng.choice(NUMBER_FORMATS)
    if kind == 3:
        return rng.choice([0.1, -2.5, 1e-300, 1e300, 1.2e19, 2.0**53, 3.0, -0.0]), None
    if kind == 4:
        return rng.uniform(-1e6, 1e6), rng.choice(NUMBER_FORMATS)
    if kind == 5:
        day = dt.datetime(1900, 3, 1) + dt.timedelta(days=rng.randint(0, 60000))
        return day.date(), None
    if kind == 6:
        stamp = dt.datetime(1990, 1, 1) + dt.timedelta(seconds=rng.randint(0, 10**9))
        return stamp, None
    if kind == 7:
        return dt.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)), None
    if kind == 8:
        return dt.timedelta(seconds=rng.randint(0, 10**6)), None
    if kind == 9:  # a serial with a sub-millisecond fraction, in a date or duration format
        return rng.uniform(0, 80000), rng.choice(DATE_FORMATS)
    if kind == 10:  # the 1900 leap-year serials and serials below one day
        return rng.choice([0, 0.5, 1, 59, 60, 61, 0.999999, rng.random()]), rng.choice(DATE_FORMATS)
    if kind == 11:
        return rng.choice(["12", "-3.5", "1e3", "2026-03-02", " = 1"]), "@"
    if kind == 12:
        return None, rng.choice([None, "yyyy-mm-dd", "0.00"])
    # hostile: negative serials, serials past 9999-12-31, error cells
    if kind == 13:
        return rng.choice([-1, -0.5, -36000.25]), rng.choice(DATE_FORMATS)
    if kind == 14:
        return rng.choice([2958465, 2958465.5, 2958466, 3e6, 1e300]), rng.choice(DATE_FORMATS)
    return rng.choice(["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"]), None


def _plan(seed: int, *, hostile: bool):
    """A random sheet: (1904 epoch, hidden first sheet state, trailing sheet, cells)."""
    rng = random.Random(seed)
    epoch_1904 = rng.random() < 0.3
    hidden = rng.choice(["hidden", "veryHidden"]) if rng.random() < 0.3 else None
    top, left = rng.choice([(1, 1), (1, 1), (3, 1), (1, 3), (2, 2)])
    columns = rng.randint(1, 9)
    cells = [
        (top, left + j, rng.choice([f"c{j}", f"  c{j} ", "", f"ü{j}"]), None)
        for j in range(columns)
    ]
    for i in range(rng.randint(0, 40)):
        if rng.random() < 0.1:
            continue  # an empty row
        for j in range(columns + (1 if rng.random() < 0.05 else 0)):
            if rng.random() < 0.15:
                continue  # an empty cell
            value, number_format = _value(rng, hostile=hostile)
            cells.append((top + 1 + i, left + j, value, number_format))
    return epoch_1904, hidden, rng.random() < 0.2, cells


def _workbook(seed: int, path, *, hostile: bool, writer: str = "openpyxl") -> None:
    epoch_1904, hidden, trailing, cells = _plan(seed, hostile=hostile)
    if writer == "xlsxwriter":
        return _xlsxwriter_workbook(path, epoch_1904, hidden, trailing, cells)
    book = Workbook()
    if epoch_1904:
        book.epoch = CALENDAR_MAC_1904
    sheet = book.active
    if hidden:
        sheet.title = "old"
        sheet.append(["nothing", 1])
        sheet.sheet_state = hidden
        sheet = book.create_sheet("data")
    for row, column, value, number_format in cells:
        cell = sheet.cell(row, column, value)
        if number_format is not None:
            cell.number_format = number_format
    if trailing:
        book.create_sheet("notes").append(["later", 2])
    book.save(path)


def _xlsxwriter_workbook(path, epoch_1904, hidden, trailing, cells) -> None:
    """The same sheet written by XlsxWriter: shared strings, its own styles and attributes."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    book = xlsxwriter.Workbook(str(path), {"date_1904": epoch_1904})
    formats: dict = {}

    def style(code):
        if code not in formats:
            formats[code] = book.add_format({"num_format": code})
        return formats[code]

    if hidden:
        old = book.add_worksheet("old")
        old.write_row(0, 0, ["nothing", 1])
    sheet = book.add_worksheet("data")
    if hidden:
        sheet.activate()
        old.hide()  # XlsxWriter writes "hidden" (it has no "veryHidden")
    default_formats = {dt.datetime: "yyyy-mm-dd hh:mm:ss", dt.date: "yyyy-mm-dd"}
    default_formats |= {dt.time: "hh:mm:ss", dt.timedelta: "[h]:mm:ss"}
    for row, column, value, number_format in cells:
        row, column = row - 1, column - 1
        code = number_format or default_formats.get(type(value))
        cell_format = style(code) if code else None
        if value is None:
            sheet.write_blank(row, column, None, cell_format)
        elif isinstance(value, bool):
            sheet.write_boolean(row, column, value, cell_format)
        elif isinstance(value, str):
            sheet.write_string(row, column, value, cell_format)
        elif isinstance(value, dt.date | dt.time | dt.timedelta):
            sheet.write_datetime(row, column, value, cell_format)
        else:
            sheet.write_number(row, column, value, cell_format)
    if trailing:
        book.add_worksheet("notes").write_row(0, 0, ["later", 2])
    book.close()


def _read(path, monkeypatch, *, fast: bool):
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(readers, "_calamine_records", lambda *args: None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about a date serial out of range
            try:
                return readers._read_xlsx(path)
            except readers.DataError as exc:
                return str(exc)


def _assert_same(a, b) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    pd.testing.assert_frame_equal(a.cells, b.cells, check_exact=True)
    np.testing.assert_array_equal(a.source_row, b.source_row)
    assert a.malformed == b.malformed
    pd.testing.assert_frame_equal(a.problems, b.problems, check_exact=True)
    assert a.notes == b.notes


def _fast_taken(path, monkeypatch) -> bool:
    taken = []
    original = readers._calamine_records

    def spy(*args):
        result = original(*args)
        taken.append(result is not None)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(readers, "_calamine_records", spy)
        _read(path, patch, fast=True)
    return any(taken)


@pytest.mark.parametrize("writer", ["openpyxl", "xlsxwriter"])
@pytest.mark.parametrize("hostile", [False, True])
def test_random_workbooks_read_the_same_cells_by_both_paths(tmp_path, monkeypatch, hostile, writer):
    fast = []
    for seed in range(40):
        path = tmp_path / f"book{seed}_{hostile}.xlsx"
        _workbook(seed, path, hostile=hostile, writer=writer)
        _assert_same(_read(path, monkeypatch, fast=True), _read(path, monkeypatch, fast=False))
        fast.append(_fast_taken(path, monkeypatch))
    # every plain workbook is read by calamine; hostile cells (errors, serials out of range) are
    # read by the fast path too, but a huge serial in a duration format makes calamine itself
    # fail (OverflowError), and such a workbook goes to openpyxl
    assert all(fast) if not hostile else sum(fast) >= 20, fast


def _book(path, rows, number_format=None) -> None:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if number_format is not None:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=2, max_col=2):
            cell.number_format = number_format
    book.save(path)


def test_error_cells_and_dates_out_of_range_read_as_openpyxl_reads_them(tmp_path, monkeypatch):
    path = tmp_path / "t.xlsx"
    # B: serials in a date format: -1 is 1899-12-29 (openpyxl counts back from 1899-12-30,
    # without the leap-year shift of serials 1-59), 2958466 is past 9999-12-31 (#VALUE!)
    _book(path, [["id", "d"], ["a", -1], ["b", 2958466], ["c", "#N/A"], ["d", 45000]], "yyyy-mm-dd")
    raw = _read(path, monkeypatch, fast=True)
    assert _fast_taken(path, monkeypatch)
    assert raw.cells["d"].tolist() == ["1899-12-29", "#VALUE!", "#N/A", "2023-03-15"]
    _assert_same(raw, _read(path, monkeypatch, fast=False))


def _edit_sheet(path, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    assert old in parts[sheet]
    parts[sheet] = parts[sheet].replace(old, new)
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, None),  # a formula, written by openpyxl
        # 17 digits: openpyxl reads the exact int, calamine a float
        (b'<c r="B3" t="n"><v>2</v>', b'<c r="B3" t="n"><v>12345678901234567</v>'),
        (b'<c r="B3" t="n"><v>2</v>', b'<c r="B3" t="d"><v>2026-03-02</v>'),  # an ISO date
        (b'<c r="B3" t="n"><v>2</v>', b'<c r="B3" t="n"><v> 2</v>'),  # odd number text
        (b'<c r="B3" t="n"><v>2</v>', b'<c r="B3" t="str"><v>2</v>'),  # a formula string
        (b"<t>b</t>", b"<r><t>b</t></r><t>c</t>"),  # rich text
        (b"<t>b</t>", b"<t>b&#13;_x000D_</t>"),  # a CR and an Excel escape
        (b'<dimension ref="A1:B3" />', b'<dimension ref="A1:B2" />'),  # smaller than the data
        (b'<dimension ref="A1:B3" />', b""),  # no dimension: openpyxl rows are ragged
        (b'<c r="A3" ', b"<c "),  # a cell without a reference
    ],
)
def test_features_the_fast_path_refuses_go_to_openpyxl(tmp_path, monkeypatch, old, new):
    path = tmp_path / "t.xlsx"
    book = Workbook()
    sheet = book.active
    for row in [["id", "n"], ["a", 1], ["b", 2]]:
        sheet.append(row)
    if old is None:
        sheet["B3"] = "=1+1"
    book.save(path)
    if old is not None:
        _edit_sheet(path, old, new)
    assert not _fast_taken(path, monkeypatch)
    _assert_same(_read(path, monkeypatch, fast=True), _read(path, monkeypatch, fast=False))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'<c r="B2" s="1" t="n">', b'<c r="B2" t="n" s="1">'),  # the style after the type
        (b'<row r="2">', b'<row r="2" s="1" customFormat="1">'),  # a row's style
    ],
)
def test_date_cells_found_in_any_attribute_order(tmp_path, monkeypatch, old, new):
    path = tmp_path / "t.xlsx"
    _book(path, [["id", "d"], ["a", -1], ["b", 2958466], ["c", 45000]], "yyyy-mm-dd")
    _edit_sheet(path, old, new)
    raw = _read(path, monkeypatch, fast=True)
    assert _fast_taken(path, monkeypatch)
    assert raw.cells["d"].tolist() == ["1899-12-29", "#VALUE!", "2023-03-15"]
    _assert_same(raw, _read(path, monkeypatch, fast=False))


def test_plain_number_formats():
    assert readers._plain_format("General") and readers._plain_format('0.0 "kg"')
    assert readers._plain_format("0.00E+00") and readers._plain_format("#,##0;-#,##0")
    for code in ["yyyy-mm-dd", "[h]:mm:ss", "[Red]0.0", "0.0 kg", "General;@x", None]:
        assert not readers._plain_format(code), code


def test_cells_outside_a_wrong_stated_size_are_read_and_noted(tmp_path, monkeypatch):
    # Bug fixed (session 7): openpyxl's read-only sheet stops at the stated <dimension>; a
    # sheet stating "A1" loaded as an empty table, its rows lost without a word
    path = tmp_path / "t.xlsx"
    _book(path, [["id", "n"], ["a", 1], ["b", 2], ["c", 3]])
    _edit_sheet(path, b'<dimension ref="A1:B4" />', b'<dimension ref="A1" />')
    for fast in (True, False):
        raw = _read(path, monkeypatch, fast=fast)
        assert raw.cells.to_dict("list") == {"id": ["a", "b", "c"], "n": ["1", "2", "3"]}
        assert raw.source_row.tolist() == [2, 3, 4]
        assert raw.notes == [
            "the sheet states its size as A1 but has cells up to B4: all of them were read"
        ]


def test_rich_and_multiline_shared_strings_read_alike(tmp_path, monkeypatch):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = tmp_path / "rich.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet, bold = book.add_worksheet(), book.add_format({"bold": True})
    sheet.write_row(0, 0, ["id", "name"])
    sheet.write_string(1, 0, "a")
    sheet.write_rich_string(1, 1, "plain ", bold, "bold", " tail ")
    sheet.write_string(2, 0, "b")
    sheet.write_rich_string(2, 1, bold, " x ", "y")
    sheet.write_string(3, 0, "c")
    sheet.write_string(3, 1, 'line1\nline2 & <tag> "q"')
    book.close()
    raw = _read(path, monkeypatch, fast=True)
    assert _fast_taken(path, monkeypatch)
    # the runs of a rich string joined, padding stripped, line breaks and entities kept
    assert raw.cells["name"].tolist() == ["plain bold tail", "x y", 'line1\nline2 & <tag> "q"']
    _assert_same(raw, _read(path, monkeypatch, fast=False))


DATA = Path(__file__).parent / "data" / "xlsx"


def test_a_libreoffice_saved_workbook_reads_its_source_cells_by_both_paths(monkeypatch):
    # Written by another program than the ones above: LibreOffice Calc 7.4 converted
    # exercises_libreoffice_source.csv to .xlsx (tests/data/README.md). Calc typed the cells
    # itself (dates as serials in a `yyyy\-mm\-dd` format, numbers under a custom "General"
    # format numbered 164, empty cells left out of the XML), so the cells read must be the
    # source CSV's texts, by the fast path and by openpyxl alike.
    path = DATA / "exercises_libreoffice.xlsx"
    source = pd.read_csv(
        DATA / "exercises_libreoffice_source.csv", dtype=str, keep_default_na=False
    )
    assert _fast_taken(path, monkeypatch)
    fast = _read(path, monkeypatch, fast=True)
    _assert_same(fast, _read(path, monkeypatch, fast=False))
    pd.testing.assert_frame_equal(
        fast.cells.reset_index(drop=True).astype(object), source.astype(object)
    )
    np.testing.assert_array_equal(fast.source_row, np.arange(2, 2 + len(source)))
