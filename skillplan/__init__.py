"""skillplan: skill-based, model-based reinforcement learning from offline Minari data."""

__version__ = "0.1.0"
