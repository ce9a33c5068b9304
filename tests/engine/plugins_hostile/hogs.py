"""Hostile: lifts its memory limit if it can, then asks for 10 GB in run()."""

import resource


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        try:
            resource.setrlimit(resource.RLIMIT_DATA,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            pass
        block = bytearray(10 * 1024**3)
        return ("hold", len(block) * 0)
