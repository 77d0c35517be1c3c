"""`srgan eval`: benchmark tables and side-by-side reports under the standard protocol."""
