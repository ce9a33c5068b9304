#!/bin/sh
# Drive the real window under Xvfb as a user would: real X pointer events from xdotool.
#   tools/xvfb_drive.sh start WxH      an X server :77 of that size and the demo app on it
#   tools/xvfb_drive.sh tap X Y        press and release at (X, Y)
#   tools/xvfb_drive.sh dtap X Y MS    two taps MS milliseconds apart
#   tools/xvfb_drive.sh hold X Y MS    press, hold MS milliseconds, screenshot NAME if given
#   tools/xvfb_drive.sh shot NAME      the whole screen into screenshots/xvfb-NAME.png
#   tools/xvfb_drive.sh stop           end the app and the X server this script started
# The app runs in demo mode on a fresh data folder (DRIVE_DATA, default /tmp/xvfb-drive).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DISP=${DRIVE_DISPLAY:-:77}
RUN=${DRIVE_RUN:-/tmp/xvfb-drive-run}
DATA=${DRIVE_DATA:-/tmp/xvfb-drive}
export DISPLAY="$DISP"
mkdir -p "$RUN"
case "$1" in
start)
    Xvfb "$DISP" -screen 0 "${2}x24" -nolisten tcp >"$RUN/xvfb.log" 2>&1 &
    echo $! >"$RUN/xvfb.pid"
    sleep 1
    mkdir -p "$DATA"
    (cd "$ROOT" && AUTOTRADER_DATA_DIR="$DATA" QT_QPA_PLATFORM=xcb \
        exec .venv/bin/python main.py run ${DRIVE_ARGS:-}) >"$RUN/app.log" 2>&1 &
    echo $! >"$RUN/app.pid"
    ;;
tap)
    xdotool mousemove "$2" "$3" mousedown 1 sleep 0.08 mouseup 1
    ;;
dtap)
    xdotool mousemove "$2" "$3" click 1 sleep "$(echo "$4" | awk '{print $1/1000}')" click 1
    ;;
hold)
    xdotool mousemove "$2" "$3" mousedown 1 sleep "$(echo "$4" | awk '{print $1/1000}')"
    if [ -n "${5:-}" ]; then "$0" shot "$5"; fi
    xdotool mouseup 1
    ;;
drag)  # drag X0 Y0 X1 Y1: press, move in steps, release
    xdotool mousemove "$2" "$3" mousedown 1
    i=1
    while [ $i -le 10 ]; do
        xdotool mousemove $(( $2 + ($4 - $2) * i / 10 )) $(( $3 + ($5 - $3) * i / 10 )) sleep 0.03
        i=$((i + 1))
    done
    xdotool mouseup 1
    ;;
shot)
    mkdir -p "$ROOT/screenshots"
    xwd -root -display "$DISP" -silent | convert xwd:- "$ROOT/screenshots/xvfb-$2.png"
    echo "$ROOT/screenshots/xvfb-$2.png"
    ;;
stop)
    for f in app xvfb; do
        [ -f "$RUN/$f.pid" ] && kill "$(cat "$RUN/$f.pid")" 2>/dev/null || true
        rm -f "$RUN/$f.pid"
    done
    ;;
esac
