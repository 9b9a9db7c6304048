"""One settings idiom for every model: switches with allowed values, per-mode defaults, overrides.

A model declares ``SWITCHES`` (the allowed values of each switch) and ``MODE_DEFAULTS`` (per mode,
every switch and hyper-parameter); a user picks a ``mode`` and overrides any of them by keyword.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deepexpr.errors import InputError


def resolve_settings(
    model: str,
    switches: Mapping[str, tuple],
    mode_defaults: Mapping[str, Mapping],
    mode: str,
    settings: Mapping,
    extras: Iterable[str] = (),
) -> dict:
    """The mode's defaults with ``settings`` applied (None = the mode's default).

    Unknown keys and switch values outside ``switches`` raise an InputError naming
    ``<model>.<key>`` and what is accepted. ``extras`` are accepted but not resolved here
    (settings that are not in the table, such as GENEX's ``map_to_batch``).
    """
    if mode not in mode_defaults:
        raise InputError(f"{model}.mode", f"expected one of {list(mode_defaults)}, got {mode!r}")
    defaults = mode_defaults[mode]
    accepted = [*defaults, *extras]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise InputError(f"{model}.{unknown[0]}", f"unknown keys {unknown}; accepted: {sorted(accepted)}")
    resolved = {key: default if settings.get(key) is None else settings[key] for key, default in defaults.items()}
    for name, choices in switches.items():
        if resolved[name] not in choices:
            raise InputError(f"{model}.{name}", f"expected one of {list(choices)}, got {resolved[name]!r}")
    return resolved
