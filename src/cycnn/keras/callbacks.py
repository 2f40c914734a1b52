"""Keras's callbacks with Keras's arguments, over cycnn's (``cycnn.models.callbacks``)."""
from ..models import callbacks as _cb
from ..models.callbacks import Callback, CSVLogger, History  # noqa: F401

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "CSVLogger",
           "LearningRateScheduler"]


class EarlyStopping(_cb.EarlyStopping):
    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        if baseline is not None or start_from_epoch:
            raise ValueError("baseline and start_from_epoch are not supported")
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience, mode=mode,
                         restore_best_weights=restore_best_weights)


class ModelCheckpoint(_cb.ModelCheckpoint):
    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch"):
        if save_weights_only or save_freq != "epoch":
            raise ValueError("save_weights_only and save_freq other than 'epoch' are not "
                             "supported: whole models are saved once per epoch")
        super().__init__(filepath, monitor=monitor, save_best_only=save_best_only, mode=mode,
                         verbose=verbose)


class LearningRateScheduler(_cb.LearningRateScheduler):
    """``schedule(epoch, lr) -> new lr`` with the optimizer's current lr, as Keras."""

    def __init__(self, schedule, verbose=0):
        super().__init__(schedule, from_initial=False, verbose=verbose)
