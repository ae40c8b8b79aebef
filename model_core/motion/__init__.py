"""The HumanML3D motion representation: 263-d features ↔ 22 joint positions, the skeleton and its
quaternion math, as the official code computes them (NumPy only)."""
from .features import feature_dim, feature_layout, joints_to_features, recover_from_ric

__all__ = ["feature_dim", "feature_layout", "joints_to_features", "recover_from_ric"]
