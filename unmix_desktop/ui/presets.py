"""Mix presets (which stems are muted). Plain data, no Qt."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    muted: frozenset[str]  # stems muted by the preset; every solo is cleared


def presets_for(names: list[str] | tuple[str, ...]) -> list[Preset]:
    """The presets that make sense for these stems, "Full mix" first."""
    names = list(names)
    out = [Preset("full", "Full mix", frozenset())]
    if "vocals" in names and len(names) > 1:
        out.append(Preset("karaoke", "Karaoke (no vocals)", frozenset({"vocals"})))
        out.append(Preset("acappella", "Vocals only", frozenset(n for n in names if n != "vocals")))
    for inst in ("drums", "bass", "other"):
        if inst in names and len(names) > 2:
            out.append(Preset(f"practice-{inst}", f"Practice: all but {inst}", frozenset({inst})))
    return out


def matching_preset(presets: list[Preset], muted: set[str], soloed: set[str]) -> Preset | None:
    """The preset the current mute/solo state equals, if any."""
    if soloed:
        return None
    for preset in presets:
        if set(preset.muted) == muted:
            return preset
    return None
