"""The one rule of the package's registries (CAM methods, encoders, loss terms, datasets,
metrics): a name is registered once; taking it again with another entry is refused, naming what
holds it, unless the caller asks to replace it."""

from __future__ import annotations

from typing import Any


def add_entry(table: dict[str, Any], name: str, entry: Any, kind: str, replace: bool = False,
              casefold: bool = False) -> None:
    """Put ``entry`` under ``name`` in ``table`` (in place).

    Args:
        table: the registry (insertion order is its order).
        name: the entry's name; with ``casefold`` a name taken in another casing counts as taken.
        entry: what is registered; registering the same object again is a no-op.
        kind: what the registry holds, for the message (``"CAM method"``).
        replace: replace an entry that holds the name (it keeps its place when the name is the
            same; a differently cased one is removed and the new name appended).
    Raises:
        ValueError: the name is held by another entry and ``replace`` is False.
    """
    taken = next((n for n in table if (n.lower() == name.lower() if casefold else n == name)),
                 None)
    if taken is not None and table[taken] is not entry and not replace:
        held = getattr(table[taken], "__qualname__", None) or repr(taken)
        raise ValueError(f"{kind} {name!r} is already registered ({held}); pass replace=True "
                         f"to replace it")
    if taken is not None and taken != name:
        del table[taken]
    table[name] = entry
