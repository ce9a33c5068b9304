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
        // Beside the dashboard (wide screens) there is nothing to go back to.
        Btn { objectName: "backButton"; text: "\u2190 Back"; kind: "secondary"; visible: !bar.detail.docked
              onClicked: bar.detail.back() }
        Text { text: bar.detail.ticker; font.pixelSize: Theme.fontHuge * 0.85; font.bold: true; color: Theme.text }
        // Numbers shrink to fit, never elided.
        Text { objectName: "detailPrice"; text: bar.detail.lastPriceText; font.pixelSize: Theme.font; font.bold: true; color: Theme.text
               Layout.fillWidth: true; Layout.minimumWidth: Theme.scale * 60
               fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.font * 0.6) }
        Text {
            objectName: "detailPnl"
            text: bar.detail.pnlText
            Layout.maximumWidth: bar.width * 0.42
            Layout.preferredWidth: implicitWidth
            fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.font * 0.55)
            font.pixelSize: Theme.font; font.bold: true
            color: bar.detail.pnlSign > 0 ? Theme.good : bar.detail.pnlSign < 0 ? Theme.bad : Theme.text
        }
    }
}
