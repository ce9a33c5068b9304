"""Operations: ``autotrader doctor``, ``backup`` and ``restore``, and read-only DB checks."""
