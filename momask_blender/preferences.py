"""The extension's preferences: where the model files are."""
from __future__ import annotations

import bpy

# The add-on's own package: the extension root (e.g. 'bl_ext.user_default.momask') when installed,
# this package itself when registered straight from a checkout (tests, the command line).
ADDON_ID = __package__.rpartition(".")[0] or __package__


class MOMASK_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    checkpoints: bpy.props.StringProperty(
        name="Checkpoint folder", subtype="DIR_PATH",
        description="The official MoMask 'checkpoints' folder (holding t2m/)")
    clip: bpy.props.StringProperty(
        name="CLIP file", subtype="FILE_PATH", description="OpenAI's ViT-B-32.pt")
    device: bpy.props.EnumProperty(
        name="Device", items=[("cpu", "CPU", ""), ("cuda", "CUDA", "An NVIDIA GPU, when PyTorch sees one"),
                              ("auto", "Auto", "CUDA when available, else CPU")], default="cpu")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "checkpoints")
        col.prop(self, "clip")
        col.prop(self, "device")


def get(context) -> MOMASK_AP_preferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


classes = (MOMASK_AP_preferences,)
