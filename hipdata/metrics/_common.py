"""Helpers shared by the metric modules: threshold comparisons, the week formula, patient joins."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hipdata.protocol import TOLERANCE

SESSION_KEYS = ["patient_id", "date"]
FAMILY_SESSION_KEYS = ["patient_id", "date", "family"]


def at_least(values: pd.Series, threshold: float) -> pd.Series:
    """``values >= threshold`` allowing :data:`TOLERANCE` for decimal scores (NaN -> False)."""
    return values >= threshold - TOLERANCE


def at_most(values: pd.Series, threshold: float) -> pd.Series:
    """``values <= threshold`` allowing :data:`TOLERANCE` for decimal scores (NaN -> False)."""
    return values <= threshold + TOLERANCE


def days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """Whole days from ``earlier`` to ``later`` (float64, NaN where either date is missing)."""
    return (later - earlier).dt.days.astype("float64")


def week_of(dates: pd.Series, start_dates: pd.Series) -> pd.Series:
    """CONTRACT §4 week: ``floor((date - start_date).days / 7)``; the 7 days before start are -1."""
    weeks = _whole_weeks(dates, start_dates)
    if weeks is not None:
        name = dates.name if dates.name == start_dates.name else None
        return pd.Series(weeks, index=dates.index, name=name)
    return np.floor(days_between(dates, start_dates) / 7).astype("int64")


def _whole_weeks(dates: pd.Series, start_dates: pd.Series) -> np.ndarray | None:
    """:func:`week_of` on the integer ticks: days = ``(date - start) // ticks per day`` (floor,
    as ``Timedelta.days``), weeks = ``days // 7`` (for whole days below 2**53,
    ``floor(days / 7)`` in floating point is the same integer). None when the two columns are
    not datetimes of one plain unit on the same index, a date is missing, or a tick count is
    so large that the difference could overflow (the caller then uses the Series expression)."""
    dtype = dates.dtype
    if (
        not isinstance(dtype, np.dtype)
        or dtype.kind != "M"
        or start_dates.dtype != dtype
        or not dates.index.equals(start_dates.index)
    ):
        return None
    unit, count = np.datetime_data(dtype)
    per_day = _TICKS_PER_DAY.get(unit)
    if per_day is None or count != 1:
        return None
    later = dates.to_numpy().view("int64")
    earlier = start_dates.to_numpy().view("int64")
    if len(later) == 0:
        return np.zeros(0, dtype="int64")
    limit = 2**62  # NaT is the smallest int64, so it fails this test too
    for ticks in (later, earlier):
        if int(ticks.min()) <= -limit or int(ticks.max()) >= limit:
            return None
    days = later - earlier
    days //= per_day
    days //= 7
    return days


def attach_patients(
    frame: pd.DataFrame, patients: pd.DataFrame, columns: list[str], *, as_codes: bool = False
) -> pd.DataFrame:
    """Add patient columns (e.g. ``start_date``, ``clinic_id``) to rows keyed by ``patient_id``.

    ``as_codes=True`` adds text columns as :func:`coded` categoricals (a take of integer codes per
    row instead of one of strings; :func:`text_as_str` turns them back). A categorical
    ``patient_id`` is looked up once per category, not once per row.

    Raises
    ------
    ValueError
        When a row names a patient missing from ``patients`` (the loader quarantines such rows,
        so this only happens with hand-made frames).
    """
    added = [c for c in columns if c not in frame.columns]
    ids = pd.Index(patients["patient_id"])
    keys = frame["patient_id"]
    if ids.is_unique and isinstance(keys.dtype, pd.CategoricalDtype):
        # one hash lookup per distinct patient, spread to the rows by their codes
        by_category = ids.get_indexer(keys.cat.categories)
        codes = keys.cat.codes.to_numpy()
        position = np.where(codes >= 0, by_category[codes], -1)
    elif ids.is_unique:
        # one hash lookup per row; -1 for a patient missing from ``patients`` (raised below).
        # (``isin`` first would build one Python object per patient id: seconds at 10^5 ids)
        position = ids.get_indexer(keys)
    else:
        known = keys.isin(patients["patient_id"])
        if not known.all():
            _raise_unknown(frame.loc[~known, "patient_id"])
        return frame.merge(
            text_as_str(patients[["patient_id", *added]]),
            on="patient_id",
            how="left",
            validate="many_to_one",
        )
    if (position < 0).any():
        _raise_unknown(keys[position < 0])
    # a left many-to-one join as one hash lookup per row (or category) and a take per added
    # column: no merge (which factorizes both key columns and copies every column of ``frame``)
    extra = patients[added].reset_index(drop=True)
    extra = coded(extra, _text_columns(extra)) if as_codes else text_as_str(extra)
    out = frame.reset_index(drop=True)
    taken = {c: extra[c].take(position).reset_index(drop=True) for c in added}
    return out.assign(**taken) if taken else out


def _raise_unknown(unknown_ids: pd.Series) -> None:
    unknown = sorted(unknown_ids.astype(str).unique())
    raise ValueError(f"rows refer to patients missing from the patients table: {unknown}")


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if frame[c].dtype == object
        or isinstance(frame[c].dtype, pd.StringDtype)
        or _is_text_categorical(frame[c].dtype)
    ]


def _is_text_categorical(dtype) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) and (
        dtype.categories.dtype == object or isinstance(dtype.categories.dtype, pd.StringDtype)
    )


def coded(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with the text ``columns`` as categoricals whose categories are sorted.

    The categories are the distinct values in the order ``sort_values`` puts text in, so sorting
    or grouping (``sort=True``) on the codes orders rows exactly as on the text, with missing
    values (code -1) last / dropped as for text; every later group-by, sort and merge works on
    integers instead of hashing strings. A column that is already categorical keeps its codes
    when its categories are sorted. :func:`text_as_str` turns the columns back into text.
    """
    replaced = {}
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            categories = values.cat.categories
            if not categories.is_monotonic_increasing:
                values = values.cat.reorder_categories(categories.sort_values())
            if values.cat.ordered:
                values = values.cat.as_unordered()
        else:
            codes, uniques = factorize_sorted(values)
            values = pd.Series(
                pd.Categorical.from_codes(codes, categories=uniques),
                index=values.index,
                name=column,
            )
        replaced[column] = values
    return frame.assign(**replaced) if replaced else frame


