"""The HumanML3D skeleton in a T-pose as a rig (RigRest), and its plan: a humanoid to bake onto in
tests that need no Blender."""
from __future__ import annotations

import numpy as np

from momask_blender.rig.plan import plan_rig
from momask_blender.rig.rest import RigRest
from momask_blender.rig.skeleton import JOINTS, PARENTS, t_pose, to_blender


def skeleton_rig() -> RigRest:
    """Blender axes, identity bone orientations, every bone named as its joint."""
    heads = to_blender(t_pose())
    matrices = np.tile(np.eye(4), (22, 1, 1))
    matrices[:, :3, 3] = heads
    return RigRest(names=tuple(JOINTS), parents=np.array(PARENTS), matrices=matrices,
                   tails=heads + np.array([0.0, 0.0, 0.05]), world=np.eye(4), connected=np.zeros(22, bool),
                   local_location=np.ones(22, bool))


def skeleton_plan():
    return plan_rig(skeleton_rig(), {j: j for j in JOINTS})
