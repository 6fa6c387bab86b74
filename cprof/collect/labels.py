"""labels: pprof labels that follow the code, like Go's pprof.Do.

``with cprof.labels(endpoint="/api"):`` attaches ``endpoint=/api`` to every
sample taken inside, on this thread and in asyncio tasks created inside (a
ContextVar carries them). Nested blocks add to the labels around them.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager

from .. import _core

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterator, Mapping

LabelValue = str | int

# The signal handler reads this variable's value (a _core.LabelSet) directly
# from the running context, so it must stay this one object.
LABEL_VAR: contextvars.ContextVar[_core.LabelSet | None] = contextvars.ContextVar(
    "cprof_labels", default=None)

_lock = threading.Lock()
_by_items: dict[tuple[tuple[str, LabelValue], ...], _core.LabelSet] = {}
_by_id: dict[int, dict[str, LabelValue]] = {}


def _label_set(items: Mapping[str, LabelValue]) -> _core.LabelSet:
    key = tuple(sorted(items.items()))
    with _lock:
        found = _by_items.get(key)
        if found is None:
            found = _core.LabelSet(len(_by_items) + 1)
            _by_items[key] = found
            _by_id[found.id] = dict(key)
        return found


def labels_of(label_set_id: int) -> dict[str, LabelValue]:
    """The labels of a label set id recorded in a sample ({} for 0)."""
    return _by_id.get(label_set_id, {}) if label_set_id else {}


def current() -> dict[str, LabelValue]:
    """The labels in force here."""
    value = LABEL_VAR.get()
    return labels_of(value.id) if value is not None else {}


@contextmanager
def labels(**values: LabelValue) -> Iterator[None]:
    """Attach labels (str or int values) to the samples taken inside."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError(f"label {key!r}: value {value!r} is neither str nor int")
    token = LABEL_VAR.set(_label_set({**current(), **values}))
    try:
        yield
    finally:
        LABEL_VAR.reset(token)
