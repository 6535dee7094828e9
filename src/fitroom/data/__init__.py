"""Datasets: the VITON-HD / HR-VITON layout, torch datasets, and the synthetic renderer."""


class DatasetWarning(UserWarning):
    """Something in a dataset is unusual but readable (for example several people in one keypoint file)."""
