"""Brokers: the ``Broker`` protocol and its Alpaca and simulated implementations."""
