"""A stand-in for ``google.colab.files``: ``download`` checks the file as Colab does, then does nothing.

Colab's own sends the file to the learner's browser and raises FileNotFoundError for a missing one.
"""

import os


def download(filename):
    if not os.path.exists(filename):
        raise FileNotFoundError(f"Cannot find file: {filename}")
