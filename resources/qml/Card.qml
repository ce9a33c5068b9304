// One algorithm card. Every text comes formatted from the card model's roles.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: card
    required property int algoId
    required property string ticker
    required property string plugin
    required property string status
    required property string statusText
    required property string error
    required property string positionText
    required property string lastPriceText
    required property string pnlText
    required property string pnlPctText
    required property int pnlSign
    required property var spark
    signal clicked()

    radius: Theme.radius
    color: tap.pressed ? Theme.surfaceAlt : Theme.surface
    border.width: Math.max(2, Theme.scale * 2)
    border.color: status === "error" || error !== "" ? Theme.bad : Theme.border

    TapHandler { id: tap; onTapped: card.clicked() }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap * 1.25
        spacing: Theme.gap * 0.25

        RowLayout {
            Layout.fillWidth: true
            Text {
                text: card.ticker
                font.pixelSize: Theme.fontLarge; font.bold: true
                color: Theme.text
            }
            Text {
                text: card.plugin
                font.pixelSize: Theme.fontSmall
                color: Theme.muted
                elide: Text.ElideRight
                Layout.fillWidth: true
            }
            Rectangle {
                implicitWidth: st.implicitWidth + Theme.gap * 1.5
                implicitHeight: st.implicitHeight + Theme.gap * 0.5
                radius: height / 2
                color: card.status === "running" ? Theme.good
                     : card.status === "error" ? Theme.bad : Theme.muted
                Text {
                    id: st
                    anchors.centerIn: parent
                    text: card.statusText
                    font.pixelSize: Theme.fontSmall * 0.85; font.bold: true
                    color: "white"
                }
            }
        }
        RowLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            ColumnLayout {
                spacing: 0
                Layout.fillWidth: true
                Text {
                    text: card.lastPriceText
                    font.pixelSize: Theme.font; font.bold: true
                    color: Theme.text
                }
                Text {
                    text: card.positionText
                    font.pixelSize: Theme.fontSmall
                    color: Theme.muted
                    elide: Text.ElideRight
                    Layout.fillWidth: true
                }
            }
            Sparkline {
                points: card.spark
                lineColor: card.pnlSign < 0 ? Theme.bad : Theme.accent
                Layout.preferredWidth: card.width * 0.38
                Layout.fillHeight: true
                Layout.minimumHeight: Theme.font
            }
        }
        Text {
            Layout.fillWidth: true
            text: card.pnlText + "   " + card.pnlPctText
            font.pixelSize: Theme.font
            font.bold: true
            elide: Text.ElideRight
            color: card.pnlSign > 0 ? Theme.good : card.pnlSign < 0 ? Theme.bad : Theme.text
        }
        Text {
            objectName: "cardError"
            visible: card.error !== ""
            Layout.fillWidth: true
            text: "\u26a0 " + card.error
            font.pixelSize: Theme.fontSmall
            font.bold: true
            elide: Text.ElideRight
            color: Theme.bad
        }
    }
}
