#!/bin/sh
# The 800x480 walk of issue 12, tapped as a user would on a fresh demo data folder: choose the
# PIN, open AAPL's Detail, 5D, candles, 1D, press-and-hold crosshair, a double tap on Stop
# (lands on Cancel), Stop's confirm, Cancel, New algorithm by taps, Settings and its guards,
# Performance and its reference button, Lock. Screenshots: screenshots/xvfb-800-*.png.
# Coordinates were read off the screenshots of this layout; a layout change moves them.
set -eu
D="$(dirname "$0")/xvfb_drive.sh"
rm -rf "${DRIVE_DATA:-/tmp/xvfb-drive}"
"$D" start 800x480
sleep 14
key() {
    case $1 in
    1) "$D" tap 565 163 ;; 2) "$D" tap 651 163 ;; 3) "$D" tap 737 163 ;;
    4) "$D" tap 565 235 ;; 5) "$D" tap 651 235 ;; 6) "$D" tap 737 235 ;;
    7) "$D" tap 565 307 ;; 8) "$D" tap 651 307 ;; 9) "$D" tap 737 307 ;;
    0) "$D" tap 651 379 ;; ok) "$D" tap 737 379 ;;
    esac
    sleep 0.25
}
pin() { for d in 2 4 6 8 1 3; do key $d; done; key ok; }
"$D" shot 800-01-start
pin; sleep 1; "$D" shot 800-03-pin-confirm
pin; sleep 1.5; "$D" shot 800-04-dashboard
"$D" tap 100 190; sleep 2; "$D" shot 800-05-detail
"$D" tap 700 179; sleep 1.5; "$D" shot 800-06-detail-5d
"$D" tap 760 179; sleep 1.5; "$D" shot 800-07-detail-5d-candles
"$D" tap 648 179; sleep 1.5; "$D" shot 800-08-detail-1d-candles
"$D" hold 300 280 1200 800-09-crosshair-candles; sleep 0.5
"$D" dtap 587 390 150; sleep 0.8; "$D" shot 800-12-stop-double-tap
"$D" tap 587 390; sleep 0.6; "$D" shot 800-13-stop-confirm
"$D" tap 587 390; sleep 0.5
"$D" tap 65 86; sleep 1; "$D" tap 60 446; sleep 1.5; "$D" shot 800-15-new-1
"$D" tap 300 160; sleep 1.5; "$D" shot 800-16-new-2
for p in "44 383" "518 444" "44 444" "439 444"; do "$D" tap $p; sleep 0.2; done  # AMZN
"$D" tap 739 86; sleep 2; "$D" shot 800-18-new-3
"$D" tap 60 354; sleep 0.5; "$D" tap 739 86; sleep 2.5; "$D" shot 800-20-new-4-confirm
"$D" tap 558 446; sleep 3; "$D" shot 800-21-created
"$D" tap 623 446; sleep 2; "$D" shot 800-22-settings
"$D" drag 240 420 240 140; sleep 1; "$D" shot 800-23-settings-guards
"$D" drag 240 140 240 470; sleep 0.3; "$D" drag 240 140 240 470; sleep 1
"$D" tap 60 86; sleep 1; "$D" tap 481 446; sleep 3; "$D" shot 800-24-performance
"$D" tap 214 86; sleep 2; "$D" shot 800-25-performance-vs-ref
"$D" tap 60 86; sleep 1; "$D" tap 740 446; sleep 1.5; "$D" shot 800-27-locked
"$D" stop
