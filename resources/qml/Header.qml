// The header: mode, account value, free money, market state + countdown (or HALTED), and the
// data-feed state in a slot of its own that large figures never push out.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: bar
    required property QtObject header
    color: Theme.dark

    component Figure: Column {
        property string label
        property string value
        property color valueColor: "white"
        property real maxWidth: Theme.scale * 150
        spacing: 0
        Text { text: label; color: "#c9d3e0"; font.pixelSize: Theme.fontSmall * 0.85 }
        // Numbers shrink to fit their slot, never elided.
        Text { text: value; color: valueColor; font.pixelSize: Theme.font; font.bold: true
               width: Math.min(implicitWidth, maxWidth); height: Theme.font * 1.25
               verticalAlignment: Text.AlignVCenter
               fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.font * 0.5) }
    }

    RowLayout {
        anchors.fill: parent
        anchors.leftMargin: Theme.gap * 1.5
        anchors.rightMargin: Theme.gap * 1.5
        spacing: Theme.gap * 1.5

        Rectangle {
            objectName: "modeBadge"
            Layout.alignment: Qt.AlignVCenter
            implicitWidth: modeLabel.implicitWidth + Theme.gap * 2
            implicitHeight: modeLabel.implicitHeight + Theme.gap
            radius: Theme.radius / 2
            color: bar.header.mode === "live" ? "#d32f2f"
                 : bar.header.mode === "paper" ? "#1565c0" : "#f2b01e"
            Text {
                id: modeLabel
                anchors.centerIn: parent
                text: bar.header.modeText
                font.pixelSize: Theme.font; font.bold: true
                color: bar.header.mode === "demo" ? "#111111" : "white"
            }
        }
        Figure { objectName: "headerValue"; label: "Account value"; value: bar.header.valueText }
        Figure { objectName: "headerFree"; label: "Free"; value: bar.header.freeText }
        Item { Layout.fillWidth: true }
        Figure {
            objectName: "headerMarket"
            label: bar.header.haltedText !== "" ? "NYSE \u00b7 the broker says closed" : "NYSE"
            value: bar.header.marketText
            maxWidth: Theme.scale * 230
            valueColor: bar.header.haltedText !== "" ? "#ff8a80"
                      : bar.header.marketOpen ? "#7ee2a0" : "#ffd180"
        }
        // The data feed's own slot: fixed width, always visible.
        Row {
            objectName: "feedSlot"
            Layout.alignment: Qt.AlignVCenter
            Layout.preferredWidth: Theme.scale * 118
            Layout.minimumWidth: Theme.scale * 118
            spacing: Theme.gap / 2
            Rectangle {
                anchors.verticalCenter: parent.verticalCenter
                width: Theme.fontSmall; height: width; radius: width / 2
                color: ["connected", "simulated"].indexOf(bar.header.streamState) >= 0 ? "#4caf50"
                     : bar.header.streamState === "error" || bar.header.streamState === "stopped"
                       ? "#ff5252" : "#ffb300"
            }
            Text {
                objectName: "feedText"
                anchors.verticalCenter: parent.verticalCenter
                text: bar.header.streamText
                color: "white"; font.pixelSize: Theme.fontSmall
                width: Theme.scale * 118 - Theme.fontSmall - Theme.gap / 2
                wrapMode: Text.Wrap; maximumLineCount: 2
                fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.fontSmall * 0.7)
                elide: Text.ElideRight
            }
        }
    }
}
