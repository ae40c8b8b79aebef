"""MoMask inference: the released checkpoints, loaded unchanged, giving the official numbers."""
