"""The exercise catalogue: the protocol's ladders with ids, families, levels, doses and aliases.

The shipped file ``hipdata/data/catalogue.csv`` holds CONTRACT §3. A clinic can add exercises or
override shipped ones with its own file of the same columns (``aliases`` separated by ``|``);
rows of the clinic file replace shipped rows with the same ``id``, and their aliases are added.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError
from hipdata.io.readers import map_distinct

CATALOGUE_COLUMNS = [
    "id",
    "family",
    "level",
    "dose",
    "target_sets",
    "target_min",
    "target_max",
    "name",
    "aliases",
]
DOSES = ("reps", "hold")

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Lower-case a name and collapse everything that is not a letter or digit to one space.

    >>> normalise_name("  Side-lying Hip_ADDUCTION ")
    'side lying hip adduction'
    """
    return _NON_ALNUM.sub(" ", str(name).lower()).strip()


def _read_catalogue_file(source, *, allow_alias_rows: bool = False):
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"cannot read the exercise catalogue ({exc})",
            file=str(source),
            fix="give a CSV with the columns " + ", ".join(CATALOGUE_COLUMNS),
        ) from exc
    table.columns = [normalise_name(c).replace(" ", "_") for c in table.columns]
    alias_rows = pd.DataFrame(columns=["row", "id", "alias"])
    if allow_alias_rows and "id" in table.columns:
        for column in ("family", "level", "dose", "name", "aliases"):
            if column not in table.columns:
                table[column] = ""
        table = table.apply(lambda c: c.str.strip())
        table["_row"] = table.index + 2
        table = table[table["id"] != ""]  # a mapping-template row left unmapped
        is_alias = (table["family"] == "") & (table["level"] == "") & (table["dose"] == "")
        aliases = table[is_alias]
        alias_rows = pd.DataFrame(
            {
                "row": aliases["_row"],
                "id": aliases["id"],
                "alias": aliases["name"] + "|" + aliases["aliases"],
            }
        )
        table = table[~is_alias].drop(columns="_row")
    missing = [c for c in ("id", "family", "level", "dose") if c not in table.columns]
    if missing:
        raise DataError(
            f"the catalogue lacks the column(s) {', '.join(missing)}",
            file=str(source),
            fix="give a CSV with the columns " + ", ".join(CATALOGUE_COLUMNS),
        )
    for column in CATALOGUE_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table[CATALOGUE_COLUMNS].copy()
    table["id"] = table["id"].str.strip()
    bad_dose = ~table["dose"].isin(DOSES)
    bad_level = ~table["level"].str.fullmatch(r"\s*\d+\s*")
    if bad_dose.any() or bad_level.any() or (table["id"] == "").any():
        bad = table.index[bad_dose | bad_level | (table["id"] == "")][0]
        raise DataError(
            f"catalogue row {bad + 2} is invalid (id {table.at[bad, 'id']!r}, level "
            f"{table.at[bad, 'level']!r}, dose {table.at[bad, 'dose']!r})",
            file=str(source),
            fix="every row needs an id, a whole-number level and a dose of 'reps' or 'hold'",
        )
    table["level"] = table["level"].astype(int)
    for column, default_reps, default_hold in (
        ("target_sets", 3, 3),
        ("target_min", 8, 20),
        ("target_max", 10, 30),
    ):
        default = table["dose"].map({"reps": default_reps, "hold": default_hold})
        table[column] = pd.to_numeric(table[column].replace("", None)).fillna(default)
    table["target_sets"] = table["target_sets"].astype(int)
    if allow_alias_rows:
        return table, alias_rows
    return table


