"""Exception types of mobilebert_lite."""


class CheckpointError(ValueError):
    """A checkpoint is unreadable, or its tensors do not match what the model class needs."""
