// Dashboard: the grid of algorithm cards and the main actions.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: page
    required property QtObject dash
    color: Theme.bg
    property bool confirmStopAll: false

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        spacing: Theme.gap

        GridView {
            id: grid
            objectName: "cardGrid"
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            model: page.dash.cardModel
            // Cards of a fixed comfortable width: a wider screen shows more columns.
            property int columns: Math.max(1, Math.floor(width / (Theme.scale * 240)))
            cellWidth: Math.floor(width / columns)
            cellHeight: Theme.scale * 158
            boundsBehavior: Flickable.StopAtBounds
            // A visible scroll bar whenever the cards do not all fit.
            Rectangle {
                objectName: "scrollIndicator"
                visible: grid.contentHeight > grid.height + 1
                anchors.right: parent.right
                width: Math.max(4, Theme.gap * 0.6); radius: width / 2
                color: Theme.muted; opacity: 0.7
                y: grid.visibleArea.yPosition * grid.height
                height: Math.max(Theme.touch / 2, grid.visibleArea.heightRatio * grid.height)
            }
            delegate: Item {
                id: cell
                required property int index
                required property var model
                width: grid.cellWidth; height: grid.cellHeight
                Card {
                    anchors.fill: parent
                    anchors.margins: Theme.gap / 2
                    algoId: cell.model.algoId
                    ticker: cell.model.ticker
                    plugin: cell.model.pluginName
                    holdingText: cell.model.holdingText
                    status: cell.model.status
                    statusText: cell.model.statusText
                    error: cell.model.error
                    lastPriceText: cell.model.lastPriceText
                    pnlText: cell.model.pnlText
                    pnlPctText: cell.model.pnlPctText
                    pnlSign: cell.model.pnlSign
                    spark: cell.model.spark
                    avgCost: cell.model.avgCost
                    onClicked: page.dash.open(cell.model.algoId)
                }
            }
            Text {
                anchors.centerIn: parent
                visible: grid.count === 0
                width: parent.width * 0.8
                horizontalAlignment: Text.AlignHCenter
                wrapMode: Text.WordWrap
                text: "No algorithms yet. Tap \u201cNew algorithm\u201d to start one."
                font.pixelSize: Theme.fontLarge
                color: Theme.muted
            }
        }

        RowLayout {
            Layout.fillWidth: true
            spacing: Theme.gap
            visible: !page.confirmStopAll
            Btn { objectName: "newButton"; text: "+ New algorithm"; onClicked: page.dash.newAlgorithm() }
            // The banner's reserved slot: a message for a few seconds, else the count and
            // a hint when the list scrolls. Nothing above moves when it changes.
            Text {
                objectName: "dashMessage"
                Layout.fillWidth: true
                Layout.preferredHeight: Theme.touch
                verticalAlignment: Text.AlignVCenter
                text: page.dash.message !== "" ? page.dash.message
                      : page.dash.countText
                        + (grid.contentHeight > grid.height + 1 && !grid.atYEnd ? "  \u2193 more below" : "")
                wrapMode: Text.WordWrap
                maximumLineCount: 2
                elide: Text.ElideRight
                font.pixelSize: Theme.fontSmall
                font.bold: page.dash.message !== ""
                color: page.dash.message === "" ? Theme.muted
                       : page.dash.messageIsError ? Theme.bad : Theme.good
                TapHandler { onTapped: page.dash.dismissMessage() }
            }
            Btn { objectName: "stopAllButton"; text: "Stop all"; kind: "danger"; onClicked: page.confirmStopAll = true }
            Btn { text: "Settings"; kind: "secondary"; onClicked: page.dash.settings() }
            Btn { text: "Lock"; kind: "secondary"; onClicked: page.dash.lock() }
        }
        RowLayout {
            Layout.fillWidth: true
            spacing: Theme.gap
            visible: page.confirmStopAll
            Text {
                text: "Stop every algorithm?"
                font.pixelSize: Theme.font; font.bold: true; color: Theme.bad
                Layout.fillWidth: true
                wrapMode: Text.WordWrap
            }
            Btn { text: "Stop, keep shares"; kind: "danger"
                  onClicked: { page.confirmStopAll = false; page.dash.stopAll(false) } }
            Btn { text: "Cancel"; kind: "secondary"; onClicked: page.confirmStopAll = false }
            // Selling asks for the PIN (and says when it would sell at the next open).
            Btn { objectName: "stopAllSellButton"; text: "Stop and sell\u2026"; kind: "sell"
                  onClicked: { page.confirmStopAll = false; page.dash.stopAll(true) } }
        }
    }
}
