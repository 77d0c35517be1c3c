"""Exports that are checked before they are written (int8 quantisation with its PSNR gate): they run
the inference and evaluation layers below, so they sit above them."""
