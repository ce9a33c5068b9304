// Performance title bar above the chart: back, the title and what the chart shows, ranges.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: bar
    required property QtObject perf
    color: Theme.bg
    RowLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        spacing: Theme.gap
        Btn { objectName: "perfBackButton"; text: "\u2190 Back"; kind: "secondary"
              onClicked: bar.perf.back() }
        // The title gives way to the buttons on a narrow bar (the page says what it is).
        Text { text: bar.width >= Theme.scale * 560 ? "Performance" : ""
               font.pixelSize: Theme.font * 1.1; font.bold: true
               color: Theme.text; Layout.fillWidth: true
               fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.fontSmall * 0.8)
               elide: Text.ElideRight }
        Btn { objectName: "perfReferenceButton"; text: bar.perf.referenceText; kind: "key"
              fontSize: Theme.fontSmall
              implicitWidth: Math.max(Theme.touch, Theme.scale * 76)
              onClicked: bar.perf.nextReference() }
        Repeater {
            model: bar.perf.ranges
            Btn {
                required property string modelData
                objectName: "perfRange" + modelData
                text: modelData
                kind: bar.perf.range === modelData ? "primary" : "key"
                implicitWidth: Theme.touch
                onClicked: bar.perf.setRange(modelData)
            }
        }
    }
}
