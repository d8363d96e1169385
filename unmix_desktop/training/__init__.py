"""The open-unmix tutorial's training pipeline (see docs/TRAINING.md).

Public API::

    make_datasets(kind, root, target, ...) -> (train, valid)     # torch Datasets, items (mixture, target)
    Augmentation(...)                                            # per-source augmentation settings
    TrainConfig(root=..., out=..., ...); train(config, resume=False) -> TrainResult
    expand_output_bins(net, 2049, mode)                          # behaviour above a band-limited model's band
"""

from .augment import Augmentation
from .datasets import (
    AlignedDataset,
    AudioCache,
    FixedSourcesTrackFolderDataset,
    SourceFolderDataset,
    VariableSourcesTrackFolderDataset,
    band_bins,
    make_datasets,
)
from .highband import expand_output_bins
from .trainer import TrainConfig, TrainResult, prepare_data, train

__all__ = [
    "AlignedDataset", "AudioCache", "Augmentation", "FixedSourcesTrackFolderDataset", "SourceFolderDataset",
    "TrainConfig", "TrainResult", "VariableSourcesTrackFolderDataset", "band_bins", "expand_output_bins",
    "make_datasets", "prepare_data", "train",
]
