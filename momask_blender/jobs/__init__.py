"""Long work off Blender's main thread: the worker thread and its states (`worker`, pure), the
modal operator that drives it (`modal`), the loaded model (`model_cache`), and the jobs
themselves as prepare → compute → apply (`bake`, `timeline`)."""
