"""The open-unmix training loop: MSE on magnitudes, Adam + weight decay, ReduceLROnPlateau, early
stopping, resumable checkpoints, a progress bar and a JSON log; the result is a model bundle.

Output folder ``OUT``::

    OUT/model.json, OUT/model.safetensors   the best model so far (a bundle: `unmix separate --model-file OUT`)
    OUT/train_log.json                      config, data, input statistics, one record per epoch
    OUT/checkpoint/last.{safetensors,json}  resume state (weights + Adam moments | everything else)
    OUT/checkpoint/best.safetensors         the best (band-limited) network

Checkpoints hold no pickles: tensors in safetensors, the rest in JSON, so resuming never runs code
from a file. Reproducibility: every item of the data set is drawn from
``default_rng([seed, epoch, index])``, the shuffling and dropout from ``seed + epoch``, so a run
resumed at an epoch boundary continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..atomic import atomic_write_bytes
from ..errors import UnmixError
from ..progress import format_time
from ..separation import transforms
from ..separation.bundle import save_bundle
from ..separation.model import MultiTargetUMX, OpenUnmix
from .augment import Augmentation
from .datasets import band_bins, make_datasets
from .highband import expand_output_bins
from .stats import floored_std, input_statistics, magnitude

CHECKPOINT_FORMAT = "unmix-train-checkpoint"
CHECKPOINT_VERSION = 1
LOG_NAME = "train_log.json"

LogFn = Callable[[str], None]


@dataclass
class TrainConfig:
    root: str
    out: str
    target: str = "vocals"
    dataset: str = "trackfolder_fix"
    interferers: list[str] | None = None
    valid_split: str = "valid"
    epochs: int = 10
    hidden: int = 128
    layers: int = 3
    dropout: float = 0.4
    seq_dur: float = 6.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay_patience: int = 5
    lr_decay_gamma: float = 0.3
    patience: int = 10                 # early stopping (epochs without a better validation loss)
    samples_per_track: int = 1
    nb_samples: int = 1000             # sourcefolder: items per epoch
    seed: int = 42
    device: str = "cpu"
    threads: int | None = None
    workers: int = 0
    max_bin: int | None = None         # None: the bins the data covers (744 for 16 kHz)
    input_floor: float = 1e-2          # std floor, relative to the median std of the band
    high_band: str = "extend"          # exported behaviour above max_bin (see training/highband.py)
    max_minutes: float | None = None   # wall-time budget for the epochs (stops after the batch that passes it)
    valid_tracks: int | None = None    # validate on the first N validation tracks only
    stats_tracks: int | None = None    # input statistics from the first N training tracks only
    stft_cache: bool | None = None     # augment in the STFT domain from cached spectra (None: auto,
                                       # on for track folders; see training/spectral.py)
    name: str | None = None
    description: str = ""
    augmentation: Augmentation = field(default_factory=Augmentation)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augmentation"] = self.augmentation.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        aug = Augmentation.from_dict(d.pop("augmentation", {}) or {})
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__}, augmentation=aug)


# -- small helpers ------------------------------------------------------------------------------

def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(x: float) -> float | str:
    """JSON has no inf/nan: keep them as strings."""
    return x if math.isfinite(x) else str(x)


def _unfinite(x) -> float:
    return float(x)


def machine_info(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "python": sys.version.split()[0],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def resolve_device(name: str) -> torch.device:
    name = (name or "cpu").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UnmixError("--device cuda: no CUDA device is available (this torch build or machine has none)")
    if not (name == "cpu" or name.startswith("cuda")):
        raise UnmixError(f"unknown device '{name}' (cpu, cuda or auto)")
    return torch.device(name)


def build_network(config: TrainConfig, max_bin: int, nb_channels: int = 2) -> OpenUnmix:
    """The band-limited network trained here: it reads and writes ``max_bin`` bins."""
    return OpenUnmix(nb_bins=max_bin, nb_channels=nb_channels, hidden_size=config.hidden,
                     nb_layers=config.layers, max_bin=max_bin, dropout=config.dropout)


def export_model(net: OpenUnmix, config: TrainConfig, card: dict, high_band: str | None = None) -> MultiTargetUMX:
    """The full-range (2049 bins) :class:`MultiTargetUMX` for ``net`` (see training/highband.py)."""
    full = expand_output_bins(net.cpu(), transforms.N_FFT // 2 + 1, high_band or config.high_band)
    return MultiTargetUMX({config.target: full}, card=card).eval()


# -- checkpoints --------------------------------------------------------------------------------

def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optimizer.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def save_checkpoint(folder: Path, net: OpenUnmix, optimizer, scheduler, state: dict) -> None:
    """``folder/last.safetensors`` (model + Adam state) and ``folder/last.json`` (the rest). The
    epoch is written into both; :func:`load_checkpoint` refuses a mismatched pair."""
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    sched = scheduler.state_dict()
    sched = {k: (_finite(v) if isinstance(v, float) else v) for k, v in sched.items()}
    meta = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION, optimizer=opt_meta, scheduler=sched)
    epoch = str(state["epoch"])
    atomic_write_bytes(folder / "last.safetensors", save(tensors, metadata={"epoch": epoch}))
    atomic_write_bytes(folder / "last.json", _json_bytes(meta))


def load_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """-> (json state, model state_dict, optimizer tensors). Raises :class:`UnmixError`."""
    from safetensors import SafetensorError, safe_open

    jpath, wpath = folder / "last.json", folder / "last.safetensors"
    if not jpath.is_file() or not wpath.is_file():
        raise UnmixError(f"{folder}: no checkpoint to resume from (last.json / last.safetensors missing)")
    try:
        meta = json.loads(jpath.read_text())
    except (OSError, ValueError) as exc:
        raise UnmixError(f"{jpath}: unreadable checkpoint ({exc})") from exc
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise UnmixError(f"{jpath}: not a training checkpoint")
    try:
        with safe_open(str(wpath), framework="pt") as fh:
            file_epoch = (fh.metadata() or {}).get("epoch")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (OSError, SafetensorError) as exc:
        raise UnmixError(f"{wpath}: unreadable checkpoint weights ({exc})") from exc
    if file_epoch != str(meta.get("epoch")):
        raise UnmixError(f"{folder}: checkpoint files disagree (weights epoch {file_epoch}, state epoch "
                         f"{meta.get('epoch')}); the last save was interrupted")
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    opt = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    return meta, model, opt


def _restore_optimizer(optimizer, meta: dict, tensors: dict[str, torch.Tensor], device) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value.to(device) if name != "step" else value
    groups = meta["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _restore_scheduler(scheduler, sd: dict) -> None:
    sd = {k: (_unfinite(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v) for k, v in sd.items()}
    scheduler.load_state_dict(sd)


# -- training -----------------------------------------------------------------------------------

@dataclass
class TrainResult:
    out: Path
    history: list[dict]
    best_epoch: int
    best_valid_loss: float
    elapsed_s: float
    stopped: str


def _progress(iterable, total: int, desc: str, quiet: bool):
    if quiet:
        return iterable
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True, file=sys.stderr,
                mininterval=0.5 if tty else 30.0, leave=True)


@torch.no_grad()
def validation_loss(net: OpenUnmix, dataset, device, max_bin: int, limit: int | None = None) -> float:
    """Mean squared error over every bin and frame of the validation tracks (whole tracks)."""
    net.eval()
    total, count = 0.0, 0
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(n):
        x, y = dataset[i]
        X = magnitude(x.to(device)[None], max_bin=max_bin)
        Y = magnitude(y.to(device)[None], max_bin=max_bin)
        Yh = net(X)
        total += float(torch.sum((Yh - Y) ** 2))
        count += Y.numel()
    return total / max(count, 1)


@dataclass
class PreparedData:
    """Decoded data sets, their STFT cache (fast path) and cached validation magnitudes; reusable
    by several runs on the same data (e.g. pilot studies)."""

    train_ds: object
    valid_ds: object
    max_bin: int
    data_bins: int
    sample_rate: int
    minutes: float
    spectral: object | None = None
    valid_cached: object | None = None
    _stats: dict = field(default_factory=dict)

    def statistics(self, max_items: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        if max_items not in self._stats:
            if self.spectral is not None and max_items is None:
                self._stats[max_items] = self.spectral.mixture_statistics()
            else:
                self._stats[max_items] = input_statistics(_unaugmented_copy(self.train_ds), max_bin=self.max_bin,
                                                          max_items=max_items)
        return self._stats[max_items]

    def info(self) -> dict:
        return {"root": str(getattr(self.train_ds, "root", "")),
                "train_tracks": len(getattr(self.train_ds, "tracks", [])) or len(self.train_ds),
                "valid_tracks": len(self.valid_ds), "sample_rate": self.sample_rate,
                "decoded_minutes_all_files": round(self.minutes, 2),
                "data_bins": self.data_bins, "max_bin": self.max_bin, "stft_cache": self.spectral is not None}


def prepare_data(config: TrainConfig, log: LogFn | None = None) -> PreparedData:
    """Build the data sets of ``config``, decode everything into memory and (fast path) the STFT cache."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if config.threads:
        torch.set_num_threads(int(config.threads))
    train_ds, valid_ds = make_datasets(
        config.dataset, config.root, config.target, config.interferers, config.seq_dur, config.augmentation,
        config.samples_per_track, config.seed, nb_samples=config.nb_samples, valid_split=config.valid_split)
    t_load = time.perf_counter()
    log(f"decoding {len(train_ds.files())} training and {len(valid_ds.files())} validation files into memory")
    train_ds.preload()
    valid_ds.preload()
    cache = train_ds.cache
    minutes = cache.seconds / 60
    log(f"  {minutes:.1f} min of audio at {cache.sample_rate} Hz, {cache.nbytes / 2**20:.0f} MiB, "
        f"{time.perf_counter() - t_load:.1f} s")
    data_bins = band_bins(cache.sample_rate)
    max_bin = int(config.max_bin or data_bins)
    data = PreparedData(train_ds, valid_ds, max_bin, data_bins, int(cache.sample_rate), minutes)
    use_cache = config.stft_cache
    if use_cache is None:
        use_cache = hasattr(train_ds, "tracks") and config.dataset != "aligned"
    if use_cache:
        if not hasattr(train_ds, "tracks") or config.dataset == "aligned":
            raise UnmixError("the STFT cache works with track-folder data sets (trackfolder_fix / trackfolder_var)")
        from .spectral import CachedValidation, SpectralTrackCache

        t0 = time.perf_counter()
        data.spectral = SpectralTrackCache(train_ds, max_bin)
        data.valid_cached = CachedValidation(valid_ds, max_bin, config.valid_tracks)
        data.statistics()
        cache.clear()  # the waveforms are no longer needed
        log(f"STFT cache: {data.spectral.nbytes / 2**20:.0f} MiB of spectra, {len(data.valid_cached)} validation "
            f"tracks, {time.perf_counter() - t0:.1f} s")
    return data


