"""What the forkserver of a backtest pool imports once, before it forks any run: the replay,
the sweep's job and the NYSE calendar, built (``db.calendar.nyse`` caches it).

Each run is still a fresh child process (a plugin's state, crash or hang stays in its run);
only the start-up is shared. Without this, every run started from a forkserver (a Dask worker,
or a process already running threads) imported pandas and exchange_calendars and computed the
calendar's holidays again: about 2 s a run on an idle machine, 12 s on a loaded one, against
0.4 s for the run itself.
"""

from __future__ import annotations

import app.backtest.replay  # noqa: F401
import app.backtest.run  # noqa: F401
import app.backtest.sweep  # noqa: F401
from db.calendar import nyse

nyse()
