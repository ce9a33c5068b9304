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
            cellHeight: Theme.scale * 172
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
                    pillText: cell.model.pillText
                    sinceText: cell.model.sinceText
                    selected: page.dash.selectedId === cell.model.algoId
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

        // The action row. Narrow (portrait, or beside Detail on a wide screen): the message
        // on its own line, then the buttons on two rows, each at least 48 px.
        GridLayout {
            id: actions
            Layout.fillWidth: true
            visible: !page.confirmStopAll
            readonly property bool tall: page.width < Theme.scale * 700
            // Narrow: three equal columns ("+ New" takes two, then Stop all; then
            // Performance, Settings, Lock); wide: one row, the message in the middle.
            columns: tall ? 3 : 6
            columnSpacing: Theme.gap
            rowSpacing: Theme.gap / 2
            // From the page's width (not the grid's own, which its children size).
            readonly property real unit: Math.floor((page.width - Theme.gap * 2 - columnSpacing * 2) / 3)
            function span(n) { return tall ? unit * n + columnSpacing * (n - 1) : -1 }
            Btn { objectName: "newButton"
                  text: page.width < 1000 ? "+ New" : "+ New algorithm"
                  Layout.row: actions.tall ? 1 : 0; Layout.column: 0
                  Layout.columnSpan: actions.tall ? 2 : 1
                  Layout.preferredWidth: actions.span(2)
                  Layout.maximumWidth: actions.tall ? actions.span(2) : -1
                  onClicked: page.dash.newAlgorithm() }
            // The banner's reserved slot: a message for a few seconds, else the count and
            // a hint when the list scrolls. Nothing above moves when it changes.
            Text {
                objectName: "dashMessage"
                Layout.row: 0; Layout.column: actions.tall ? 0 : 1
                Layout.columnSpan: actions.tall ? 3 : 1
                Layout.fillWidth: true
                Layout.preferredWidth: actions.tall ? actions.span(3) : 10
                Layout.maximumWidth: actions.tall ? actions.span(3) : -1
                Layout.preferredHeight: actions.tall ? Theme.fontSmall * 2.8 : Theme.touch
                verticalAlignment: Text.AlignVCenter
                text: page.dash.message !== "" ? page.dash.message
                      : page.dash.countText
                        + (grid.contentHeight > grid.height + 1 && !grid.atYEnd ? "  \u2193 more below" : "")
                wrapMode: Text.WordWrap
                maximumLineCount: 3
                elide: Text.ElideRight
                font.pixelSize: Theme.fontSmall
                fontSizeMode: Text.Fit
                minimumPixelSize: Math.round(Theme.fontSmall * 0.75)
                font.bold: page.dash.message !== ""
                color: page.dash.message === "" ? Theme.muted
                       : page.dash.messageIsError ? Theme.bad : Theme.good
                TapHandler { onTapped: page.dash.dismissMessage() }
            }
            Btn { objectName: "stopAllButton"; text: "Stop all"; kind: "danger"
                  Layout.row: actions.tall ? 1 : 0; Layout.column: actions.tall ? 2 : 2
                  Layout.preferredWidth: actions.span(1)
                  Layout.maximumWidth: actions.tall ? actions.span(1) : -1
                  onClicked: page.confirmStopAll = true }
            Btn { objectName: "performanceButton"; text: "Performance"; kind: "secondary"
                  Layout.row: actions.tall ? 2 : 0; Layout.column: actions.tall ? 0 : 3
                  Layout.preferredWidth: actions.span(1)
                  Layout.maximumWidth: actions.tall ? actions.span(1) : -1
                  onClicked: page.dash.performance() }
            Btn { objectName: "settingsButton"; text: "Settings"; kind: "secondary"
                  Layout.row: actions.tall ? 2 : 0; Layout.column: actions.tall ? 1 : 4
                  Layout.preferredWidth: actions.span(1)
                  Layout.maximumWidth: actions.tall ? actions.span(1) : -1
                  onClicked: page.dash.settings() }
            Btn { objectName: "lockButton"; text: "Lock"; kind: "secondary"
                  Layout.row: actions.tall ? 2 : 0; Layout.column: actions.tall ? 2 : 5
                  Layout.preferredWidth: actions.span(1)
                  Layout.maximumWidth: actions.tall ? actions.span(1) : -1
                  onClicked: page.dash.lock() }
        }
        GridLayout {
            Layout.fillWidth: true
            visible: page.confirmStopAll
            columns: page.width < Theme.scale * 700 ? 3 : 4
            columnSpacing: Theme.gap
            rowSpacing: Theme.gap / 2
            Text {
                text: "Stop every algorithm?"
                font.pixelSize: Theme.font; font.bold: true; color: Theme.bad
                Layout.fillWidth: true
                Layout.columnSpan: page.width < Theme.scale * 700 ? 3 : 1
                wrapMode: Text.WordWrap
            }
            Btn { text: "Stop, keep shares"; kind: "danger"
                  fontSize: page.width < Theme.scale * 700 ? Theme.fontSmall : Theme.font
                  Layout.fillWidth: page.width < Theme.scale * 700
                  onClicked: { page.confirmStopAll = false; page.dash.stopAll(false) } }
            Btn { text: "Cancel"; kind: "secondary"
                  fontSize: page.width < Theme.scale * 700 ? Theme.fontSmall : Theme.font
                  Layout.fillWidth: page.width < Theme.scale * 700
                  onClicked: page.confirmStopAll = false }
            // Selling asks for the PIN (and says when it would sell at the next open).
            Btn { objectName: "stopAllSellButton"; text: "Stop and sell\u2026"; kind: "sell"
                  fontSize: page.width < Theme.scale * 700 ? Theme.fontSmall : Theme.font
                  Layout.fillWidth: page.width < Theme.scale * 700
                  onClicked: { page.confirmStopAll = false; page.dash.stopAll(true) } }
        }
    }
}
