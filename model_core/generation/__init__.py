"""From text to motion: the loaded networks' single passes (`model`), the sampling loops
(`sampling`), window-by-window motions and range edits (`timeline`), and `MoMask` (`pipeline`)."""
