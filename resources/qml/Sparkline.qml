// A small line of recent closes. Pure drawing: scales the points to the box.
import QtQuick
import AutoTrader

Canvas {
    id: c
    property var points: []
    property color lineColor: Theme.accent
    onPointsChanged: requestPaint()
    onWidthChanged: requestPaint()
    onHeightChanged: requestPaint()
    onPaint: {
        var ctx = getContext("2d")
        ctx.reset()
        var n = points ? points.length : 0
        if (n < 2) return
        var lo = points[0], hi = points[0]
        for (var i = 1; i < n; i++) { lo = Math.min(lo, points[i]); hi = Math.max(hi, points[i]) }
        var span = hi - lo || 1
        ctx.lineWidth = Math.max(1.5, Theme.scale * 1.5)
        ctx.strokeStyle = lineColor
        ctx.beginPath()
        for (var j = 0; j < n; j++) {
            var x = j / (n - 1) * (width - 2) + 1
            var y = height - 1 - (points[j] - lo) / span * (height - 2)
            if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y)
        }
        ctx.stroke()
    }
}
