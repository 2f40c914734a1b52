"""Callbacks of ``fit``."""

__all__ = ["History"]


class History:
    """What ``fit`` returns: ``history`` maps a name to one value per epoch; ``epoch`` lists them.

    Keys: 'loss', 'accuracy' (when compiled with that metric), 'val_loss', 'val_accuracy' (with
    validation data), 'lr', 'time' (seconds for the whole epoch, validation included) and
    'images_per_sec' (training images / training time of the epoch).
    """

    def __init__(self):
        self.history = {}
        self.epoch = []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
