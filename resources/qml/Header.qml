// The header: mode, account value, today's P&L, free money, New York time and market state
// (or HALTED), and the data-feed state in a slot of its own that large figures never push
// out. Portrait (480 px wide): the figures on the first row, market and feed on the second.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: bar
    required property QtObject header
    color: Theme.dark
    readonly property bool two: Theme.portrait

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

    GridLayout {
        anchors.fill: parent
        anchors.leftMargin: Theme.gap * 1.5
        anchors.rightMargin: Theme.gap * 1.5
        anchors.topMargin: bar.two ? Theme.gap / 2 : 0
        anchors.bottomMargin: bar.two ? Theme.gap / 2 : 0
        rows: bar.two ? 2 : 1
        columnSpacing: Theme.gap
        rowSpacing: 0

        Rectangle {
            objectName: "modeBadge"
            Layout.row: 0; Layout.column: 0
            Layout.alignment: Qt.AlignVCenter
            implicitWidth: modeColumn.implicitWidth
                           + Theme.gap * (bar.header.replayText !== "" ? 1 : 2)
            implicitHeight: modeColumn.implicitHeight + Theme.gap
            radius: Theme.radius / 2
            color: bar.header.replayText !== "" ? "#7e57c2"
                 : bar.header.mode === "live" ? "#d32f2f"
                 : bar.header.mode === "paper" ? "#1565c0" : "#f2b01e"
            Column {
                id: modeColumn
                anchors.centerIn: parent
                Text {
                    id: modeLabel
                    objectName: "modeLabel"
                    anchors.horizontalCenter: parent.horizontalCenter
                    text: bar.header.modeText
                    font.pixelSize: Theme.font; font.bold: true
                    color: bar.header.mode === "demo" && bar.header.replayText === ""
                           ? "#111111" : "white"
                }
                Text {  // a replay's date under REPLAY, so the badge stays narrow
                    objectName: "modeDate"
                    anchors.horizontalCenter: parent.horizontalCenter
                    visible: bar.header.replayText !== ""
                    text: bar.header.replayText
                    font.pixelSize: Math.round(Theme.fontSmall * 0.85); font.bold: true
                    color: "white"
                }
            }
        }
        Figure { objectName: "headerValue"; Layout.row: 0; Layout.column: 1
                 label: "Account value"; value: bar.header.valueText
                 maxWidth: Theme.scale * (bar.two ? 120 : 122) }
        Figure { objectName: "headerToday"; Layout.row: 0; Layout.column: 2
                 label: bar.header.todayLabel; value: bar.header.todayText
                 maxWidth: Theme.scale * (bar.two ? 130 : 132)
                 valueColor: bar.header.todaySign > 0 ? "#7ee2a0"
                           : bar.header.todaySign < 0 ? "#ff8a80" : "white" }
        Figure { objectName: "headerFree"; Layout.row: 0; Layout.column: 3
                 label: "Free"; value: bar.header.freeText
                 maxWidth: Theme.scale * (bar.two ? 110 : 100) }
        Item { Layout.row: 0; Layout.column: 4; Layout.fillWidth: true; visible: !bar.two }
        Figure {
            objectName: "headerMarket"
            Layout.row: bar.two ? 1 : 0
            Layout.column: bar.two ? 0 : 5
            Layout.columnSpan: bar.two ? 3 : 1
            label: bar.header.haltedText !== "" ? bar.header.nyText + " \u00b7 the broker says closed"
                                                : bar.header.nyText
            value: bar.header.marketText
            maxWidth: Theme.scale * (bar.two ? 300 : 196)
            valueColor: bar.header.haltedText !== "" ? "#ff8a80"
                      : bar.header.marketOpen ? "#7ee2a0" : "#ffd180"
        }
        // The data feed's own slot: fixed width, always visible.
        Row {
            objectName: "feedSlot"
            Layout.row: bar.two ? 1 : 0
            Layout.column: bar.two ? 3 : 6
            Layout.alignment: Qt.AlignVCenter
            Layout.preferredWidth: Theme.scale * 104
            Layout.minimumWidth: Theme.scale * 104
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
                width: Theme.scale * 104 - Theme.fontSmall - Theme.gap / 2
                wrapMode: Text.Wrap; maximumLineCount: 2
                fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.fontSmall * 0.7)
                elide: Text.ElideRight
            }
        }
    }
}
