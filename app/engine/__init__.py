"""The Qt-free trading core."""
