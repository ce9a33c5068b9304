"""Hostile: starts a daemon the classic way (fork, setsid, fork again, the middle process
exits), so the spinning grandchild is in a session and process group of its own and its
parent is gone; writes its pid where the test reads it. Then hangs (``hang``) or returns."""

import os
import time


class Algorithm:
    pid_file = ""
    hang = True

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        mid = os.fork()
        if mid == 0:
            os.setsid()
            if os.fork() == 0:
                with open(self.pid_file + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(self.pid_file + ".tmp", self.pid_file)
                while True:
                    pass
            os._exit(0)
        os.waitpid(mid, 0)
        while self.hang:
            time.sleep(1)
        return ("hold", 0)
