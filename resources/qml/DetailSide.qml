// Detail side panel: status, figures, chart controls, transactions, stop/resume/delete.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: side
    required property QtObject detail
    color: Theme.surface
    property bool askStop: false
    // Another algorithm (or the same one reopened): no confirmation left over.
    property int shownId: side.detail.algoId
    onShownIdChanged: askStop = false
    Connections { target: side.detail; function onOpened() { side.askStop = false } }

    Rectangle { width: 2; height: parent.height; color: Theme.border }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        anchors.leftMargin: Theme.gap + 2
        spacing: Theme.gap * 0.75

        RowLayout {
            Layout.fillWidth: true
            Rectangle {
                objectName: "detailStatus"
                implicitWidth: st.implicitWidth + Theme.gap * 1.5
                implicitHeight: st.implicitHeight + Theme.gap * 0.5
                Layout.maximumWidth: side.width * 0.6
                radius: height / 2
                color: side.detail.status === "running" ? Theme.good
                     : side.detail.status === "failing" ? Theme.bad
                     : side.detail.status === "paused" ? Theme.warn : Theme.muted
                Text { id: st; anchors.centerIn: parent; text: side.detail.statusText
                       width: Math.min(implicitWidth, parent.width - Theme.gap)
                       fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.fontSmall * 0.6)
                       font.pixelSize: Theme.fontSmall; font.bold: true; color: "white" }
            }
            Text { text: side.detail.positionText; font.pixelSize: Theme.fontSmall; color: Theme.text
                   Layout.fillWidth: true; horizontalAlignment: Text.AlignRight
                   fontSizeMode: Text.HorizontalFit; minimumPixelSize: Math.round(Theme.fontSmall * 0.6) }
        }
        Text { text: side.detail.pluginName; font.pixelSize: Theme.fontSmall; color: Theme.muted
               Layout.fillWidth: true; wrapMode: Text.Wrap; maximumLineCount: 2 }
        // The whole reason (error, pause, a guard's stop): scrollable, selectable, copyable.
        Rectangle {
            objectName: "reasonBox"
            visible: side.detail.error !== ""
            Layout.fillWidth: true
            Layout.preferredHeight: Math.min(reasonEdit.contentHeight + Theme.gap,
                                             Theme.fontSmall * 1.35 * 5 + Theme.gap)
            color: side.detail.status === "failing" ? "#fde7e6" : "#fff4e0"
            radius: Theme.radius / 2
            Flickable {
                id: reasonFlick
                objectName: "reasonFlick"
                anchors.fill: parent
                anchors.margins: Theme.gap / 2
                clip: true
                contentHeight: reasonEdit.contentHeight
                boundsBehavior: Flickable.StopAtBounds
                TextEdit {
                    id: reasonEdit
                    objectName: "reasonText"
                    width: reasonFlick.width
                    text: side.detail.error
                    readOnly: true
                    selectByMouse: true
                    wrapMode: TextEdit.Wrap
                    font.pixelSize: Theme.fontSmall
                    color: side.detail.status === "failing" ? Theme.bad : Theme.text
                }
            }
            Rectangle {  // scroll bar when the reason is longer than the box
                visible: reasonFlick.contentHeight > reasonFlick.height + 1
                anchors.right: parent.right
                width: 4; radius: 2; color: Theme.muted
                y: reasonFlick.visibleArea.yPosition * parent.height
                height: reasonFlick.visibleArea.heightRatio * parent.height
            }
        }
        // Progress and results in reserved space: nothing below moves when they change.
        Text {
            objectName: "detailMessage"
            Layout.fillWidth: true
            Layout.preferredHeight: Theme.fontSmall * 2.6
            verticalAlignment: Text.AlignVCenter
            text: side.detail.busy !== "" ? side.detail.busy : side.detail.message
            color: Theme.accent
            font.pixelSize: Theme.fontSmall; font.bold: true
            wrapMode: Text.Wrap; maximumLineCount: 2; elide: Text.ElideRight
        }
        RowLayout {
            Layout.fillWidth: true
            spacing: Theme.gap / 2
            Btn { text: "\u2212"; kind: "key"; fontSize: Theme.fontLarge; Layout.preferredWidth: Math.max(48, Theme.scale * 44)
                  onClicked: side.detail.zoom(1.5) }
            Btn { text: "+"; kind: "key"; fontSize: Theme.fontLarge; Layout.preferredWidth: Math.max(48, Theme.scale * 44)
                  onClicked: side.detail.zoom(1 / 1.5) }
            Btn { objectName: "range1D"; text: "1D"; kind: "key"; Layout.preferredWidth: Math.max(48, Theme.scale * 44)
                  onClicked: side.detail.showDays(1) }
            Btn { objectName: "range5D"; text: "5D"; kind: "key"; Layout.preferredWidth: Math.max(48, Theme.scale * 44)
                  onClicked: side.detail.showDays(5) }
            // Candlesticks or the closing-price line; the label names what a tap shows.
            Btn { objectName: "candlesButton"; kind: "key"; Layout.fillWidth: true
                  Layout.minimumWidth: Theme.touch
                  text: side.detail.candles ? "Line" : "Candles"
                  fontSize: Theme.fontSmall * 0.85
                  onClicked: side.detail.toggleCandles() }
        }
        Text { text: "Transactions"; font.pixelSize: Theme.fontSmall; font.bold: true; color: Theme.muted }
        ListView {
            id: txs
            objectName: "txList"
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            model: side.detail.txModel
            delegate: RowLayout {
                required property string side
                required property string sharesText
                required property string priceText
                required property string timeText
                width: ListView.view.width
                height: Theme.fontSmall * 2
                spacing: Theme.gap / 2
                Text { text: parent.side; font.pixelSize: Theme.fontSmall; font.bold: true
                       color: parent.side === "BUY" ? Theme.good : Theme.bad
                       Layout.preferredWidth: Theme.scale * 38 }
                Text { text: sharesText + " @ " + priceText; font.pixelSize: Theme.fontSmall
                       color: Theme.text; Layout.fillWidth: true; elide: Text.ElideRight }
                Text { text: timeText; font.pixelSize: Theme.fontSmall * 0.9; color: Theme.muted }
            }
            Text { anchors.centerIn: parent; visible: txs.count === 0; text: "No trades yet"
                   font.pixelSize: Theme.fontSmall; color: Theme.muted }
        }
        // Actions. A pause over a position difference: accept the broker's figure or resume.
        Btn { objectName: "acceptButton"; text: "Accept broker position"; Layout.fillWidth: true
              fontSize: Theme.fontSmall
              visible: side.detail.status === "paused" && !side.askStop
              active: side.detail.busy === ""
              onClicked: side.detail.accept() }
        // Portrait (the panel under the chart): the three actions on one row, so the
        // transactions get the height of four or five rows instead of one.
        GridLayout {
            Layout.fillWidth: true
            columns: Theme.portrait ? 3 : 2
            rowSpacing: Theme.gap / 2
            columnSpacing: Theme.gap / 2
            visible: !side.askStop
            Btn { objectName: "stopButton"; text: "Stop"; kind: "danger"; Layout.fillWidth: true
                  Layout.preferredWidth: 1
                  active: side.detail.status !== "stopped" && side.detail.busy === ""
                  onClicked: side.askStop = true }
            Btn { objectName: "resumeButton"; text: "Resume"; Layout.fillWidth: true
                  Layout.preferredWidth: 1
                  active: (side.detail.status === "stopped" || side.detail.status === "paused")
                          && side.detail.busy === ""
                  onClicked: side.detail.resume() }
            Btn { objectName: "deleteButton"; text: "Delete\u2026"; kind: "secondary"
                  Layout.columnSpan: Theme.portrait ? 1 : 2; Layout.fillWidth: true
                  Layout.preferredWidth: 1
                  active: side.detail.busy === ""
                  onClicked: side.detail.remove() }
        }
        // Same shape as the actions above: Cancel sits exactly where Stop was, so a double tap
        // on Stop cancels; selling is below, distinct, and asks for the PIN.
        GridLayout {
            Layout.fillWidth: true
            visible: side.askStop
            columns: Theme.portrait ? 3 : 2
            rowSpacing: Theme.gap / 2
            columnSpacing: Theme.gap / 2
            Btn { objectName: "stopCancelButton"; text: "Cancel"; kind: "secondary"
                  Layout.fillWidth: true; Layout.preferredWidth: 1
                  onClicked: side.askStop = false }
            Btn { id: keepButton; objectName: "stopKeepButton"; kind: "danger"
                  // The long label only where it fits ("Stop, keep sh…" at 800x480).
                  TextMetrics { id: keepLong; text: "Stop, keep shares"
                                font.pixelSize: Theme.fontSmall; font.bold: true }
                  text: Theme.portrait || keepLong.width > keepButton.width - Theme.gap * 1.5
                        ? "Keep shares" : "Stop, keep shares"
                  fontSize: Theme.fontSmall; Layout.fillWidth: true; Layout.preferredWidth: 1
                  onClicked: { side.askStop = false; side.detail.stop(false) } }
            Btn { objectName: "stopSellButton"; kind: "sell"
                  text: Theme.portrait ? "Sell\u2026 (PIN)" : "Stop and sell\u2026 (PIN)"
                  fontSize: Theme.portrait ? Theme.fontSmall : Theme.font
                  Layout.columnSpan: Theme.portrait ? 1 : 2; Layout.fillWidth: true
                  Layout.preferredWidth: 1
                  onClicked: { side.askStop = false; side.detail.stop(true) } }
        }
    }
}
