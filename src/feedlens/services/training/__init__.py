"""Training for a workspace: datasets from labels, trained versions in a registry, production/A-B serving."""

from __future__ import annotations

from feedlens.core.training import WORKSPACE
from feedlens.services.training.registry import TASKS, ModelRegistry, RegistryError
from feedlens.services.training.runs import Run, RunError, RunQueue
from feedlens.services.training.service import TrainingService, dataset_from_path
from feedlens.services.training.serving import ModelServer, Prediction, routes_to_candidate
from feedlens.training.active_learning import ActiveLearningError
from feedlens.training.datasets import DatasetError
from feedlens.training.recipe import TrainOptions

__all__ = [
    "TASKS",
    "WORKSPACE",
    "ActiveLearningError",
    "DatasetError",
    "ModelRegistry",
    "ModelServer",
    "Prediction",
    "RegistryError",
    "Run",
    "RunError",
    "RunQueue",
    "TrainOptions",
    "TrainingService",
    "dataset_from_path",
    "routes_to_candidate",
]
