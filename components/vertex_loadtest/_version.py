"""The one version number: package, image tags, every spec's base_image, the pipeline template."""

__version__ = "0.1.0"
