"""The MoMask networks, one file each, with the official state-dict key names: the residual VQ-VAE,
the masked and residual transformers, the length estimator; and their int8 fast path."""
