// The header: mode, account value, free money, market state + countdown, stream state.
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
        spacing: 0
        Text { text: label; color: "#c9d3e0"; font.pixelSize: Theme.fontSmall * 0.85 }
        Text { text: value; color: valueColor; font.pixelSize: Theme.font; font.bold: true }
    }

    RowLayout {
        anchors.fill: parent
        anchors.leftMargin: Theme.gap * 1.5
        anchors.rightMargin: Theme.gap * 1.5
        spacing: Theme.gap * 2

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
        Figure { label: "Account value"; value: bar.header.valueText }
        Figure { label: "Free"; value: bar.header.freeText }
        Item { Layout.fillWidth: true }
        Figure {
            label: "NYSE"
            value: bar.header.marketText
            valueColor: bar.header.marketOpen ? "#7ee2a0" : "#ffd180"
        }
        Row {
            Layout.alignment: Qt.AlignVCenter
            spacing: Theme.gap / 2
            Rectangle {
                anchors.verticalCenter: parent.verticalCenter
                width: Theme.fontSmall; height: width; radius: width / 2
                color: ["connected", "simulated"].indexOf(bar.header.streamState) >= 0 ? "#4caf50"
                     : bar.header.streamState === "error" || bar.header.streamState === "stopped"
                       ? "#ff5252" : "#ffb300"
            }
            Text {
                text: bar.header.streamText
                color: "white"; font.pixelSize: Theme.fontSmall
                width: Math.min(implicitWidth, Theme.scale * 120)
                elide: Text.ElideRight
            }
        }
    }
}
