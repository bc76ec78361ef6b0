"""The model registry: an immutable snapshot of models and providers, and their live health."""
