"""Evaluation scores: one row per (method, track, target) holding the BSSEval medians over the
track's 1-s frames; aggregates are medians over tracks (SiSEC 2018 convention).
Written as CSV, JSON and box plots (one PNG per target)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from .bsseval import METRICS, TrackScores


def _num(x: float) -> float | None:
    """Strict-JSON number: NaN (undefined, e.g. silent frames) and +-inf (a perfect estimate) -> null."""
    if x is None or not math.isfinite(float(x)):
        return None
    return float(x)


def _median(values: list[float]) -> float:
    vals = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    return float(np.median(vals)) if vals.size else float("nan")


@dataclass
class EvaluationResults:
    rows: list[dict] = field(default_factory=list)
    frames: dict[tuple[str, str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------
    def add(self, method: str, track: str, scores: TrackScores, **extra) -> None:
        for target, med in scores.medians.items():
            row = {"method": method, "track": track, "target": target}
            row.update({m: med[m] for m in METRICS})
            row.update(extra)
            self.rows.append(row)
            self.frames[(method, track, target)] = scores.frames[target]

    def merge(self, other: "EvaluationResults") -> "EvaluationResults":
        self.rows.extend(other.rows)
        self.frames.update(other.frames)
        for k, v in other.meta.items():
            self.meta.setdefault(k, v)
        return self

    # -- queries --------------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(r["target"] for r in self.rows))

    @property
    def tracks(self) -> list[str]:
        return list(dict.fromkeys(r["track"] for r in self.rows))

    def values(self, method: str, target: str, metric: str = "SDR") -> list[float]:
        """Per-track medians of one metric."""
        return [r[metric] for r in self.rows if r["method"] == method and r["target"] == target]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> target -> metric -> median over tracks (NaN tracks skipped)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for method in self.methods:
            for target in self.targets:
                if not any(r["method"] == method and r["target"] == target for r in self.rows):
                    continue
                out.setdefault(method, {})[target] = {m: _median(self.values(method, target, m)) for m in METRICS}
        return out

    def table(self, metrics: tuple[str, ...] = METRICS) -> str:
        """Plain-text table: one line per method × target, median over tracks."""
        summ = self.summary()
        n_tracks = len(self.tracks)
        mw = max([len("method")] + [len(m) for m in summ])
        tw = max([len("target")] + [len(t) for t in self.targets])
        head = f"{'method':<{mw}}  {'target':<{tw}}  " + "  ".join(f"{m:>7}" for m in metrics)
        lines = [head, "-" * len(head)]
        for method, per_target in summ.items():
            for target, vals in per_target.items():
                lines.append(f"{method:<{mw}}  {target:<{tw}}  " + "  ".join(f"{vals[m]:7.2f}" for m in metrics))
        lines.append(f"(BSSEval v4, dB, median over 1-s frames then over {n_tracks} track{'s' * (n_tracks != 1)})")
        return "\n".join(lines)

    # -- files ----------------------------------------------------------------------------
    def to_csv(self, path: str | os.PathLike) -> Path:
        buf = io.StringIO()
        extra = sorted({k for r in self.rows for k in r} - {"method", "track", "target", *METRICS})
        cols = ["method", "track", "target", *METRICS, *extra]
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (f"{r[k]:.4f}" if isinstance(r.get(k), float) else r.get(k, "")) for k in cols})
        return atomic_write_bytes(Path(path), buf.getvalue().encode())

    def to_dict(self, include_frames: bool = False) -> dict:
        d = {
            "meta": {**self.meta, "aggregate": "median over 1-s frames per track, then median over tracks",
                     "null": "undefined (all frames silent) or infinite (estimate equal to the reference)"},
            "summary": {m: {t: {k: _num(v) for k, v in vals.items()} for t, vals in pt.items()}
                        for m, pt in self.summary().items()},
            "tracks": [{k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()} for r in self.rows],
        }
        if include_frames:
            d["frames"] = [
                {"method": m, "track": tr, "target": tg, **{k: [_num(x) for x in v] for k, v in fr.items()}}
                for (m, tr, tg), fr in self.frames.items()
            ]
        return d

    def to_json(self, path: str | os.PathLike, include_frames: bool = False) -> Path:
        text = json.dumps(self.to_dict(include_frames), indent=1, allow_nan=False, default=str)
        return atomic_write_bytes(Path(path), text.encode())

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "EvaluationResults":
        d = json.loads(Path(path).read_text())
        rows = [{k: (float("nan") if v is None and k in METRICS else v) for k, v in r.items()} for r in d["tracks"]]
        meta = dict(d.get("meta", {}))
        meta.pop("aggregate", None)
        meta.pop("null", None)
        return cls(rows=rows, meta=meta)

    def plot(self, out_dir: str | os.PathLike, prefix: str = "boxplot") -> list[Path]:
        """One PNG per target: box plots of the per-track medians, a panel per metric, a box per
        method. Needs matplotlib (Agg backend; imported here only)."""
        try:  # a bare Figure on the Agg canvas: no pyplot, no global backend switch (safe in the GUI)
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("plots need matplotlib (pip install matplotlib)") from exc
        out_dir = Path(out_dir)
        paths = []
        methods = self.methods
        for target in self.targets:
            fig = Figure(figsize=(3.2 * len(METRICS), 3.6), dpi=100)
            FigureCanvasAgg(fig)
            axes = fig.subplots(1, len(METRICS))
            for ax, metric in zip(axes, METRICS):
                data, labels = [], []
                for method in methods:
                    vals = np.asarray(self.values(method, target, metric), dtype=np.float64)
                    vals = vals[np.isfinite(vals)]
                    data.append(vals if vals.size else np.array([np.nan]))
                    labels.append(method)
                ax.boxplot(data, showfliers=False)
                for k, vals in enumerate(data):  # every track as a dot, slightly spread
                    if vals.size and np.isfinite(vals).any():
                        x = k + 1 + np.linspace(-0.15, 0.15, vals.size) if vals.size > 1 else np.array([k + 1.0])
                        ax.plot(x, vals, "o", ms=3, alpha=0.5, color="tab:blue")
                ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize=8)
                ax.set_title(metric)
                ax.set_ylabel("dB")
                ax.grid(axis="y", alpha=0.3)
            n = len(self.tracks)
            fig.suptitle(f"{target}: BSSEval v4, median over 1-s frames, {n} track{'s' * (n != 1)}")
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in target)
            paths.append(atomic_write_bytes(out_dir / f"{prefix}_{safe}.png", buf.getvalue()))
        return paths
