"""MoMask for Blender: the extension's entry point. Everything lives in `momask_blender`."""


def register():
    from .momask_blender import register as _register

    _register()


def unregister():
    from .momask_blender import unregister as _unregister

    _unregister()
