"""User-facing errors: one paragraph that says what was wrong and what to run instead."""


class SkillplanError(Exception):
    """An error caused by user input or environment, shown without a traceback by the CLI."""


class DatasetError(SkillplanError):
    """A dataset is unknown, missing, unreachable or malformed."""


class CheckpointError(SkillplanError):
    """A checkpoint directory is missing, corrupt or does not fit what it is used with."""


class ConfigError(SkillplanError):
    """A configuration is invalid or conflicts with an existing run."""


class TrainingDivergedError(SkillplanError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
