"""Rig and motion math in plain NumPy (never bpy): the HumanML3D source skeleton, rotations, bone
maps, retargeting, foot locking, resampling, range-edit windows and the BVH writer. Tested
without Blender; everything above it hands it plain arrays."""
