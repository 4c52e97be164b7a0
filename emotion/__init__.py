"""emotion: tell an anxious face from a neutral one by its FaceMesh geometry."""

__version__ = "0.1.0"
