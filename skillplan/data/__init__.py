"""Offline data: the dataset catalog, Minari loading, observation flattening, window sampling."""

from skillplan.data.catalog import CATALOG, DatasetSpec, resolve
from skillplan.data.flatten import ObservationLayout
from skillplan.data.loading import Episodes, NormStats, OfflineData, load_offline_data
from skillplan.data.sampler import SkillWindows, WindowSampler

__all__ = [
    "CATALOG",
    "DatasetSpec",
    "Episodes",
    "NormStats",
    "ObservationLayout",
    "OfflineData",
    "SkillWindows",
    "WindowSampler",
    "load_offline_data",
    "resolve",
]
