"""traces: every sample's stack with its labels, as ``go tool pprof -traces`` prints them.

pprof first merges the profile (google/pprof profile.Merge): samples with
equal stacks (locations compared by content) and equal labels become one,
their values summed, in order of first appearance, and samples whose values
are all zero are dropped. Each remaining sample with a stack is printed with
its string labels, its numeric labels (in the key's unit), its value in the
best unit for it alone, and its functions leaf first, an inlined call marked.
"""

from __future__ import annotations

import array

from ..pprof.filter import label_units
from ..pprof.model import LabelValue
from ..pprof.profile import label_items
from ..pprof.units import scaled_label
from .graph import printable_name
from .text import profile_labels

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Hashable

    from ..pprof.profile import Profile

LabelItems = tuple[tuple[str, LabelValue, str], ...]

_SEPARATOR = "-----------+-------------------------------------------------------"


def traces(profile: Profile, *, sample_type: str | int | None = None) -> str:
    """The text of ``go tool pprof -traces`` for ``profile``, with values of
    ``sample_type`` (by name or index; the default one when None). The C
    engine (csrc/analysis/traces.c) merges the samples and writes their
    stacks; here each distinct label set and value is formatted once."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    total = profile.report_total(index)
    data = profile._analysis_data()

    def fmt(value: int) -> str:
        return scaled_label(value, vt.unit, "minimum")

    raw_sets, set_of = data.label_sets()
    sets = [label_items(raw) for raw in raw_sets]
    units = label_units(sets)
    classes: dict[Hashable, int] = {}
    class_of_set = [classes.setdefault(_labels_key(items), len(classes)) for items in sets]
    first, values = data.merged_samples(index, array.array("I", map(class_of_set.__getitem__,
                                                                    set_of)))
    labels: dict[int, str] = {}  # label set -> the lines that open its traces
    value_columns: dict[int, str] = {}
    heads = []
    for i, value in zip(first, values):
        opening = labels.get(set_of[i])
        if opening is None:
            lines = [_SEPARATOR] + _label_lines(sets[set_of[i]], units)
            opening = labels[set_of[i]] = "".join(line + "\n" for line in lines)
        column = value_columns.get(value)
        if column is None:
            column = value_columns[value] = f"{fmt(value):>10}   "
        heads.append((opening + column).encode("utf-8", "surrogateescape"))
    names = [printable_name(nd[:5]).encode("utf-8", "surrogateescape") for nd in data.nodes(0)]
    text = data.traces_text(array.array("I", first), heads, names)
    out = profile_labels(profile, vt.type, vt.unit, total, fmt)
    return ("".join(line + "\n" for line in out) + text.decode("utf-8", "surrogateescape")
            + _SEPARATOR + "\n")


def _label_lines(items: LabelItems, units: dict[str, str]) -> list[str]:
    """A sample's string labels, then its numeric ones in their key's unit,
    each key with its values on one line, sorted."""
    strings: dict[str, list[str]] = {}
    numbers: dict[str, list[str]] = {}
    for key, value, _ in items:
        if isinstance(value, str):
            strings.setdefault(key, []).append(value)
        else:
            numbers.setdefault(key, []).append(scaled_label(value, units[key], "auto"))
    return (sorted(f"{k:>10}:  {' '.join(vs)}" for k, vs in strings.items())
            + sorted(f"{k:>10}:  {' '.join(vs)}" for k, vs in numbers.items()))


def _labels_key(items: LabelItems) -> Hashable:
    # pprof's sampleKey of the labels: keys in order, each with its values in the sample's order.
    by_key: dict[tuple[str, bool], list[tuple[LabelValue, str]]] = {}
    for key, value, unit in items:
        by_key.setdefault((key, isinstance(value, int)), []).append((value, unit))
    return tuple(sorted((k, tuple(v)) for k, v in by_key.items()))
