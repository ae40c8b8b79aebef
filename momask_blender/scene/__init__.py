"""The Blender edge: getting characters and motion files into the scene, reading rigs and
animation out of it as plain data, writing keyframes back, and generated Rigify rigs."""
