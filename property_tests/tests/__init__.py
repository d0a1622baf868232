"""The pytest suite: each property beside its negative control."""
