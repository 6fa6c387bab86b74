"""dataframe: a profile as a pandas DataFrame, one row per sample or per function.

pandas is optional: it is imported when a DataFrame is asked for, and its
absence raises ImportError saying how to install it.

``level="sample"`` gives a row per sample, in the profile's order: a column
per sample type (named by the type, holding its value), ``leaf`` (the leaf
frame's function), ``stack`` (the frames as a tuple of function names, leaf
first like ``Sample.locations``, inlined calls expanded) and a column per
label key holding the sample's (first) value for it, or a missing value.
A label key that clashes with those columns is named ``label:KEY``.

``level="function"`` gives a row per function with ``function`` and, for
every sample type, ``TYPE_flat`` and ``TYPE_cum`` as pprof counts them: the
flat goes to the leaf frame, the cum once per sample to every function on the
stack, however often it recurses. Rows are sorted by the default sample
type's flat, then cum, descending, then by name.
"""

from __future__ import annotations

import importlib

from ..pprof.model import LabelValue
from .folded import location_names
from .frames import frames_by_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Literal

    from ..pprof.profile import Profile

PANDAS_MISSING = ("to_dataframe needs pandas, an optional dependency of cprof: "
                  "pip install pandas")


def _pandas() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError as e:
        raise ImportError(PANDAS_MISSING) from e


def to_dataframe(profile: Profile, *,
                 level: Literal["sample", "function"] = "sample") -> Any:
    """The profile as a ``pandas.DataFrame`` of samples or of functions (see
    the module documentation for the columns)."""
    if level == "sample":
        return _samples(profile)
    if level == "function":
        return _functions(profile)
    raise ValueError(f"level must be 'sample' or 'function', not {level!r}")


def _stacks(profile: Profile) -> list[tuple[str, ...]]:
    """Each sample's frames, leaf first (a location's inlined callee before
    the function it was inlined into)."""
    names: dict[int, tuple[str, ...]] = {}  # id(location) -> its frames, leaf first
    out = []
    for s in profile.samples:
        stack: list[str] = []
        for loc in s.locations:
            made = names.get(id(loc))
            if made is None:
                made = names[id(loc)] = location_names(loc)[::-1]
            stack += made
        out.append(tuple(stack))
    return out


def _samples(profile: Profile) -> Any:
    pd = _pandas()
    stacks = _stacks(profile)
    columns: dict[str, Any] = {}
    for i, vt in enumerate(profile.sample_types):
        columns[vt.type] = pd.array([s.values[i] for s in profile.samples], dtype="int64")
    columns["leaf"] = [stack[0] if stack else None for stack in stacks]
    columns["stack"] = stacks
    keys: dict[str, None] = {}
    for s in profile.samples:
        for key, _, _ in s.label_items:
            keys.setdefault(key, None)
    for key in keys:
        values: list[LabelValue | None] = [s.labels.get(key) for s in profile.samples]
        name = f"label:{key}" if key in columns else key
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) for v in present):
            columns[name] = pd.array(values, dtype="Int64")
        else:
            columns[name] = pd.array(values, dtype="object")
    return pd.DataFrame(columns)


def _functions(profile: Profile) -> Any:
    """One row per frame name (export/frames.py): flat and cum per sample
    type, summed in C from the engine's paths (csrc/analysis/frame_stacks.c;
    cum counts a sample once however often its stack repeats a frame)."""
    pd = _pandas()
    data = profile._analysis_data()
    frames = frames_by_name(data.nodes(0))
    flat, cum = data.frame_totals(frames.of_node, len(frames.names))
    n = len(profile.sample_types)
    shown = [f for f in range(len(frames.names))
             if any(cum[t][f] or flat[t][f] for t in range(n))]
    if profile.sample_types:
        d = profile.sample_index(None)
        shown.sort(key=lambda f: (-abs(flat[d][f]), -abs(cum[d][f]), frames.names[f]))
    columns: dict[str, Any] = {"function": pd.array([frames.names[f] for f in shown],
                                                    dtype="object")}
    for i, vt in enumerate(profile.sample_types):
        columns[f"{vt.type}_flat"] = pd.array([flat[i][f] for f in shown], dtype="int64")
        columns[f"{vt.type}_cum"] = pd.array([cum[i][f] for f in shown], dtype="int64")
    return pd.DataFrame(columns)


__all__ = ["PANDAS_MISSING", "to_dataframe"]
