"""``unmix train``: train an open-unmix model (the tutorial's pipeline) and write a model bundle.

Example::

    unmix train --root ../shared/data/mir1k --target vocals --epochs 20 --out runs/umx-mir1k
    unmix separate --model-file runs/umx-mir1k song.mp3
"""

from __future__ import annotations

import argparse

from ..errors import UnmixError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train an open-unmix model on a folder of tracks",
        description="Train a single-target open-unmix model (MSE on STFT magnitudes, Adam, "
                    "ReduceLROnPlateau, early stopping). Writes a model bundle to --out that "
                    "`unmix separate --model-file OUT` loads, a JSON log and resumable checkpoints.")
    p.add_argument("--root", required=True, help="data folder holding train/ and valid/ (e.g. ../shared/data/mir1k)")
    p.add_argument("--out", required=True, help="output folder (bundle, train_log.json, checkpoint/)")
    p.add_argument("--target", default="vocals", help="target source file/folder name (default vocals)")
    p.add_argument("--targets", default=None, metavar="LIST",
                   help="several targets, e.g. drums,bass,other: one network each (OUT/<target>/), the input "
                        "is the sum of these targets (plus --interferers if given), and OUT holds one bundle "
                        "with all of them; --max-minutes applies to each")
    p.add_argument("--dataset", default="trackfolder_fix",
                   choices=["trackfolder_fix", "trackfolder_var", "sourcefolder", "aligned"],
                   help="data layout (default trackfolder_fix: <split>/<track>/{target,interferers})")
    p.add_argument("--interferers", nargs="+", default=None,
                   help="interferer files (trackfolder_fix) or folders (sourcefolder); default: all others")
    p.add_argument("--valid-split", default="valid")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=128, help="hidden size (default 128)")
    p.add_argument("--layers", type=int, default=3, help="BLSTM layers (default 3)")
    p.add_argument("--dropout", type=float, default=0.4)
    p.add_argument("--seq-dur", type=float, default=6.0, help="excerpt length in seconds (default 6)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--lr-decay-patience", type=int, default=5)
    p.add_argument("--lr-decay-gamma", type=float, default=0.3)
    p.add_argument("--patience", type=int, default=10, help="early stopping patience in epochs")
    p.add_argument("--samples-per-track", type=int, default=1, help="excerpts per track per epoch")
    p.add_argument("--nb-samples", type=int, default=1000, help="sourcefolder: excerpts per epoch")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--max-bin", type=int, default=None,
                   help="bins the network reads/writes (default: those the data covers, 744 for 16 kHz)")
    p.add_argument("--input-floor", type=float, default=1e-2,
                   help="floor of the input std, relative to the median std (default 0.01)")
    p.add_argument("--high-band", default="extend",
                   help="mask above max_bin in the exported model: extend, zero, one or a number")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much training time")
    p.add_argument("--valid-tracks", type=int, default=None, help="validate on the first N tracks only")
    p.add_argument("--stats-tracks", type=int, default=None, help="input statistics from N tracks only")
    p.add_argument("--name", default=None, help="model name in its card (default: the --out folder name)")
    p.add_argument("--description", default="")
    p.add_argument("--stft-cache", choices=["auto", "on", "off"], default="auto",
                   help="augment in the STFT domain from spectra computed once (auto: on for track "
                        "folders; off = time-domain Dataset + DataLoader)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/last.*")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.add_argument_group("augmentation")
    a.add_argument("--gain", type=float, nargs=2, default=[0.25, 1.25], metavar=("LO", "HI"),
                   help="per-source gain range (default 0.25 1.25)")
    a.add_argument("--no-gain", action="store_true")
    a.add_argument("--no-swap", action="store_true", help="no random channel swap")
    a.add_argument("--no-stereo", action="store_true", help="mono sources as dual mono (no stereo synthesis)")
    a.add_argument("--pan", type=float, default=0.5, help="largest random pan of a mono source (0..1)")
    a.add_argument("--width", type=float, default=0.4, help="largest random stereo width of a mono source")
    a.add_argument("--eq-db", type=float, default=0.0, help="random EQ strength in dB (0 = off)")
    a.add_argument("--level-db", type=float, nargs=2, default=[0.0, 0.0], metavar=("LO", "HI"),
                   help="random mixture level range in dB")
    a.add_argument("--mix-prob", type=float, default=0.5,
                   help="probability that an interferer comes from another track")
    a.add_argument("--silence-db", type=float, default=-50.0,
                   help="silence-aware excerpts: target RMS must exceed this (dBFS)")
    return p


