// Detail page title bar above the chart: back, ticker, last price, P&L.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: bar
    required property QtObject detail
    color: Theme.bg
    RowLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        spacing: Theme.gap * 1.5
        Btn { objectName: "backButton"; text: "\u2190 Back"; kind: "secondary"; onClicked: bar.detail.back() }
        Text { text: bar.detail.ticker; font.pixelSize: Theme.fontHuge * 0.85; font.bold: true; color: Theme.text }
        Text { text: bar.detail.lastPriceText; font.pixelSize: Theme.font; font.bold: true; color: Theme.text
               Layout.fillWidth: true; elide: Text.ElideRight }
        Text {
            objectName: "detailPnl"
            text: bar.detail.pnlText
            font.pixelSize: Theme.font; font.bold: true
            color: bar.detail.pnlSign > 0 ? Theme.good : bar.detail.pnlSign < 0 ? Theme.bad : Theme.text
        }
    }
}
