"""Training-time code for the learned router: read labelled prompts, fit, calibrate, write the artifact.

Nothing here runs in the sidecar. The runtime side (feature extraction and inference, pure Python)
is `sidecar.policy.learned`; training imports its feature function so that both sides always see
the same features. This package may use numpy and scikit-learn (the `train` extra).
"""
