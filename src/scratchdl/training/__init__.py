"""The training loop, its callbacks and metrics."""

from scratchdl.training.callbacks import (
    BookConvTesting,
    Callback,
    CallbackList,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    TrainingDiverged,
)
from scratchdl.training.denormals import flush_denormals
from scratchdl.training.loggers import CSVLogger, TensorBoard
from scratchdl.training.metrics import accuracy, mae, r2, rmse
from scratchdl.training.trainer import Trainer

__all__ = [
    "BookConvTesting",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "ProgressBar",
    "TensorBoard",
    "TerminateOnNaN",
    "Trainer",
    "TrainingDiverged",
    "accuracy",
    "flush_denormals",
    "mae",
    "r2",
    "rmse",
]
