"""The local control channel: ``autotrader algo ...`` talking to the running app.

- ``service``  the requests (list, show, add, stop, resume, delete, stop-all) applied to an
               engine with the engine's own checks; used by the server and, when the app is not
               running, directly by the command line;
- ``server``   a Unix-domain socket in the data folder only its owner can open (folder 0700,
               socket 0600, peer uid checked), one JSON object per line each way;
- ``client``   the command line's side.

Qt-free: the window and the headless runner both start the server with ``start_control``.
"""
