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

        Rectangle {
            visible: page.dash.message !== ""
            Layout.fillWidth: true
            implicitHeight: Math.max(Theme.touch * 0.8, msg.implicitHeight + Theme.gap)
            radius: Theme.radius
            color: page.dash.messageIsError ? "#fde7e6" : "#e3f1e8"
            border.color: page.dash.messageIsError ? Theme.bad : Theme.good
            border.width: 2
            Text {
                id: msg
                anchors.verticalCenter: parent.verticalCenter
                anchors.left: parent.left; anchors.right: parent.right
                anchors.margins: Theme.gap
                text: page.dash.message
                wrapMode: Text.WordWrap
                font.pixelSize: Theme.font; font.bold: true
                color: page.dash.messageIsError ? Theme.bad : Theme.good
            }
            TapHandler { onTapped: page.dash.dismissMessage() }
        }

        GridView {
            id: grid
            objectName: "cardGrid"
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            model: page.dash.cardModel
            property int columns: Math.max(1, Math.floor(width / (Theme.scale * 255)))
            cellWidth: Math.floor(width / columns)
            cellHeight: Theme.scale * 150
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
                    plugin: cell.model.plugin
                    status: cell.model.status
                    statusText: cell.model.statusText
                    error: cell.model.error
                    positionText: cell.model.positionText
                    lastPriceText: cell.model.lastPriceText
                    pnlText: cell.model.pnlText
                    pnlPctText: cell.model.pnlPctText
                    pnlSign: cell.model.pnlSign
                    spark: cell.model.spark
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
            Item { Layout.fillWidth: true }
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
            Btn { text: "Stop and sell"; kind: "danger"
                  onClicked: { page.confirmStopAll = false; page.dash.stopAll(true) } }
            Btn { text: "Cancel"; kind: "secondary"; onClicked: page.confirmStopAll = false }
        }
    }
}
