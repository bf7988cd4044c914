"""Replace patient (and clinician) ids in a data folder by keyed pseudonyms (HMAC-SHA256).

The pseudonym of an id is ``P-`` (patients) or ``CL-`` (clinicians) followed by the first 16
hexadecimal digits (64 bits) of ``HMAC-SHA256(key, "<kind>:" + id)``, where ``<kind>`` is
``patient`` or ``clinician``, the id is the cell's text with surrounding blanks removed (as the
loader reads it) in UTF-8, and the key is the key file's bytes (or ``HIPDATA_PSEUDONYM_KEY``'s
UTF-8 bytes) without surrounding whitespace. Anyone holding the key can recompute the same
pseudonyms, e.g. in R with ``digest::hmac(key, paste0("patient:", id), "sha256")``; without it
they cannot be reversed or recomputed, so no mapping table is written.

Why 64 bits: with *n* distinct ids the chance that two share a pseudonym is about
``n**2 / 2**65``, 3e-8 for a million patients; and the pseudonyms are checked: a collision stops
the run instead of merging two patients.

What is kept: every table the loader would read (same file discovery, same readers: CSV, xlsx,
Parquet), every row (nothing is validated away: a row with an unknown patient or a bad date is
written with its id replaced like any other), and every column that is a field of the contract,
as text, written as CSV. Columns that are not contract fields (notes, names, phone numbers, a
clinic's own columns) may carry identifiers: they are dropped and listed in the report unless
``keep_columns`` names them. The contract's ``condition`` is a category (``hip_oa``, ...): a
value that does not look like one (longer than 40 characters, or other than letters, digits,
``_``, ``-``, ``.``, ``/`` and spaces) stops the run, naming the rows, because free text there
may name a person; ``drop_columns=["condition"]`` drops the column instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hipdata.errors import DataError
from hipdata.io.columns import KNOWN_COLUMNS
from hipdata.io.loader import COLUMN_SYNONYMS, TABLES, _find_files
from hipdata.io.readers import column_key, read_raw
from hipdata.io.writers import write_tables

#: Environment variable holding the key when no key file is given.
KEY_ENV = "HIPDATA_PSEUDONYM_KEY"
#: Shortest key accepted, in bytes (128 bits, e.g. 32 hex digits).
MIN_KEY_BYTES = 32
#: Hex digits kept from the HMAC (64 bits).
PSEUDONYM_HEX_DIGITS = 16
PREFIXES = {"patient": "P-", "clinician": "CL-"}
#: A category code (``hip_oa``, ``FAI syndrome``); anything else in ``condition`` is free text.
CONDITION_CODE = r"[A-Za-z0-9_ ./-]{0,40}"
KEY_FIX = (
    f"make a random key once and keep it outside the data folder, e.g. "
    f'`python -c "import secrets; print(secrets.token_hex(32))" > pseudonym.key`, then pass '
    f"--key-file pseudonym.key (or set {KEY_ENV})"
)

#: Contract fields per table (CONTRACT §1); ``sets`` / ``load_lb`` are the exercises layouts.
FIELDS = KNOWN_COLUMNS


@dataclass
class PseudonymReport:
    """What :func:`pseudonymise_folder` wrote; no ids and no key in it."""

    out: Path
    #: One row per table: table, source_file, output_file, rows, patient_ids, clinician_ids,
    #: dropped_columns (``|``-separated). ``rows`` in = rows out.
    tables: pd.DataFrame
    #: Files in the folder that are not tables hipdata reads (not copied).
    ignored_files: list[str]


def read_key(key: str | bytes | None = None, key_file: str | os.PathLike | None = None) -> bytes:
    """The pseudonymisation key: ``key``, else ``key_file``'s bytes, else ``$HIPDATA_PSEUDONYM_KEY``.

    Surrounding whitespace (a key file's trailing newline) is removed. A missing, empty or short
    key (under :data:`MIN_KEY_BYTES` bytes) raises :class:`DataError`; the message never
    contains the key.
    """
    if key is not None and key_file is not None:
        raise DataError("give the key or a key file, not both", fix=KEY_FIX)
    if key is None and key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise DataError("the key file does not exist", file=str(path), fix=KEY_FIX)
        key = path.read_bytes()
        where = f"the key file {path.name}"
    elif key is None:
        key = os.environ.get(KEY_ENV)
        where = f"${KEY_ENV}"
        if key is None:
            raise DataError(f"no key: neither --key-file nor ${KEY_ENV} is given", fix=KEY_FIX)
    else:
        where = "the key"
    material = (key.encode("utf-8") if isinstance(key, str) else bytes(key)).strip()
    if not material:
        raise DataError(f"{where} is empty", fix=KEY_FIX)
    if len(material) < MIN_KEY_BYTES:
        raise DataError(
            f"{where} is too short ({len(material)} bytes; at least {MIN_KEY_BYTES} needed)",
            fix=KEY_FIX,
        )
    return material


def pseudonyms(ids: pd.Series, key: bytes, kind: str = "patient") -> pd.Series:
    """Pseudonym of each id (empty ids stay empty); computed once per distinct id.

    Examples
    --------
    >>> import pandas as pd
    >>> key = b"0123456789abcdef0123456789abcdef"
    >>> pseudonyms(pd.Series(["P001", " P001 ", ""]), key).tolist()
    ['P-52491203b0667be4', 'P-52491203b0667be4', '']
    """
    text = ids.fillna("").astype(str).str.strip()
    codes, uniques = pd.factorize(text)
    prefix = PREFIXES[kind]
    names = [
        (
            prefix
            + hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[
                :PSEUDONYM_HEX_DIGITS
            ]
            if value
            else ""
        )
        for value in uniques  # one HMAC per distinct id: hashing has no vectorised form
    ]
    named = pd.Series(names, dtype=object)
    clash = named[named != ""].duplicated(keep=False)
    if clash.any():
        raise DataError(
            f"{int(clash.sum())} different {kind} ids share a pseudonym (an HMAC prefix "
            "collision); nothing was written",
            fix="run again with another key",
        )
    return pd.Series(named.to_numpy()[codes] if len(codes) else [], index=ids.index, dtype=object)


def _field(header: str, table: str) -> str | None:
    key = column_key(header)
    fields = FIELDS[table] + ("clinician_id",)  # a clinician per session or row is kept too
    for name in fields:
        if column_key(name) == key:
            return name
    synonym = COLUMN_SYNONYMS.get(key)
    return synonym if synonym in fields else None


def pseudonymise_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    key: str | bytes | None = None,
    key_file: str | os.PathLike | None = None,
    clinicians: bool = False,
    keep_columns: Iterable[str] = (),
    drop_columns: Iterable[str] = (),
) -> PseudonymReport:
    """Write a copy of a data folder with patient (and clinician) ids replaced by pseudonyms.

    Parameters
    ----------
    folder : path
        The data folder (the tables :func:`hipdata.load` reads, in any of its formats).
    out : path
        Output folder (created); each table is written as ``<table>.csv`` (text, formula-safe),
        with ``pseudonymise_report.csv``. It must not be ``folder``.
    key, key_file : optional
        The secret (see :func:`read_key`); default ``$HIPDATA_PSEUDONYM_KEY``.
    clinicians : bool
        Also replace ``clinician_id`` (patients table) by ``CL-`` pseudonyms.
    keep_columns : iterable of str
        Non-contract columns to keep as they are (you vouch they hold no identifiers).
    drop_columns : iterable of str
        Contract columns to drop too (e.g. ``condition`` holding free text).

    Returns
    -------
    PseudonymReport
        Per table: rows (in = out), distinct ids replaced, columns dropped.

    Raises
    ------
    DataError
        Bad or missing key, unreadable table, a row that cannot be split into cells, free text
        in ``condition``, a pseudonym collision, or ``out`` that is ``folder``. Nothing is
        written then.
    """
    secret = read_key(key, key_file)
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError("no such folder", file=str(folder), fix="give the data folder")
    if out.resolve() == folder.resolve():
        raise DataError(
            "the output folder is the data folder",
            file=str(out),
            fix="write the pseudonymised copy to another folder (--out)",
        )
    files, ignored = _find_files(folder)
    keep = {column_key(c) for c in keep_columns}
    drop = {column_key(c) for c in drop_columns}
    outputs: dict[str, pd.DataFrame] = {}
    targets: list[tuple[str, str, str]] = []  # (table, header, kind) of each id column
    rows = []
    for table in TABLES:
        if table not in files:
            continue
        raw = read_raw(files[table])
        if raw.malformed:
            numbers = ", ".join(str(number) for number, _ in raw.malformed[:10])
            raise DataError(
                f"rows {numbers} have more cells than the header; their ids cannot be found "
                "safely, so nothing was written",
                file=raw.name,
                fix="repair those rows (a stray separator or an unquoted decimal comma) and run "
                "again",
            )
        # readers that refuse cells or whole columns (too long, nested) leave them empty: a copy
        # must not lose them quietly
        refused = getattr(raw, "problems", None)
        unusable = getattr(raw, "unusable", {})
        if (refused is not None and len(refused)) or unusable:
            what = ", ".join(list(unusable)[:5]) or f"{len(refused)} cell(s)"
            raise DataError(
                f"the reader could not take {what} as text, so a copy would lose them; nothing "
                "was written",
                file=raw.name,
                fix="run `hipdata validate` on the folder to see which cells, and repair them",
            )
        cells = raw.cells.copy()
        fields = {header: _field(header, table) for header in cells.columns}
        dropped = [
            header
            for header, name in fields.items()
            if (name is None and column_key(header) not in keep) or column_key(header) in drop
        ]
        if (
            table == "patients"
            and "condition" not in {fields[h] for h in dropped}
            and any(name == "condition" for name in fields.values())
        ):
            for header in [h for h, name in fields.items() if name == "condition"]:
                free = ~cells[header].str.fullmatch(CONDITION_CODE)
                if free.any():
                    where = ", ".join(map(str, raw.source_row[free.to_numpy()][:10]))
                    raise DataError(
                        f"column {header!r} holds free text in rows {where} (it may name a "
                        "person); nothing was written",
                        file=raw.name,
                        fix="replace it by a category code (hip_oa, gtps, ...) or drop the "
                        "column (--drop condition)",
                    )
        kinds = {"patient_id": "patient"} | ({"clinician_id": "clinician"} if clinicians else {})
        id_columns = [
            (header, kinds[name])
            for header, name in fields.items()
            if header not in dropped and name in kinds
        ]
        distinct = {
            kind: pd.concat(
                [cells[h] for h, k in id_columns if k == kind] or [pd.Series([], dtype=str)]
            )
            .str.strip()
            .replace("", pd.NA)
            .nunique()
            for kind in ("patient", "clinician")
        }
        outputs[table] = cells.drop(columns=dropped)
        targets.extend((table, header, kind) for header, kind in id_columns)
        rows.append(
            (
                table,
                raw.name,
                f"{table}.csv",
                len(cells),
                distinct["patient"],
                distinct["clinician"],
                "|".join(dropped),
            )
        )
    # one mapping per kind over every table, so a collision between ids of different tables
    # (an unknown id in exercises and a patient, say) is caught too
    for kind in PREFIXES:
        columns = [(table, header) for table, header, k in targets if k == kind]
        if not columns:
            continue
        ids = pd.concat([outputs[t][h] for t, h in columns]).str.strip().drop_duplicates()
        mapping = pd.Series(pseudonyms(ids, secret, kind).to_numpy(), index=ids.to_numpy())
        for table, header in columns:
            outputs[table][header] = outputs[table][header].str.strip().map(mapping)
    report = pd.DataFrame(
        rows,
        columns=[
            "table",
            "source_file",
            "output_file",
            "rows",
            "patient_ids",
            "clinician_ids",
            "dropped_columns",
        ],
    )
    out.mkdir(parents=True, exist_ok=True)
    clashing = [
        path.name
        for path in sorted(out.iterdir())
        if path.is_file()
        and path.stem.strip().lower() in outputs
        and path.name != f"{path.stem.strip().lower()}.csv"
    ]
    if clashing:
        raise DataError(
            f"the output folder already holds {', '.join(clashing)}, which would sit beside the "
            "pseudonymised tables",
            file=str(out),
            fix="use an empty output folder",
        )
    write_tables({**outputs, "pseudonymise_report": report}, out)
    return PseudonymReport(out=out, tables=report, ignored_files=ignored)
