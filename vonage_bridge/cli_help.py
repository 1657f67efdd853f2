"""The variables section of ``vonage-bridge --help``, from the settings model itself.

Every variable ``Settings.from_env`` reads (the field aliases of each settings group), in the
groups' order, with its default as the model declares it: ``required`` when it has none,
``unset`` when it defaults to None. There is no second, hand-kept list to fall out of date.
Source: https://docs.pydantic.dev/latest/concepts/fields/
"""

from __future__ import annotations

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import _GROUPS

UNSET_MEANS = {"MEDIA_TOKEN_SECRET": "unset: random, valid on this process only"}
"""The one variable whose absence ``Settings.from_env`` fills in itself."""


def default_text(field: FieldInfo) -> str:
    """A field's default as a person would write it in ``.env``."""
    if field.alias in UNSET_MEANS:
        return UNSET_MEANS[field.alias]
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "unset"
    text = str(value)
    return repr(text) if not text or " " in text else text


def variables_help() -> str:
    """``environment variables (default):`` then one line per variable, grouped."""
    lines = ["environment variables (default), read from the environment and --env-file:"]
    for group in _GROUPS:
        names = [(f.alias, default_text(f)) for f in group.model_fields.values() if f.alias]
        if not names:
            continue
        lines.append(f"  {group.__name__.removesuffix('Settings').lower()}:")
        width = max(len(name) for name, _ in names)
        lines += [f"    {name:<{width}}  {default}" for name, default in names]
    lines.append(
        "  change_url.py and doctor only: VONAGE_API_KEY, VONAGE_API_SECRET (the account's, "
        "for the Application API)"
    )
    return "\n".join(lines)
