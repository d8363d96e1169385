"""Which models exist, which one the window uses, and what their cards say (no widgets)."""

from __future__ import annotations

from typing import Callable

from ..separation.pipeline import ModelProvider


def registry_models() -> list[tuple[str, str]]:
    """``(name, description)`` of the installed models; empty when the model folder is unreadable."""
    try:
        from ..separation.registry import list_models

        return [(m.name, m.description) for m in list_models() if not m.splitter]
    except Exception:  # noqa: BLE001 - a broken model folder must not keep the window from opening
        return []


class ModelChoice:
    """The model the window separates with: a session choice (``--model``), else the saved one
    (when installed), else the default, else the first installed."""

    def __init__(self, settings, provider: ModelProvider, models: list[tuple[str, str]] | None = None,
                 default: str | None = None, session_model: str | None = None,
                 list_models: Callable[[], list[tuple[str, str]]] = registry_models):
        self.settings = settings
        self.provider = provider
        self._models = models
        self._default = default
        self.session_model = session_model  # used, not saved
        self._list_models = list_models

    def available(self) -> list[tuple[str, str]]:
        return list(self._models) if self._models is not None else self._list_models()

    def current(self) -> str | None:
        if self.session_model:
            return self.session_model
        names = [n for n, _ in self.available()]
        chosen = self.settings.model
        if chosen and (chosen in names or not names):
            return chosen
        if self._default:
            return self._default
        return names[0] if names else None

    def card(self, name: str | None, song=None) -> dict:
        """The model card of ``name``: from the open song, the loaded model, or the registry."""
        if name is None:
            return {}
        if song is not None and song.model_name == name and song.model_card:
            return dict(song.model_card)
        model = self.provider.loaded(name)
        if model is not None and getattr(model, "card", None):
            return dict(model.card)
        try:
            from ..separation.registry import list_models

            for info in list_models():
                if info.name == name:
                    return info.card or {"description": info.description}
        except Exception:  # noqa: BLE001
            pass
        return {}
