"""driver: what ``go tool pprof`` does between reading files and printing a report.

Several profiles are merged, the bases applied (``-base`` subtracts,
``-diff_base`` compares), the total taken (pprof's: before the filters, of the
base's samples alone in a -diff_base profile), then the filters and the
granularity; each report then takes its percentages of that total, with
pprof's header lines. The CLI's analysis commands read profiles through here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from ..pprof.filter import filter as filter_profile
from ..pprof.model import Function, Line, Location, Sample
from ..pprof.ops import (DIFF_BASE_LABEL, aggregate, diff, map_stack, merge, subtract,
                         unique_locations, with_samples)
from ..pprof.profile import Profile, load
from .graph import printable_name
from .text import active_filters, output_unit, profile_labels
from .top import top
from .tree import peek, tree


# pprof's filters in the order of its "Active filters:" legend (prune_from, applied
# last, is not listed there).
FILTERS = ("focus", "ignore", "hide", "show", "show_from", "tagfocus", "tagignore")


@dataclass
class Input:
    """What an analysis command works on, as pprof's driver makes it: the
    PROFILE arguments merged and the bases applied, then filtered and
    aggregated (``profile``); the sample type's index; what reports take
    percentages of (``total``: pprof's, taken before the filters, of the
    base's samples alone in a -diff_base profile); the legend of the filters;
    and the first PROFILE's path, for titles and output names."""

    profile: Profile
    index: int
    total: int
    filters: list[str]
    name: str
    by_line: bool = False
    matched_nothing: bool = False  # the filters left no sample of a profile that had some

    def report_profile(self) -> Profile:
        """The profile for a report at its granularity: the reports know
        functions, so at -lines each line of code is made a function."""
        return lines_as_functions(self.profile) if self.by_line else self.profile


def merged(paths: Sequence[str]) -> Profile:
    profiles = [load(path) for path in paths]
    return profiles[0] if len(profiles) == 1 else merge(profiles)


def open_input(paths: Sequence[str], options: Mapping[str, Any]) -> Input:
    """The Input of the profiles at ``paths`` under pprof's ``options``, by its
    names (``base``, ``diff_base``: lists of paths; ``sample_index``; the
    FILTERS and ``prune_from``; ``granularity``: "function", "file" or "line");
    a missing or empty option is not applied."""
    p = merged(paths)
    if options.get("base"):
        p = subtract(p, merged(options["base"]))
    if options.get("diff_base"):
        p = diff(p, merged(options["diff_base"]))
    sample_type = options.get("sample_index")
    index = p.sample_index(int(sample_type) if sample_type and sample_type.isdigit()
                           else sample_type)
    total = pprof_total(p, index)
    filters = {k: options[k] for k in (*FILTERS, "prune_from") if options.get(k)}
    matched_nothing = False
    if filters:
        filtered = filter_profile(p, **filters)
        matched_nothing = bool(p.samples) and not filtered.samples
        p = filtered
    granularity = options.get("granularity")
    if granularity:
        p = aggregate(p, granularity)
    return Input(p, index, total, [f"{k}={filters[k]}" for k in FILTERS if k in filters],
                 paths[0], granularity == "line", matched_nothing)


def lines_as_functions(p: Profile) -> Profile:
    """``p`` with each line of code a function of its own, named as pprof's
    -lines reports name their nodes (``main.work /src/app.py:12``)."""
    functions: dict[tuple[str, str, int, int], Function] = {}
    locations: dict[int, Location] = {}
    for i, loc in unique_locations(p.samples).items():
        lines = []
        for ln in loc.lines:
            fn = ln.function
            if fn is not None:
                key = (fn.name, fn.filename, fn.start_line, ln.line)
                made = functions.get(key)
                if made is None:
                    made = functions[key] = Function(
                        len(functions) + 1, printable_name((*key, "")), fn.system_name)
                ln = Line(made)
            lines.append(ln)
        locations[i] = Location(loc.id, loc.address, loc.mapping, tuple(lines), loc.is_folded)
    return with_samples(p, [Sample._raw(s.values, map_stack(s, locations), s.label_items)
                            for s in p.samples])


def pprof_total(p: Profile, index: int) -> int:
    """pprof's computeTotal: the sum of the absolute values, over the
    samples of the base alone when the profile is a -diff_base one."""
    total = base = 0
    for s in p.samples:
        v = abs(s.values[index])
        total += v
        if any(key == DIFF_BASE_LABEL and value == "true" for key, value, _ in s.label_items):
            base += v
    return base or total


def report_labels(inp: Input, sample_type: str, unit: str, fmt: Callable[[int], str]) -> list[str]:
    """The lines above a pprof report: the profile's, then the active filters."""
    return (profile_labels(inp.profile, sample_type, unit, inp.total, fmt)
            + active_filters(inp.filters))


# The report functions take percentages of the profile they are given; pprof of
# the profile before its filters (and of a -diff_base profile's base). These
# give a report pprof's total, node cutoff, unit and legend.

def top_report(inp: Input, n: int | None, cum: bool, node_fraction: float) -> str:
    rpt = top(inp.report_profile(), n, cum=cum, sample_type=inp.index, node_fraction=node_fraction)
    if rpt.total != inp.total:
        rpt = replace(rpt, total=inp.total, node_cutoff=abs(int(inp.total * node_fraction)),
                      unit=output_unit(rpt.rows, inp.total, rpt.sample_unit))
    rpt.profile_labels = report_labels(inp, rpt.sample_type, rpt.sample_unit, rpt.format_value)
    return str(rpt)


def tree_report(inp: Input, regex: str | None, node_count: int, cum: bool,
                 node_fraction: float, edge_fraction: float) -> str:
    profile = inp.report_profile()
    if regex is None:
        rpt = tree(profile, sample_type=inp.index, node_fraction=node_fraction,
                   edge_fraction=edge_fraction, node_count=node_count, cum=cum)
    else:
        rpt = peek(profile, regex, sample_type=inp.index)
        node_fraction = 0.0  # pprof trims nothing for peek
    if rpt.total != inp.total:
        # The unit is chosen over every node of the graph: peek's entries are some.
        nodes = rpt.entries if regex is None else tree(
            profile, sample_type=inp.index, node_fraction=0, edge_fraction=0,
            node_count=0).entries
        rpt = replace(rpt, total=inp.total, node_cutoff=abs(int(inp.total * node_fraction)),
                      unit=output_unit(nodes, inp.total, rpt.sample_unit))
    rpt.labels = report_labels(inp, rpt.sample_type, rpt.sample_unit, rpt.format_value)
    return str(rpt)