def load_catalogue(extra: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the exercise catalogue, with a clinic's own file merged on top.

    Parameters
    ----------
    extra : path or DataFrame, optional
        A clinic's catalogue (same columns). Its rows replace shipped rows with the same id; its
        aliases are added to theirs. A row with an ``id`` but empty ``family``, ``level`` and
        ``dose`` is an **alias row**: its ``name`` (and ``aliases``) become aliases of that
        existing exercise, so a mapping written by ``hipdata catalogue unmatched`` needs only
        ``name -> id`` for known exercises. Rows with an empty ``id`` are ignored (names left
        unmapped).

    Returns
    -------
    DataFrame
        One row per exercise: ``id, family, level, dose, target_sets, target_min, target_max,
        name, aliases`` (aliases ``|``-separated), ordered by family and level.
    """
    shipped = _read_catalogue_file(resources.files("hipdata") / "data" / "catalogue.csv")
    if extra is None:
        return shipped
    source = _frame_to_csv_buffer(extra) if isinstance(extra, pd.DataFrame) else extra
    clinic, alias_rows = _read_catalogue_file(source, allow_alias_rows=True)
    merged = shipped.set_index("id")
    for row in clinic.itertuples(index=False):  # a catalogue is tens of rows, not data
        old_aliases = merged.at[row.id, "aliases"] if row.id in merged.index else ""
        values = row._asdict()
        values["aliases"] = "|".join(a for a in (old_aliases, row.aliases) if a)
        merged.loc[row.id] = pd.Series(values).drop("id")
    for row in alias_rows.itertuples(index=False):
        if row.id not in merged.index:
            raise DataError(
                f"catalogue row {row.row}: {row.id!r} is not a known exercise id",
                file=str(extra) if not isinstance(extra, pd.DataFrame) else None,
                fix="use an id listed by `hipdata catalogue`, or give family, level and dose "
                "to define a new exercise",
            )
        added = "|".join(a for a in row.alias.split("|") if a.strip())
        merged.at[row.id, "aliases"] = "|".join(
            a for a in (merged.at[row.id, "aliases"], added) if a
        )
    merged = merged.reset_index()
    merged["level"] = merged["level"].astype(int)
    merged["target_sets"] = merged["target_sets"].astype(int)
    return merged[CATALOGUE_COLUMNS]


def _frame_to_csv_buffer(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.astype(str).to_csv(buffer, index=False)
    buffer.seek(0)
    return buffer


def alias_table(catalogue: pd.DataFrame) -> pd.Series:
    """Map every normalised id, name and alias to its exercise id.

    An alias claimed by two exercises resolves to neither (it would be a guess); ids always win.
    """
    rows = []
    for ex_id, name, aliases in catalogue[["id", "name", "aliases"]].itertuples(index=False):
        rows.append((normalise_name(ex_id), ex_id, 0))
        if name:
            rows.append((normalise_name(name), ex_id, 1))
        for alias in str(aliases).split("|"):
            if alias.strip():
                rows.append((normalise_name(alias), ex_id, 1))
    table = pd.DataFrame(rows, columns=["key", "id", "priority"]).drop_duplicates(["key", "id"])
    best = table.groupby("key")["priority"].transform("min")
    table = table[table["priority"] == best]
    ambiguous = table.duplicated("key", keep=False)
    return table[~ambiguous].set_index("key")["id"]


#: Bracketed equipment words apps add to names ("Hip Thrust (Machine)", "Deadlift (Barbell)").
EQUIPMENT_WORDS = frozenset(
    "machine barbell dumbbell dumbbells db bb kettlebell kb cable band bands banded resistance "
    "bodyweight body weight smith weighted assisted plate ez bar trap hex lever sled trx "
    "suspension ball bosu medicine landmine".split()
)
#: Phrases that only say the exercise is done on each side; they never change the exercise.
SIDE_PHRASES = re.compile(r"\b(each|per|both|alternating|alternate) (side|sides|leg|legs)\b")
_BRACKETS = re.compile(r"[(\[{]([^)\]}]*)[)\]}]")
_STOP_WORDS = frozenset({"with", "the", "and", "a", "of", "on", "to", "in", "at"})


def name_variants(name: str) -> list[str]:
    """The normalised forms of a raw name that are matched against the catalogue, in order.

    1. the whole name (:func:`normalise_name`); 2. the name without "each side"-style phrases
    and without bracketed parts made only of equipment or side words ("Hip Thrust (Machine)",
    "Deadlift (Barbell)", "Lunge (Each Side, Dumbbells)"; other brackets stay, as words:
    "Side Plank (Knee)" is "side plank knee"); 3.-4. forms 1 and 2 with their words sorted, so
    that word order does not matter ("Deadlift Single Leg" = "single leg deadlift").
    "single-leg" is "single leg" already.

    >>> name_variants("Hip Thrust (Machine)")[:2]
    ['hip thrust machine', 'hip thrust']
    """
    text = str(name).lower()

    def only_equipment(match: re.Match) -> str:
        inner = SIDE_PHRASES.sub(" ", normalise_name(match.group(1)))
        words = inner.split()
        return " " if all(w in EQUIPMENT_WORDS for w in words) else " " + inner + " "

    full = normalise_name(text)
    cleaned = normalise_name(
        SIDE_PHRASES.sub(" ", normalise_name(_BRACKETS.sub(only_equipment, text)))
    )
    variants = [full, cleaned, " ".join(sorted(full.split())), " ".join(sorted(cleaned.split()))]
    return list(dict.fromkeys(v for v in variants if v))


def _sorted_alias_table(aliases: pd.Series) -> pd.Series:
    """The alias table keyed by sorted words (keys claimed by two exercises dropped)."""
    table = pd.DataFrame(
        {"key": [" ".join(sorted(k.split())) for k in aliases.index], "id": aliases.to_numpy()}
    )
    table = table.drop_duplicates()
    ambiguous = table.duplicated("key", keep=False)
    return table[~ambiguous].set_index("key")["id"]


def resolve_exercises(names: pd.Series, catalogue: pd.DataFrame) -> pd.Series:
    """Map raw exercise names to catalogue ids (missing where unknown).

    Tries the forms of :func:`name_variants` in order (exact name first, then without equipment
    brackets and side phrases, then ignoring word order) and takes the first that is an id,
    name or alias. Each distinct name is resolved once.
    """
    aliases = alias_table(catalogue)
    by_sorted = _sorted_alias_table(aliases)
    unique = pd.Series(pd.unique(names.fillna("").astype(str)))
    resolved = {}
    for raw in unique:  # distinct names: tens, not rows
        found = None
        for variant in name_variants(raw):
            found = aliases.get(variant)
            if found is None and " " in variant:
                found = by_sorted.get(" ".join(sorted(variant.split())))
            if found is not None:
                break
        resolved[raw] = found
    text = names.fillna("").astype(str)
    codes, uniques = pd.factorize(text)
    found = pd.Series(uniques, dtype=text.dtype).map(resolved)
    return pd.Series(found.array.take(codes), index=names.index, name=names.name)


#: Loaded variants not named ``<id>_loaded``: the squat ladder's level 2 is "larger range /
#: tempo / external load" (PROTOCOL §4).
EXTRA_LOADED_VARIANTS = {"squat_comfortable": "squat_deep"}


def loaded_variants(catalogue: pd.DataFrame) -> dict[str, str]:
    """Map an exercise id to its ladder's loaded variant: ``<id>_loaded`` in the same family,
    and the pairs of :data:`EXTRA_LOADED_VARIANTS` (when both ids are in the same family).

    >>> loaded_variants(load_catalogue())["bridge"]
    'bridge_loaded'
    """
    families = catalogue.set_index("id")["family"]
    pairs = {ex_id: f"{ex_id}_loaded" for ex_id in families.index} | EXTRA_LOADED_VARIANTS
    return {
        plain: loaded
        for plain, loaded in pairs.items()
        if plain in families.index
        and loaded in families.index
        and families[plain] == families[loaded]
    }


def apply_loaded_variants(
    names: pd.Series, exercise: pd.Series, load_kg: pd.Series, catalogue: pd.DataFrame
) -> pd.Series:
    """Move sets done with external load to their ladder's loaded variant.

    A set whose name resolved (by name or alias, not by writing the catalogue id itself) to an
    exercise that has a loaded variant (:func:`loaded_variants`), and whose ``load_kg`` is above
    0, is that loaded variant: "Hip Thrust" with 42.5 kg is ``bridge_loaded``; side-lying
    adduction with an ankle weight is ``side_lying_adduction_loaded``. A row that names the id
    (``bridge``) is left as written: the data manager chose the level.
    """
    variants = loaded_variants(catalogue)
    written_id = names.fillna("").astype(str).str.strip().str.lower() == exercise.fillna("")
    upgrade = exercise.map(variants)
    move = upgrade.notna() & (load_kg.fillna(0) > 0) & ~written_id
    return exercise.where(~move, upgrade)


def base_exercise(exercise: pd.Series, catalogue: pd.DataFrame) -> pd.Series:
    """Map a loaded variant back to its unloaded exercise (others unchanged)."""
    back = {loaded: plain for plain, loaded in loaded_variants(catalogue).items()}
    return map_distinct(exercise, lambda e: back.get(e, e))


def exercise_keys(names: pd.Series, catalogue: pd.DataFrame) -> pd.Series:
    """A key that is the same for all names of one exercise: the unloaded catalogue id where the
    name resolves, else the normalised name (importers number sets within it)."""
    resolved = resolve_exercises(names, catalogue)
    base = base_exercise(resolved.dropna(), catalogue).reindex(names.index)
    text = names.fillna("").astype(str)
    codes, uniques = pd.factorize(text)  # each distinct name is normalised once
    normalised = pd.Series(uniques, dtype=text.dtype).map(normalise_name)
    return base.fillna(pd.Series(normalised.array.take(codes), index=names.index))


def _tokens(text: str) -> set[str]:
    return {w for w in text.split() if w not in EQUIPMENT_WORDS and w not in _STOP_WORDS}


def suggest_exercises(
    name: str,
    catalogue: pd.DataFrame,
    n: int = 3,
    *,
    aliases: pd.Series | None = None,
    cutoff: float = 0.6,
    token_cutoff: float = 0.5,
) -> list[str]:
    """The catalogue ids closest to an unknown name, best first (may be empty).

    Two scores per id, name or alias, the better counting: spelling (``difflib`` ratio of the
    name without equipment brackets, at least ``cutoff``) and shared words (the share of the
    two word sets, equipment and filler words left out, that both have: ``|A & B| / |A | B|``,
    at least ``token_cutoff``), so "Reverse Lunge" suggests the exercise with the alias
    "lunge". ``aliases`` (from :func:`alias_table`) saves rebuilding the table for each name.
    """
    aliases = alias_table(catalogue) if aliases is None else aliases
    variants = name_variants(name)
    target = variants[1] if len(variants) > 1 else variants[0] if variants else ""
    words = _tokens(target)
    scores: dict[str, float] = {}
    for alias, ex_id in aliases.items():
        spelling = difflib.SequenceMatcher(None, target, alias).ratio()
        other = _tokens(alias)
        union = words | other
        overlap = len(words & other) / len(union) if union else 0.0
        score = max(
            spelling if spelling >= cutoff else 0.0, overlap if overlap >= token_cutoff else 0.0
        )
        if score > scores.get(ex_id, 0.0):
            scores[ex_id] = score
    ranked = sorted((s, i) for i, s in scores.items() if s > 0)
    ranked.sort(key=lambda pair: -pair[0])
    return [ex_id for _, ex_id in ranked[:n]]


def suggest_exercises_many(
    names,
    catalogue: pd.DataFrame,
    n: int = 3,
    *,
    aliases: pd.Series | None = None,
    cutoff: float = 0.6,
    token_cutoff: float = 0.5,
) -> list[list[str]]:
    """:func:`suggest_exercises` for many names at once: the same lists, in the same order.

    The same two scores per name and alias, computed only where they can change the answer:
    each alias gets an upper bound of its score (the spelling part bounded by ``difflib``'s
    ``quick_ratio``, the characters both share counted as multisets, for all aliases at once
    with numpy; ``ratio() <= quick_ratio()`` with the same division; the shared-words part
    exact, and only for aliases that share a word with the name). Aliases are scored in order
    of that bound until it falls below the ``n``-th best id's score, since no later alias can
    then enter the first ``n`` or change their scores; each alias's ``SequenceMatcher`` is
    built once (difflib caches the second sequence). Thousands of distinct misspelt names
    then take a fraction of a second instead of many seconds.
    """
    aliases = alias_table(catalogue) if aliases is None else aliases
    keys = list(aliases.index)
    ids = list(aliases.to_numpy())
    names = list(names)
    if not all(type(key) is str for key in keys) or not all(type(x) is str for x in names):
        return [
            suggest_exercises(
                name, catalogue, n, aliases=aliases, cutoff=cutoff, token_cutoff=token_cutoff
            )
            for name in names
        ]
    alphabet = {c: i for i, c in enumerate(sorted({c for key in keys for c in key}))}
    counts = np.zeros((len(keys), len(alphabet) + 1), dtype=np.int64)
    for row, key in enumerate(keys):
        for char in key:
            counts[row, alphabet[char]] += 1
    key_lengths = np.array([len(key) for key in keys], dtype=np.int64)
    # bit-parallel longest common subsequence (Hyyrö 2004) against every alias at once: bit j
    # of an alias's mask is its character j (aliases of at most 64 characters; longer ones
    # keep the character-count bound)
    short = key_lengths <= 64
    positions = np.zeros((len(alphabet) + 1, len(keys)), dtype=np.uint64)
    for row, key in enumerate(keys):
        if short[row]:
            for j, char in enumerate(key):
                positions[alphabet[char], row] |= np.uint64(1) << np.uint64(j)
    width_mask = np.array(
        [(1 << int(length)) - 1 if length <= 64 else 0 for length in key_lengths], dtype=np.uint64
    )
    matchers = [difflib.SequenceMatcher(None, "", key) for key in keys]
    key_tokens = [_tokens(key) for key in keys]
    by_word: dict[str, list[int]] = {}
    for row, words in enumerate(key_tokens):
        for word in words:
            by_word.setdefault(word, []).append(row)
    out = []
    for name in names:
        variants = name_variants(name)
        target = variants[1] if len(variants) > 1 else variants[0] if variants else ""
        words = _tokens(target)
        own = np.zeros(len(alphabet) + 1, dtype=np.int64)
        for char in target:
            at = alphabet.get(char)
            if at is not None:
                own[at] += 1
        total = key_lengths + len(target)
        common = np.minimum(counts, own).sum(axis=1)
        state = np.full(len(keys), np.iinfo(np.uint64).max, dtype=np.uint64)
        for char in target:
            at = alphabet.get(char)
            if at is not None:
                step = state & positions[at]
                state = (state + step) | (state - step)
        lcs = np.bitwise_count(~state & width_mask).astype(np.int64)
        # the matching blocks difflib finds form a common subsequence, so their size is at
        # most the longest one's, which is at most the characters both have
        common = np.where(short, np.minimum(common, lcs), common)
        with np.errstate(invalid="ignore", divide="ignore"):
            bound = np.where(total > 0, 2.0 * common / total, 1.0)
        # each alias's best possible score: the spelling bound (where it reaches the cutoff)
        # or the exact shared-words share (where it reaches its own)
        upper = np.where(bound >= cutoff, bound, 0.0)
        overlaps = {}
        for row in {row for word in words for row in by_word.get(word, ())}:
            other = key_tokens[row]
            union = words | other
            overlap = len(words & other) / len(union) if union else 0.0
            overlaps[row] = overlap
            if overlap >= token_cutoff and overlap > upper[row]:
                upper[row] = overlap
        # aliases in order of that bound; once it is below the n-th best id's score, no
        # further alias can enter the first n or change their scores (a tie still can: it
        # is computed)
        order = np.argsort(-upper, kind="stable")
        scores: dict[str, float] = {}
        for row in order.tolist():
            if upper[row] <= 0:
                break
            if len(scores) >= n > 0 and upper[row] < sorted(scores.values())[-n]:
                break
            ratio = 0.0
            if bound[row] >= cutoff:
                matcher = matchers[row]
                matcher.set_seq1(target)
                ratio = matcher.ratio()
            overlap = overlaps.get(row, 0.0)
            score = max(
                ratio if ratio >= cutoff else 0.0, overlap if overlap >= token_cutoff else 0.0
            )
            if score > scores.get(ids[row], 0.0):
                scores[ids[row]] = score
        ranked = sorted((s, i) for i, s in scores.items() if s > 0)
        ranked.sort(key=lambda pair: -pair[0])
        out.append([ex_id for _, ex_id in ranked[:n]])
    return out


#: Columns of the mapping template written by ``hipdata catalogue unmatched``.
MAPPING_COLUMNS = ["name", "count", "id", "family", "level", "dose", "suggestions"]


def unmatched_names(folder: str | Path, catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every exercise name in a data folder's exercises table that the catalogue does not know.

    Returns a mapping template (:data:`MAPPING_COLUMNS`), most frequent name first: ``count`` is
    the number of rows with that name, ``suggestions`` the closest ids (``|``-separated, best
    first; see :func:`suggest_exercises`). The user fills ``id`` with an existing exercise id
    (an alias row: family, level and dose stay empty) or defines a new exercise with ``id``,
    ``family``, ``level`` and ``dose``, and passes the file back with ``--catalogue``; rows left
    without ``id`` stay unmatched.
    """
    from hipdata.io.readers import SUPPORTED_SUFFIXES, column_key, read_raw

    catalogue = load_catalogue() if catalogue is None else catalogue
    folder = Path(folder)
    files = (
        [
            p
            for p in sorted(folder.iterdir())
            if p.stem.lower() == "exercises" and p.suffix.lower() in SUPPORTED_SUFFIXES
        ]
        if folder.is_dir()
        else []
    )
    if not files:
        raise DataError(
            "no exercises file in the folder",
            file=str(folder),
            fix="give a data folder with exercises.csv (e.g. one written by `hipdata import`)",
        )
    raw = read_raw(files[0])
    column = next(
        (
            c
            for c in raw.cells.columns
            if column_key(c) in ("exercise", "exercisename", "exerciseid")
        ),
        None,
    )
    if column is None:
        raise DataError(
            "the exercises table has no exercise column", file=files[0].name, fix="add it"
        )
    names = raw.cells[column].fillna("").astype(str).str.strip()
    names = names[names != ""]
    unknown = names[resolve_exercises(names, catalogue).isna()]
    counts = unknown.value_counts(sort=False).rename_axis("name").reset_index(name="count")
    counts = counts.sort_values(["count", "name"], ascending=[False, True], kind="stable")
    aliases = alias_table(catalogue)
    counts["suggestions"] = [
        "|".join(found)
        for found in suggest_exercises_many(counts["name"], catalogue, aliases=aliases)
    ]
    for column in ("id", "family", "level", "dose"):
        counts[column] = ""
    return counts[MAPPING_COLUMNS].reset_index(drop=True)
