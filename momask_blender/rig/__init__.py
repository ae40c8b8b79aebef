"""Rig and motion math in plain NumPy (never bpy): the HumanML3D source skeleton, rotations, bone
maps, retargeting, foot locking, resampling and range-edit windows (BVH files are written by
model_core.motion.bvh, shared with batch jobs). Tested without Blender; everything above it hands
it plain arrays."""
