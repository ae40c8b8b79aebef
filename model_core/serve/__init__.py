"""The model as an HTTP service: one GPU (or CPU) for a whole studio, clients without PyTorch.

`schemas` (what requests may hold) < `engine` (requests to model calls, batched) < `batcher`,
`local` (one uvicorn process) and `ray_app` (Ray Serve replicas) < `app` (the FastAPI routes,
one app for both) < `command` (`python -m model_core serve`). `client` is the other side: the
standard library only, for Blender and batch jobs; `spawn` starts a server as a child process and
waits for it. Importing this package imports nothing.
"""
