"""driver: what ``go tool pprof`` does between reading files and printing a report.

Several profiles are merged, the bases applied (``-base`` subtracts,
``-diff_base`` compares), the total taken (pprof's: before the filters, of the
base's samples alone in a -diff_base profile), then the filters and the
granularity; each report then takes its percentages of that total, with
pprof's header lines. The CLI's analysis commands read profiles through here.
"""

from __future__ import annotations

from ..pprof.filter import LEGEND, filter as filter_profile
from ..pprof.model import Function, Line, Location, Sample
from ..pprof.ops import (aggregate, diff, keep_scope, map_stack, merge, subtract,
                         unique_locations, with_samples)
from ..pprof.profile import Profile, load
from .graph import GRAINS, printable_name
from .top import TopReport, top

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence


class Input:
    """What an analysis command works on, as pprof's driver makes it: the
    PROFILE arguments merged, the bases applied and the filters
    (``filtered``); the granularity; the sample type's index; what reports
    take percentages of (``total``: pprof's, taken before the filters, of the
    base's samples alone in a -diff_base profile); the legend of the filters;
    whether the filters left no sample of a profile that had some; and the
    first PROFILE's path, for titles and output names."""

    def __init__(self, filtered: Profile, index: int, total: int, filters: list[str], name: str,
                 granularity: str | None = None, matched_nothing: bool = False) -> None:
        self.filtered = filtered
        self.index = index
        self.total = total
        self.filters = filters
        self.name = name
        self.granularity = granularity
        self.matched_nothing = matched_nothing
        self.aggregated: Profile | None = None

    @property
    def profile(self) -> Profile:
        """The profile aggregated at the granularity, for what writes or
        exports it (the reports read the granularity from the engine)."""
        if self.aggregated is None:
            self.aggregated = (aggregate(self.filtered, self.granularity)  # type: ignore[arg-type]
                               if self.granularity else self.filtered)
        return self.aggregated

    @profile.setter
    def profile(self, p: Profile) -> None:
        self.aggregated = p

    def report_profile(self) -> Profile:
        """The profile for a report that knows functions only (traces): at
        -lines, each line of code is made a function."""
        return lines_as_functions(self.profile) if self.granularity == "line" else self.profile


def merged(paths: Sequence[str]) -> Profile:
    profiles = [load(path) for path in paths]
    return profiles[0] if len(profiles) == 1 else merge(profiles)


def open_input(paths: Sequence[str], options: Mapping[str, Any]) -> Input:
    """The Input of the profiles at ``paths`` under pprof's ``options``, by its
    names (``base``, ``diff_base``: lists of paths; ``sample_index``; the
    filters and ``prune_from``; ``granularity``: "function", "file" or "line");
    a missing or empty option is not applied."""
    p = merged(paths)
    if options.get("base"):
        p = subtract(p, merged(options["base"]))
    if options.get("diff_base"):
        p = diff(p, merged(options["diff_base"]))
    sample_type = options.get("sample_index")
    index = p.sample_index(int(sample_type) if sample_type and sample_type.isdigit()
                           else sample_type)
    return prepare(p, index, options, paths[0])


def prepare(p: Profile, index: int, options: Mapping[str, Any], name: str = "") -> Input:
    """``p`` filtered as pprof's ``options`` say (the filters by their
    names), at the granularity ``granularity``: the filtered profile keeps
    the total from before the filters, and their legend, for its reports
    (filter)."""
    filters = {k: options[k] for k in (*LEGEND, "prune_from") if options.get(k)}
    matched_nothing = False
    if filters:
        filtered = filter_profile(p, **filters)
        matched_nothing = bool(p.samples) and not filtered.samples
        p = filtered
    granularity = options.get("granularity") or None
    if granularity not in (None, *GRAINS):
        raise ValueError(f"granularity must be one of {', '.join(GRAINS)}, not {granularity!r}")
    return Input(p, index, p.report_total(index), p.active_filters, name, granularity,
                 matched_nothing)


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
    return keep_scope(p, with_samples(p, [Sample._raw(s.values, map_stack(s, locations),
                                                      s.label_items) for s in p.samples]))


# The options of Profile.top beyond top's own, by pprof's names.
PROFILE_OPTIONS = (*LEGEND, "prune_from", "granularity")


def top_of(profile: Profile, n: int | None = None, *, sample_type: str | int | None = None,
           **options: Any) -> TopReport:
    """Profile.top: ``top`` of ``profile`` filtered as pprof's ``options`` say
    (focus, ignore, hide, show, show_from, prune_from, tagfocus, tagignore),
    at their ``granularity``, with top's own (cum, node_fraction): what
    ``cprof top`` prints with the same options."""
    index = profile.sample_index(sample_type)
    unknown = options.keys() - {*PROFILE_OPTIONS, "cum", "node_fraction"}
    if unknown:
        raise TypeError(f"top: unknown option {sorted(unknown)[0]!r}; the options are "
                        f"{', '.join((*PROFILE_OPTIONS, 'cum', 'node_fraction'))}")
    inp = prepare(profile, index, {k: options.pop(k) for k in PROFILE_OPTIONS if k in options})
    return top(inp.filtered, n, sample_type=index, granularity=inp.granularity, **options)


def top_report(inp: Input, n: int | None, cum: bool, node_fraction: float) -> str:
    return str(top(inp.filtered, n, cum=cum, sample_type=inp.index, node_fraction=node_fraction,
                   granularity=inp.granularity))


def tree_report(inp: Input, regex: str | None, node_count: int, cum: bool,
                node_fraction: float, edge_fraction: float) -> str:
    from .tree import peek, tree  # here: Profile.top (cprof record's) needs no tree
    if regex is None:
        return str(tree(inp.filtered, sample_type=inp.index, node_fraction=node_fraction,
                        edge_fraction=edge_fraction, node_count=node_count, cum=cum,
                        granularity=inp.granularity))
    return str(peek(inp.filtered, regex, sample_type=inp.index, granularity=inp.granularity))
