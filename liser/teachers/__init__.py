"""Teachers and the files their outputs are stored in."""