def config_from_args(args):
    from ..training.augment import Augmentation
    from ..training.trainer import TrainConfig

    aug = Augmentation(
        gain=None if args.no_gain else tuple(args.gain),
        channel_swap=not args.no_swap,
        stereo=not args.no_stereo,
        pan=args.pan,
        width=args.width,
        eq_db=args.eq_db,
        level_db=tuple(args.level_db),
        silence_db=args.silence_db,
        mix_prob=args.mix_prob,
    )
    if args.epochs < 1:
        raise UnmixError("--epochs must be at least 1")
    if args.batch_size < 1 or args.hidden < 2 or args.layers < 1 or args.seq_dur <= 0:
        raise UnmixError("--batch-size, --hidden, --layers and --seq-dur must be positive")
    return TrainConfig(
        root=args.root, out=args.out, target=args.target, dataset=args.dataset, interferers=args.interferers,
        valid_split=args.valid_split, epochs=args.epochs, hidden=args.hidden, layers=args.layers,
        dropout=args.dropout, seq_dur=args.seq_dur, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, lr_decay_patience=args.lr_decay_patience,
        lr_decay_gamma=args.lr_decay_gamma, patience=args.patience, samples_per_track=args.samples_per_track,
        nb_samples=args.nb_samples, seed=args.seed, device=args.device, threads=args.threads,
        workers=args.workers, max_bin=args.max_bin, input_floor=args.input_floor, high_band=args.high_band,
        max_minutes=args.max_minutes, valid_tracks=args.valid_tracks, stats_tracks=args.stats_tracks,
        name=args.name, description=args.description, augmentation=aug,
        stft_cache={"auto": None, "on": True, "off": False}[args.stft_cache])


def run(args) -> int:
    from ..training.distributed import world_from_env

    try:
        if args.targets:
            return _run_multi(args)
        return _run_one(config_from_args(args), args)
    finally:
        if world_from_env()[1] > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _run_one(config, args) -> int:
    from ..training.distributed import world_from_env
    from ..training.trainer import train

    result = train(config, resume=args.resume, quiet=args.quiet)
    if world_from_env()[0] != 0:
        return 0
    if not result.history:
        print(f"nothing to do: the checkpoint in {result.out} already ran {config.epochs} epochs")
        return 0
    print(f"{result.out}  (best epoch {result.best_epoch}, valid loss {result.best_valid_loss:.5g}, "
          f"{result.elapsed_s / 60:.1f} min, stopped: {result.stopped})")
    return 0


def _run_multi(args) -> int:
    """One network per target, then one bundle in OUT holding all of them."""
    import copy
    from pathlib import Path

    from ..separation.bundle import load_bundle, save_bundle
    from ..separation.model import MultiTargetUMX
    from ..training.distributed import world_from_env

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if len(targets) < 2 or len(set(targets)) != len(targets):
        raise UnmixError("--targets needs at least two different names, e.g. drums,bass,other")
    base = config_from_args(args)
    out = Path(base.out)
    for target in targets:
        config = copy.deepcopy(base)
        config.target = target
        config.out = str(out / target)
        config.interferers = [t for t in targets if t != target] + list(base.interferers or [])
        config.name = f"{base.name or out.name}-{target}"
        _run_one(config, args)
    if world_from_env()[0] != 0:
        return 0
    nets, cards = {}, {}
    for target in targets:
        model = load_bundle(out / target)
        nets[target] = model.networks[target]
        cards[target] = model.card
    card = {"name": base.name or out.name,
            "description": base.description or f"open-unmix ({', '.join(targets)}) trained on {Path(base.root).name}",
            "family": "open-unmix", "targets": targets, "data": cards[targets[0]].get("data", {}),
            "recipe": cards[targets[0]].get("recipe", {}), "high_band": base.high_band,
            "training": {t: cards[t].get("training", {}) for t in targets}}
    save_bundle(out, MultiTargetUMX(nets, card=card).eval())
    print(f"{out}: one bundle with {', '.join(targets)}")
    return 0
