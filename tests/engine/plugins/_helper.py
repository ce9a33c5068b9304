"""A helper module (underscore): never listed as a plugin."""
VALUE = 1
