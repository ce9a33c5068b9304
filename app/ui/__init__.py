"""The Qt side: windows, QML view models, charts, QThread workers."""
