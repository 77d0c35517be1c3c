"""Images in and out: file I/O, MATLAB-compatible resizing, colour spaces, training datasets."""