def factorize_sorted(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values, sort=True)``, hashing only the first value of each run of equal
    values when the values come in long runs (a patient's rows together): Arrow compares each
    value with the one before (cheaper than a hash), the run heads are factorized, and their
    codes repeated over the runs. The codes are the same: every distinct value heads a run, so
    the sorted distinct values are the same."""
    array = values.array
    n = len(values)
    if n < 2 or not isinstance(array, pd.arrays.ArrowStringArray):
        return pd.factorize(values, sort=True)
    text = array._pa_array
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    change = pc.fill_null(pc.not_equal(text.slice(1), text.slice(0, n - 1)), True)
    heads = np.flatnonzero(np.r_[True, change.to_numpy(zero_copy_only=False)])
    if len(heads) > n // 4:  # short runs: a hash per row is as cheap
        return pd.factorize(values, sort=True)
    head_codes, uniques = pd.factorize(values.take(heads), sort=True)
    return np.repeat(head_codes, np.diff(np.r_[heads, n])), uniques


def text_as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """Give ``object`` text columns (e.g. an all-empty ``clinician_id``) and text categoricals
    (the metrics' :func:`coded` keys, or ids a loader made categorical) pandas' ``str`` dtype,
    so every output table types them alike and Parquet round-trips them."""
    dtypes = frame.dtypes  # once: ``frame[c]`` per column builds a Series each time
    plain = [c for c, dtype in dtypes.items() if dtype == np.dtype(object)]
    categorical = [c for c, dtype in dtypes.items() if _is_text_categorical(dtype)]
    if categorical:
        frame = frame.assign(**{c: _categorical_as_str(frame[c]) for c in categorical})
    return frame.astype(dict.fromkeys(plain, "str")) if plain else frame


def _categorical_as_str(values: pd.Series) -> pd.Series:
    """``values.astype("str")`` for a categorical, as one take from its categories as text
    (``astype`` goes through one Python object per row)."""
    categories = values.cat.categories.astype("str")
    codes = values.cat.codes.to_numpy()
    data = getattr(categories.array, "_pa_array", None)
    if isinstance(data, (pa.Array, pa.ChunkedArray)) and len(codes):
        # one Arrow take with the codes as they are (int8 / int16) and the missing ones (-1)
        # masked: what ``take(codes, allow_fill=True)`` gives, without its int64 copy and checks
        missing = codes < 0
        indices = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
        text = pd.array(pc.take(data, indices), dtype=categories.dtype)
    else:
        text = categories.array.take(codes, allow_fill=True)
    return pd.Series(text, index=values.index, name=values.name)


def safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 or missing."""
    numerator = numerator.astype("float64")
    denominator = denominator.astype("float64")
    return (numerator / denominator.where(denominator != 0)).astype("float64")


def _key_integers(values: pd.Series) -> np.ndarray | None:
    """The integers a key sorts by (categorical codes, datetime ticks, integers), or None when
    the key has missing values or another dtype (the callers then take the general path)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return None if (codes < 0).any() else codes.astype("int64", copy=False)
    if dtype.kind == "M" and not isinstance(dtype, pd.DatetimeTZDtype):
        ticks = values.to_numpy().view("int64")
        return None if values.isna().any() else ticks
    if dtype.kind in "iu" and isinstance(dtype, np.dtype):
        return values.to_numpy().astype("int64", copy=False)
    return None


def _run_changes(frame: pd.DataFrame, keys: list[str]) -> list[np.ndarray] | None:
    """For each prefix ``keys[:k + 1]``, whether each row (after the first) starts a new run of
    that prefix; None when ``frame`` is not sorted by ``keys`` or a key cannot be read as
    integers (see :func:`_key_integers`)."""
    decided = np.zeros(max(len(frame) - 1, 0), dtype=bool)
    changes = []
    for key in keys:
        values = _key_integers(frame[key])
        if values is None:
            return None
        step = values[1:] - values[:-1]
        if ((step < 0) & ~decided).any():  # a row sorts before the one above it
            return None
        decided = decided | (step != 0)
        changes.append(decided)
    return changes


def _runs_from_change(decided: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(decided) + 1
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = decided
    starts = np.flatnonzero(change)
    group = np.cumsum(change) - 1
    return group, starts


def sorted_runs(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Group numbers of ``frame``'s rows for ``groupby(keys, sort=True)``, read off the row order.

    When ``frame`` is sorted by ``keys`` (as the sets table is by patient, date, family, ...),
    each group is one run of consecutive rows and the runs come in the group-by's order, so
    the group of a row is the number of key changes before it: no hashing or sorting. Returns
    ``(group, starts)`` (the group number of each row, 0-based, and the first row of each
    group), or None when ``frame`` is not so sorted or a key is missing somewhere or is not a
    categorical, datetime or integer column (the caller then groups the usual way).
    """
    if len(frame) == 0:
        if any(_key_integers(frame[k]) is None for k in keys):
            return None
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    changes = _run_changes(frame, keys)
    return None if changes is None else _runs_from_change(changes[-1])


def nested_groups(frame: pd.DataFrame, keys: list[str], depths: list[int]) -> list[Groups | None]:
    """:func:`group_codes` of each prefix ``keys[:depth]`` of a frame sorted by ``keys``, from
    one pass over the key columns (e.g. sessions and family sessions of the sets table)."""
    changes = _run_changes(frame, keys) if len(frame) else None
    if changes is None:
        return [group_codes(frame, keys[:depth]) for depth in depths]
    out = []
    for depth in depths:
        group, starts = _runs_from_change(changes[depth - 1])
        out.append(Groups(_range_categorical(group, len(starts)), starts))
    return out


class Groups(NamedTuple):
    """The groups of a sorted frame read off its row order (see :func:`group_codes`).

    Every category of ``grouper`` (``0 .. n - 1``) has rows, so pandas may group by it with
    ``observed=False`` and ``sort=True``: the codes are used as they are, with no hash of them.
    """

    grouper: pd.Categorical  # one code per row, 0.. in key order
    first: np.ndarray  # the first row of each group

    @property
    def codes(self) -> np.ndarray:
        """The group of each row."""
        return self.grouper.codes

    @property
    def n_groups(self) -> int:
        return len(self.first)

    def subset(self, keep: np.ndarray) -> Groups:
        """The groups of the rows where ``keep`` is True (a filter keeps the row order, so the
        kept rows of a group stay together); groups left without rows are dropped and the rest
        renumbered in order."""
        codes = self.grouper.codes[keep]
        present = np.zeros(self.n_groups, dtype=bool)
        present[codes] = True
        if present.all():
            renumbered = codes
        else:
            renumbered = (np.cumsum(present) - 1)[codes]
        n_groups = int(present.sum())
        first = np.full(n_groups, len(codes), dtype="int64")
        np.minimum.at(first, renumbered, np.arange(len(codes)))
        return Groups(_range_categorical(renumbered, n_groups), first)


def group_by(frame: pd.DataFrame, keys: list[str], groups: Groups | None = None):
    """``frame.groupby(keys, sort=True, observed=True)``, by the groups' codes when given (the
    same groups, in the same order, without hashing the keys or the codes)."""
    if groups is None:
        return frame.groupby(keys, sort=True, observed=True)
    return frame.groupby(groups.grouper, sort=True, observed=False)


def agg_by(
    frame: pd.DataFrame, keys: list[str], *, groups: Groups | None = None, **named
) -> pd.DataFrame:
    """``frame.groupby(keys, sort=True, observed=True).agg(**named).reset_index()``, faster on
    sorted frames.

    When ``frame`` is sorted by ``keys`` (or by all but the last, and the last is a categorical),
    the groups are read off the row order (:func:`group_codes`, or ``groups`` when already
    made) and pandas groups by one integer code per row instead of hashing every key column;
    the same cython aggregations run on the same rows in the same order, so the result is
    identical.
    """
    if groups is None:
        groups = group_codes(frame, keys)
    if groups is None:
        return frame.groupby(keys, sort=True, observed=True).agg(**named).reset_index()
    grouped = group_by(frame, keys, groups)
    key_frame = frame[keys].take(groups.first).reset_index(drop=True)
    if not all(isinstance(how, str) and how in _NAMED_REDUCTIONS for _, how in named.values()):
        values = grouped.agg(**named)
        return pd.concat([key_frame, values.reset_index(drop=True)], axis=1)
    # each named aggregation as the column's own reduction (what ``agg`` calls for a reduction
    # named by a string, without its per-call set-up), side by side in the order named
    values = {
        name: _reduction(frame, grouped, groups, column, how)
        for name, (column, how) in named.items()
    }
    return key_frame.assign(**values)


def _reduction(frame: pd.DataFrame, grouped, groups: Groups, column: str, how: str):
    """``grouped[column].<how>()`` as an array. ``size`` is a count of the group codes and
    ``first`` of a column that cannot hold a missing value (numpy integers or booleans) is the
    value at the group's first row: the same integers, without pandas' group-by machinery."""
    if how == "size":
        return np.bincount(groups.codes, minlength=groups.n_groups).astype("int64")
    if how == "first":
        values = frame[column]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
            return values.to_numpy()[groups.first]
    return getattr(grouped[column], how)().array


#: Reductions :func:`agg_by` calls directly (``SeriesGroupBy.<name>()``, as ``agg`` does).
_NAMED_REDUCTIONS = frozenset({"sum", "max", "min", "first", "last", "size", "nunique", "mean"})


def distinct_per_group(groups: Groups, values: pd.Series) -> np.ndarray | None:
    """``values.groupby(groups).nunique()`` for a categorical ``values`` (missing values not
    counted), by marking the (group, code) pairs present in a bitmap; None when that bitmap
    would be large (more than 4 cells per row), so the caller uses ``nunique``."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return None
    width = max(len(values.cat.categories), 1)
    possible = groups.n_groups * width
    if possible > 4 * len(values) + 1024:
        return None
    codes = values.cat.codes.to_numpy()
    known = codes >= 0
    present = np.zeros(possible, dtype=bool)
    present[groups.codes[known].astype("int64") * width + codes[known]] = True
    return present.reshape(groups.n_groups, width).sum(axis=1).astype("int64")


def group_codes(frame: pd.DataFrame, keys: list[str]) -> Groups | None:
    """The groups of ``keys`` read off the row order, or None when ``frame`` is not sorted so.

    Either ``frame`` is sorted by ``keys`` (:func:`sorted_runs`), or it is sorted by all keys
    but the last and the last is a categorical: then a group is a run of the first keys and a
    code of the last, ranked densely (a ``bincount`` over the possible pairs when that array is
    small, else ``pandas.factorize``).
    """
    runs = sorted_runs(frame, keys)
    if runs is not None:
        group, starts = runs
        return Groups(_range_categorical(group, len(starts)), starts)
    if len(keys) < 2 or not isinstance(frame[keys[-1]].dtype, pd.CategoricalDtype):
        return None
    runs = sorted_runs(frame, keys[:-1])
    if runs is None:
        return None
    return refine(Groups(_range_categorical(runs[0], len(runs[1])), runs[1]), frame[keys[-1]])


def refine(groups: Groups, last: pd.Series) -> Groups | None:
    """The groups of (``groups``' keys, ``last``) for a categorical ``last`` without missing
    values, in key order: a group's rows split by the code of ``last`` and ranked densely (a
    ``bincount`` over the possible pairs when that array is small, else ``pandas.factorize``).
    None when ``last`` is not such a column."""
    if not isinstance(last.dtype, pd.CategoricalDtype):
        return None
    last_codes = last.cat.codes.to_numpy().astype("int64")
    if (last_codes < 0).any():
        return None
    width = max(len(last.cat.categories), 1)
    composite = groups.codes.astype("int64") * width + last_codes
    possible = groups.n_groups * width
    if possible <= 4 * len(last) + 1024:
        present = np.zeros(possible, dtype=bool)
        present[composite] = True
        rank = np.cumsum(present, dtype="int64" if possible >= 2**31 else "int32")
        n_groups = int(rank[-1]) if possible else 0
        codes = rank[composite] - 1
    else:
        codes, uniques = pd.factorize(composite, sort=True)
        n_groups = len(uniques)
    grouper = _range_categorical(codes, n_groups)
    first = np.full(n_groups, len(last), dtype="int64")
    np.minimum.at(first, codes, np.arange(len(last)))
    return Groups(grouper, first)


def _range_categorical(codes: np.ndarray, n_groups: int) -> pd.Categorical:
    # codes are 0 .. n_groups - 1 by construction: no validation pass over them
    return pd.Categorical.from_codes(codes, categories=pd.RangeIndex(n_groups), validate=False)


def grouper_for(
    frame: pd.DataFrame, keys: list[str], groups: Groups | None = None
) -> list[str] | pd.Categorical:
    """What to pass to ``frame.groupby`` for the groups of ``keys``: one integer code per row
    read off the row order when :func:`group_codes` can (same groups, no hashing), else
    ``keys``."""
    if groups is None:
        groups = group_codes(frame, keys)
    return keys if groups is None else groups.grouper


#: Largest product of key ranges :func:`sort_order` packs into one int64 key.
_PACKED_LIMIT = 2**62


def sort_order(frame: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """Row positions that sort ``frame`` like ``frame.sort_values(keys)`` (stable), or None.

    Each key becomes a small non-negative integer (categorical codes, whole days, integers minus
    their minimum) and the keys are packed into one int64 (mixed radix, first key most
    significant), sorted once with a stable sort, so rows tied on every key keep their order as
    in ``sort_values``. None when a key has missing values or another dtype, or the packed range
    would not fit in 62 bits (the caller then uses ``sort_values``).
    """
    packed = np.zeros(len(frame), dtype="int64")
    span = 1
    for key in keys:
        values = _key_integers(frame[key])
        if values is None:
            return None
        if len(values) == 0:
            return np.zeros(0, dtype="int64")
        if frame[key].dtype.kind == "M":  # whole days (any resolution), else not packed
            unit, count = np.datetime_data(frame[key].dtype)
            per_day = _TICKS_PER_DAY.get(unit)
            if per_day is None or count != 1:
                return None
            # floor division by a constant (cheaper than ``divmod``), whole days checked back
            days = values // per_day
            if not np.array_equal(days * per_day, values):
                return None
            values = days
        low, high = int(values.min()), int(values.max())
        width = high - low + 1
        span *= width
        if span >= _PACKED_LIMIT:
            return None
        # packed = packed * width + (values - low), in place (no temporaries of n rows)
        packed *= width
        packed += values
        packed -= low
    if (packed[1:] >= packed[:-1]).all():  # already in order (a stable sort keeps it)
        return np.arange(len(packed))
    return np.argsort(packed, kind="stable")


#: Ticks of a day for the datetime units :func:`sort_order` packs as whole days.
_TICKS_PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000}
_TICKS_PER_DAY |= {"us": 86_400_000_000, "ns": 86_400_000_000_000}


def same_keys(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> bool:
    """Whether ``left`` and ``right`` have the same ``keys`` values row by row (same length,
    same dtypes, no missing key), so that a one-to-one merge on them is a side-by-side concat."""
    if len(left) != len(right):
        return False
    for key in keys:
        a, b = left[key], right[key]
        if a.dtype != b.dtype or a.isna().any():
            return False
        if isinstance(a.dtype, pd.CategoricalDtype):
            if not (a.cat.codes.to_numpy() == b.cat.codes.to_numpy()).all():
                return False
        elif not (a.to_numpy() == b.to_numpy()).all():
            return False
    return True
