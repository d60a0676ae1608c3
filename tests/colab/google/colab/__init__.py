"""A stand-in for Colab's ``google.colab`` module: its presence is what the notebooks' setup cells test."""
