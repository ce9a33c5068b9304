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
    property string pillText: statusText
    property string sinceText: ""
    property bool selected: false
    required property string error
    required property string holdingText
    required property string lastPriceText
    required property string pnlText
    required property string pnlPctText
    required property int pnlSign
    required property var spark
    property real avgCost: 0
    signal clicked()

    // running / failing / paused / stopped: each its own colour and word.
    readonly property color statusColor: status === "running" ? Theme.good
        : status === "failing" ? Theme.bad : status === "paused" ? Theme.warn : Theme.muted

    radius: Theme.radius
    color: tap.pressed ? Theme.surfaceAlt : Theme.surface
    border.width: Math.max(2, Theme.scale * 2) * (status === "failing" || selected ? 1.5 : 1)
    border.color: selected ? Theme.accent : status === "failing" ? Theme.bad
                : status === "paused" ? Theme.warn : Theme.border

    TapHandler { id: tap; onTapped: card.clicked() }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        spacing: Theme.gap * 0.25

        RowLayout {
            Layout.fillWidth: true
            spacing: Theme.gap / 2
            Text {
                id: tickerText
                text: card.ticker
                font.pixelSize: Theme.fontLarge; font.bold: true
                color: Theme.text
            }
            Item { Layout.fillWidth: true }
            Rectangle {
                objectName: "statusPill"
                implicitWidth: st.implicitWidth + Theme.gap * 1.5
                implicitHeight: st.implicitHeight + Theme.gap * 0.5
                radius: height / 2
                color: card.statusColor
                Text {
                    id: st
                    anchors.centerIn: parent
                    text: card.pillText
                    font.pixelSize: Theme.fontSmall * 0.85; font.bold: true
                    color: "white"
                }
            }
        }
        // The plugin's name on a line of its own, the card's full width: no status pill
        // next to it to cut it; a very long name shrinks, then (past ~45 letters) elides.
        Text {
            objectName: "cardPlugin"
            text: card.plugin
            font.pixelSize: Theme.fontSmall
            color: Theme.muted
            Layout.fillWidth: true
            Layout.topMargin: -Theme.gap * 0.4
            fontSizeMode: Text.HorizontalFit
            minimumPixelSize: Math.round(Theme.fontSmall * 0.7)
            elide: Text.ElideRight
        }
        RowLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            Text {
                text: card.lastPriceText
                font.pixelSize: Theme.font; font.bold: true
                color: Theme.text
                Layout.preferredWidth: card.width * 0.5
                Layout.alignment: Qt.AlignVCenter
                fontSizeMode: Text.HorizontalFit
                minimumPixelSize: Math.round(Theme.font * 0.6)
            }
            Sparkline {
                points: card.spark
                refLevel: card.avgCost
                Layout.fillWidth: true
                Layout.fillHeight: true
                Layout.minimumHeight: Theme.font
            }
        }
        // What it holds and what that is worth against its capital, the card's full width:
        // the font shrinks for a large position, the figures stay whole.
        Text {
            objectName: "cardHolding"
            text: card.holdingText
            Layout.fillWidth: true
            font.pixelSize: Theme.fontSmall
            fontSizeMode: Text.HorizontalFit
            minimumPixelSize: Math.round(Theme.fontSmall * 0.55)
            color: Theme.muted
        }
        // P&L is never elided: the font shrinks to fit the number.
        Text {
            objectName: "cardPnl"
            Layout.fillWidth: true
            Layout.preferredHeight: Theme.font * 1.3
            verticalAlignment: Text.AlignVCenter
            text: card.pnlText + "   " + card.pnlPctText
            font.pixelSize: Theme.font
            font.bold: true
            fontSizeMode: Text.HorizontalFit
            minimumPixelSize: Math.round(Theme.font * 0.5)
            color: card.pnlSign > 0 ? Theme.good : card.pnlSign < 0 ? Theme.bad : Theme.text
        }
        // The reason (failing, paused, a guard's stop): two lines here, the whole text in
        // Detail ("more" opens it).
        Item {
            visible: card.error !== ""
            Layout.fillWidth: true
            Layout.preferredHeight: reason.height
            Text {
                id: reason
                objectName: "cardError"
                property bool prose: true  // two lines of a sentence; "more" shows the rest
                width: parent.width
                text: card.sinceText !== "" ? "Since " + card.sinceText + " \u00b7 " + card.error
                                            : card.error
                font.pixelSize: Theme.fontSmall * 0.9
                font.bold: card.status === "failing"
                wrapMode: Text.Wrap
                maximumLineCount: 2
                elide: Text.ElideRight
                // The second line leaves room for "more", so it ends in "…", not under the link.
                onLineLaidOut: function(line) {
                    if (line.number === 1)
                        line.width = width - moreLink.implicitWidth
                }
                color: card.status === "failing" ? Theme.bad
                     : card.status === "paused" ? Theme.warn : Theme.muted
            }
            Text {
                id: moreLink
                objectName: "cardMore"
                visible: reason.truncated
                anchors.right: parent.right
                anchors.bottom: parent.bottom
                text: " more \u203a"
                font.pixelSize: Theme.fontSmall * 0.9; font.bold: true; font.underline: true
                color: Theme.accent
                Rectangle { anchors.fill: parent; z: -1; color: card.color }
            }
        }
    }
}
