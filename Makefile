# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-blender42 lint demo extension bench bench-serve clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# clip-anytorch declares torchvision, which would pull a CUDA torch: we only need its BPE vocabulary.
	$(PY) -m pip install -q --no-deps clip-anytorch==2.6.0
	touch $(STAMP)

venv: $(STAMP)

# Prompt → Blender's human metarig → demo/out.blend, out.bvh, out.png (a Workbench render). DEMO_ARGS: e.g.
# --prompt "..." --steps 10, --source MOTION.npy; weights: MOMASK_CHECKPOINTS/MOMASK_CLIP, ../checkpoints,
# ~/.cache/momask, ../shared/reference, else downloaded there (MOMASK_NO_DOWNLOAD=1: not), else random.
demo: $(STAMP)
	$(PY) -m momask_blender.demo $(DEMO_ARGS)

# dist/momask-<version>-<platform>.zip for every platform (see tools/build_extension.py --help).
extension: $(STAMP)
	$(PY) tools/build_extension.py $(EXTENSION_ARGS)

# Every test file that uses Blender, again on Blender 4.2 LTS (the legacy action API), in a venv of its own made
# from requirements.txt with bpy 4.2.23 instead: `make test` runs it after the main suite.
VENV42 := .venv42
PY42 := $(VENV42)/bin/python
STAMP42 := $(VENV42)/.installed
BPY42 := 4.2.23
BPY_TESTS ?= tests/test_ui_blender.py tests/test_bake_blender.py tests/test_inpaint_blender.py \
	tests/test_rigify_blender.py tests/test_detection_blender.py tests/test_remote_blender.py tests/test_render.py \
	tests/test_demo.py tests/test_build_extension.py tests/test_direct_blender.py tests/test_bad_input_blender.py \
	tests/test_bake_cli_inputs.py tests/test_fuzz.py tests/test_threads.py

$(STAMP42): requirements.txt
	$(PYTHON) -m venv $(VENV42)
	$(PY42) -m pip install -q --upgrade pip
	sed 's/^bpy==.*/bpy==$(BPY42)/' requirements.txt > $(VENV42)/requirements.txt
	$(PY42) -m pip install -q -r $(VENV42)/requirements.txt
	$(PY42) -m pip install -q --no-deps clip-anytorch==2.6.0
	touch $(STAMP42)

# One process per file: bpy 4.2 now and then segfaulted in its glTF importer (setting the window's scene) when
# another file had generated a Rigify rig and baked it in the same process (the command lines bake one per process).
test-blender42: $(STAMP42)
	$(PY42) -c "import bpy; print('Blender', bpy.app.version_string)"
	@failed=""; for file in $(BPY_TESTS); do echo "$$file"; \
		MOMASK_NO_DOWNLOAD=1 $(PY42) -m pytest -q -p tests.exit_bpy42 $$file || failed="$$failed $$file"; done; \
	if [ -n "$$failed" ]; then echo "failed on Blender $(BPY42):$$failed"; exit 1; fi

lint: $(STAMP)
	$(PY) -m ruff check .

# ruff, the whole suite on Blender 5.0, then the Blender tests again on 4.2 LTS. Nothing downloads anything.
test: $(STAMP) $(STAMP42)
	$(PY) -m ruff check .
	MOMASK_NO_DOWNLOAD=1 $(PY) -m pytest -q
	$(MAKE) --no-print-directory test-blender42

bench: $(STAMP)
	$(PY) -m bench.speed

# requests per second of the model server under 1, 4 and 8 clients, batched and not (README: a model server)
bench-serve: $(STAMP)
	$(PY) -m bench.serve

clean:
	rm -rf $(VENV) $(VENV42) .pytest_cache .ruff_cache dist build