def train(config: TrainConfig, resume: bool = False, log: LogFn | None = None, quiet: bool = False,
          on_epoch: Callable[[dict], None] | None = None, data: PreparedData | None = None) -> TrainResult:
    """Train (or resume) a single-target open-unmix model; returns the history. See module doc.

    ``data``: a :func:`prepare_data` result to reuse (its augmentation is replaced by ``config``'s).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(config.out)
    ckpt_dir = out / "checkpoint"
    meta = model_sd = opt_tensors = None
    if resume:
        meta, model_sd, opt_tensors = load_checkpoint(ckpt_dir)
        saved = TrainConfig.from_dict(meta["config"])
        # The architecture, data and recipe come from the checkpoint; the run length and machine
        # settings may change (e.g. more epochs, another device).
        for key in ("epochs", "device", "threads", "workers", "max_minutes", "patience"):
            setattr(saved, key, getattr(config, key))
        saved.out = config.out
        config = saved
        log(f"resuming from {ckpt_dir} after epoch {meta['epoch']}")
    if config.threads:
        torch.set_num_threads(int(config.threads))
    from .distributed import setup

    # joins the process group under torchrun (kept for later runs in this process; the command closes it)
    dist, device = setup(resolve_device(config.device))
    return _train(config, out, ckpt_dir, meta, model_sd, opt_tensors, dist, device, log, quiet, on_epoch, data)


def _train(config, out, ckpt_dir, meta, model_sd, opt_tensors, dist, device, log, quiet, on_epoch,
           data) -> TrainResult:
    if not dist.is_main:  # rank 0 logs; the others only compute
        def log(msg: str) -> None:
            return None
        quiet = True
    out.mkdir(parents=True, exist_ok=True)

    if data is None:
        data = prepare_data(config, log)
    else:
        data.train_ds.augmentation = config.augmentation
    train_ds, valid_ds, spectral, valid_cached = data.train_ds, data.valid_ds, data.spectral, data.valid_cached
    max_bin = data.max_bin
    config.max_bin = max_bin

    torch.manual_seed(config.seed)  # the initial weights
    net = build_network(config, max_bin)
    if meta is not None:
        net.load_state_dict(model_sd, strict=True)
        stats = meta["stats"]
    else:
        # Input statistics: whole training tracks, no augmentation (the validation form of the set).
        t0 = time.perf_counter()
        mean, std, frames = data.statistics(config.stats_tracks)
        std_f = floored_std(std, config.input_floor, relative_to="median")
        net.set_input_statistics(torch.from_numpy(mean), torch.from_numpy(std_f), floor=0.0)
        stats = {"frames": frames, "seconds": round(time.perf_counter() - t0, 1),
                 "floor": config.input_floor, "floor_relative_to": "median",
                 "floored_bins": int(np.sum(std < std_f)), "std_min": float(std.min()),
                 "std_median": float(np.median(std)), "std_max": float(std.max())}
        log(f"input statistics over {frames} frames ({stats['seconds']} s); {stats['floored_bins']} "
            f"near-empty bins floored")
    net.to(device)
    model = net
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_decay_gamma, patience=config.lr_decay_patience, cooldown=1)
    history: list[dict] = []
    best_loss, best_epoch, bad_epochs = math.inf, 0, 0
    elapsed_before = 0.0
    start_epoch = 1
    if meta is not None:
        _restore_optimizer(optimizer, meta, opt_tensors, device)
        _restore_scheduler(scheduler, meta["scheduler"])
        history = meta["history"]
        best_loss = _unfinite(meta["best_valid_loss"])
        best_epoch, bad_epochs = int(meta["best_epoch"]), int(meta["bad_epochs"])
        elapsed_before = float(meta["elapsed_s"])
        start_epoch = int(meta["epoch"]) + 1

    machine = machine_info(device)
    if dist.enabled:
        machine["world_size"] = dist.world
        machine["backend"] = dist.backend
    log_doc = {
        "config": config.to_dict(),
        "machine": machine,
        "data": data.info(),
        "stats": stats,
        "history": history,
    }
    params = sum(p.numel() for p in net.parameters())
    log(f"model: open-unmix hidden {config.hidden}, {config.layers} BLSTM layers, {max_bin} bins "
        f"({params / 1e6:.2f} M parameters while training), device {device}, {torch.get_num_threads()} threads"
        + (f", {dist.world} processes ({dist.backend})" if dist.enabled else ""))

    t_start = time.perf_counter()
    budget_s = config.max_minutes * 60 if config.max_minutes else None
    stopped = "epochs"
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs + 1):
        t_epoch = time.perf_counter()
        torch.manual_seed(config.seed * 1000 + epoch)
        if spectral is not None:
            from .spectral import SpectralBatches

            loader = SpectralBatches(spectral, config.augmentation, config.seq_dur, config.batch_size,
                                     config.samples_per_track, config.seed).shard(dist.rank, dist.world)
            loader.set_epoch(epoch)
        elif dist.enabled:
            from torch.utils.data.distributed import DistributedSampler

            train_ds.set_epoch(epoch)
            sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                         seed=config.seed, drop_last=True)
            sampler.set_epoch(epoch)
            loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler,
                                drop_last=len(train_ds) // dist.world >= config.batch_size,
                                num_workers=config.workers)
        else:
            train_ds.set_epoch(epoch)
            gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
            loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=True,
                                drop_last=len(train_ds) >= config.batch_size, generator=gen,
                                num_workers=config.workers)
        model.train()
        losses = []
        bar = _progress(loader, len(loader), f"epoch {epoch}/{config.epochs}", quiet)
        over_budget = False
        for x, y in bar:
            if spectral is not None:  # already magnitudes
                X, Y = x.to(device), y.to(device)
            else:
                x, y = x.to(device), y.to(device)
                X = magnitude(x, max_bin=max_bin)
                Y = magnitude(y, max_bin=max_bin)
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(X), Y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            spent = time.perf_counter() - t_start
            if not quiet:
                done = (epoch - start_epoch) + len(losses) / max(len(loader), 1)
                eta = spent / max(done, 1e-9) * (config.epochs - start_epoch + 1 - done)
                if budget_s:
                    eta = min(eta, budget_s - spent)
                bar.set_postfix_str(f"loss {np.mean(losses[-20:]):.4g}  run ETA {format_time(eta)}", refresh=False)
            if budget_s and dist.any(spent > budget_s):
                over_budget = True
                break
        if not quiet:
            bar.close()
        train_loss = dist.mean(float(np.mean(losses)) if losses else float("nan"))
        valid_loss = float("nan")
        if dist.is_main:  # the others wait for its result
            if spectral is not None:
                valid_loss = valid_cached.loss(net, device)
            else:
                valid_loss = validation_loss(net, valid_ds, device, max_bin, config.valid_tracks)
        valid_loss = dist.broadcast_float(valid_loss)
        scheduler.step(valid_loss)
        improved = valid_loss < best_loss
        if improved:
            best_loss, best_epoch, bad_epochs = valid_loss, epoch, 0
        else:
            bad_epochs += 1
        elapsed = elapsed_before + time.perf_counter() - t_start
        record = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                  "lr": optimizer.param_groups[0]["lr"], "batches": len(losses),
                  "epoch_s": round(time.perf_counter() - t_epoch, 1), "elapsed_s": round(elapsed, 1),
                  "best": improved}
        history.append(record)
        log(f"epoch {epoch}: train {train_loss:.5g}  valid {valid_loss:.5g}{'  *best*' if improved else ''}  "
            f"lr {record['lr']:.2g}  {record['epoch_s']:.0f} s (total {format_time(elapsed)})")
        if dist.is_main:
            if improved:
                _save_best(out, ckpt_dir, net, config, log_doc, history, best_epoch, best_loss, elapsed, machine)
            state = {"epoch": epoch, "config": config.to_dict(), "history": history, "stats": stats,
                     "best_valid_loss": _finite(best_loss), "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                     "elapsed_s": elapsed, "world_size": dist.world}
            save_checkpoint(ckpt_dir, net, optimizer, scheduler, state)
            log_doc["best_epoch"], log_doc["best_valid_loss"] = best_epoch, _finite(best_loss)
            log_doc["elapsed_s"] = elapsed
            atomic_write_bytes(out / LOG_NAME, _json_bytes(log_doc))
        dist.barrier()
        if on_epoch:
            on_epoch(record)
        if over_budget:
            stopped = "time budget"
            break
        if bad_epochs >= config.patience:
            stopped = "early stopping"
            log(f"early stopping: no better validation loss for {bad_epochs} epochs")
            break
    elapsed = elapsed_before + time.perf_counter() - t_start
    log_doc["stopped"] = stopped
    log_doc["elapsed_s"] = elapsed
    if dist.is_main:
        atomic_write_bytes(out / LOG_NAME, _json_bytes(log_doc))
    if best_epoch:
        log(f"best epoch {best_epoch} (valid loss {best_loss:.5g}); bundle in {out}")
    return TrainResult(out, history, best_epoch, best_loss, elapsed, stopped)


def _unaugmented_copy(ds):
    """The same tracks as ``ds``, whole and without augmentation (shares the audio cache)."""
    import copy

    twin = copy.copy(ds)
    twin.augmentation = Augmentation.none()
    twin.seq_duration = None if hasattr(ds, "tracks") else ds.seq_duration
    twin.frozen = True
    return twin


def training_card(config: TrainConfig, history: list[dict], best_epoch: int, best_loss: float,
                  elapsed: float, machine: dict, data: dict) -> dict:
    name = config.name or Path(config.out).name
    return {
        "name": name,
        "description": config.description or f"open-unmix ({config.target}) trained on {Path(config.root).name}",
        "family": "open-unmix",
        "targets": [config.target],
        "data": data,
        "recipe": {k: v for k, v in config.to_dict().items() if k not in ("root", "out", "name", "description")},
        "training": {"best_epoch": best_epoch, "best_valid_loss": best_loss, "epochs_run": len(history),
                     "wall_time_s": round(elapsed, 1), "machine": machine,
                     "loss_per_epoch": [[h["epoch"], round(h["train_loss"], 6), round(h["valid_loss"], 6)]
                                        for h in history]},
        "high_band": config.high_band,
        "license": "trained from MIR-1K (research use)" if "mir1k" in str(config.root).lower() else "",
    }


def _save_best(out: Path, ckpt_dir: Path, net: OpenUnmix, config: TrainConfig, log_doc: dict, history,
               best_epoch: int, best_loss: float, elapsed: float, machine: dict) -> None:
    from safetensors.torch import save

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(ckpt_dir / "best.safetensors", save(sd, metadata={"epoch": str(best_epoch)}))
    card = training_card(config, history, best_epoch, best_loss, elapsed, machine, log_doc["data"])
    cpu_net = build_network(config, config.max_bin)
    cpu_net.load_state_dict(sd)
    save_bundle(out, export_model(cpu_net.eval(), config, card))


def load_band_limited(folder: str | os.PathLike, which: str = "best") -> tuple[OpenUnmix, TrainConfig]:
    """The band-limited network of a training run (``best`` or ``last``) and its config, e.g. to
    export it again with another high-band rule."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = json.loads((folder / LOG_NAME).read_text())
    config = TrainConfig.from_dict(meta["config"])
    path = folder / "checkpoint" / f"{which}.safetensors"
    tensors = load_file(str(path))
    if which == "last":
        tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    net = build_network(config, int(config.max_bin))
    net.load_state_dict(tensors, strict=True)
    return net.eval(), config
