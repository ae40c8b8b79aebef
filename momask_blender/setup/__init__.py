"""Getting set up, in plain Python (no bpy, no torch): which model files exist and whether they are
intact, finding, downloading and installing them, and installing PyTorch."""
