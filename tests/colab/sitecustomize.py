"""Import the ``google.colab`` stand-in at start-up, as Colab's kernels have it imported already.

On the PYTHONPATH of scripts/colab_rehearsal.sh only; never in the project's own environment.
"""
import google.colab  # noqa: F401
