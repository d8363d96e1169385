"""Copy a trained bundle into ``resources/models/<name>/`` with its scores in the card.

The card (``model.json`` → ``card``, shown by ``unmix models`` and the About box) gets the name,
a description, and the medians from ``studies/results/train_evaluate.json``; the human-readable
``MODEL_CARD.md`` next to it is written by hand from the same numbers.

Usage::

    .venv/bin/python studies/train_ship.py --run runs/umx-mir1k --name umx-mir1k
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.separation.bundle import load_bundle, save_bundle  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="training output folder (a bundle)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="open-unmix vocals model trained by unmix-desktop on MIR-1K "
                                             "(16 kHz karaoke clips): small, CPU-trained; the fallback "
                                             "when the Spleeter weights are missing")
    ap.add_argument("--scores", default=str(ROOT / "studies" / "results" / "train_evaluate.json"))
    args = ap.parse_args()

    model = load_bundle(args.run)
    card = dict(model.card)
    card["name"] = args.name
    card["description"] = args.description
    card.setdefault("recipe", {}).pop("threads", None)
    card["data"] = dict(card.get("data", {}))
    card["data"].update({
        "name": "MIR-1K (Hsu & Jang 2010, NTHU; research use), ../shared/data/mir1k",
        "train": "904 clips, 120.6 min, 16 kHz mono (vocals + accompaniment of Chinese karaoke songs)",
        "valid": "96 clips, 12.8 min; singers abjones, titon, tammy (not in train)",
        "band": "0-8 kHz: the network reads/writes bins 0..743 of the 44.1 kHz/4096 grid",
    })
    card["data"].pop("root", None)
    card["data"].pop("minutes", None)  # older logs: minutes of all decoded files (both sources)
    scores_path = Path(args.scores)
    if scores_path.is_file():
        res = json.loads(scores_path.read_text())
        card["scores"] = {
            key: {"tracks": len(sec["tracks"]), "median": sec["median"]}
            for key, sec in res.items() if isinstance(sec, dict) and "median" in sec
            and not key.startswith(("highband", "blend"))
        }
        card["scores"]["note"] = ("BSSEval v4 (museval), SDR/SIR/ISR/SAR in dB, median over 1-s frames then "
                                  "over tracks; gSDR = global SDR over the whole track")
    dest = ROOT / "resources" / "models" / args.name
    save_bundle(dest, model, card)
    for f in dest.iterdir():
        f.chmod(0o644)
    size = sum(f.stat().st_size for f in dest.iterdir())
    print(f"{dest}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
