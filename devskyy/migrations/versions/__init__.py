"""One module per schema revision, ``rNNNN_<slug>.py``; revision ids are ``NNNN``."""
