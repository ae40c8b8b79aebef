"""The one place each kind of untrusted input is checked, for every door into the model core.

The command lines, the server, batch jobs and the Blender add-on call these (NumPy only, no torch),
so a bad value gets the same clear `ModelError` whichever way it came in:

- `numbers`: finite numbers in a range, whole numbers, seeds;
- `timing`: frame rates, frame times, frame counts and durations, with the limits they may ask for;
- `paths`: files we write (refused unless a regular file or new; written to a temporary file and
  renamed, so a failure leaves the old file);
- `arrays`: .npy files (size checked against the header before reading) and motion arrays (dtype,
  shape, finite, plausible magnitudes, a skeleton with a size);
- `statistics`: the feature mean and std that turn the model's output into motion;
- `text`: text files (prompt lists, sequences, constraints files) read as UTF-8.
"""
