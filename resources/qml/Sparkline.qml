// A small line of recent closes, coloured by its own direction (up: green, down: red), with
// the average cost as a dashed line when shares are held. Pure drawing.
import QtQuick
import AutoTrader

Canvas {
    id: c
    property var points: []
    property real refLevel: 0
    onPointsChanged: requestPaint()
    onRefLevelChanged: requestPaint()
    onWidthChanged: requestPaint()
    onHeightChanged: requestPaint()
    onPaint: {
        var ctx = getContext("2d")
        ctx.reset()
        var n = points ? points.length : 0
        if (n < 2) return
        var lo = points[0], hi = points[0]
        for (var i = 1; i < n; i++) { lo = Math.min(lo, points[i]); hi = Math.max(hi, points[i]) }
        if (refLevel > 0) { lo = Math.min(lo, refLevel); hi = Math.max(hi, refLevel) }
        var span = hi - lo || 1
        function yOf(v) { return height - 1 - (v - lo) / span * (height - 2) }
        if (refLevel > 0) {
            ctx.lineWidth = 1
            ctx.strokeStyle = Theme.muted
            ctx.setLineDash([4, 3])
            ctx.beginPath(); ctx.moveTo(0, yOf(refLevel)); ctx.lineTo(width, yOf(refLevel))
            ctx.stroke()
            ctx.setLineDash([])
        }
        ctx.lineWidth = Math.max(1.5, Theme.scale * 1.5)
        ctx.strokeStyle = points[n - 1] < points[0] ? Theme.bad : Theme.good
        ctx.beginPath()
        for (var j = 0; j < n; j++) {
            var x = j / (n - 1) * (width - 2) + 1
            if (j === 0) ctx.moveTo(x, yOf(points[j])); else ctx.lineTo(x, yOf(points[j]))
        }
        ctx.stroke()
    }
}
