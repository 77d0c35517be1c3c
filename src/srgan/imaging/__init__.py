"""Images as pixels: the one reader and writer, the table of file formats, listing image folders,
8-bit quantisation, MATLAB-compatible bicubic resizing and BT.601 colour conversion."""
