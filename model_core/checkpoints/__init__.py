"""The official release's files: the folder layout, `opt.txt` options and weight files, read as
untrusted input (`weights_only=True`, every key and shape checked)."""
