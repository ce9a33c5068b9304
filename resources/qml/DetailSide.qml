// Detail side panel: status, figures, chart controls, transactions, stop/resume/delete.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: side
    required property QtObject detail
    color: Theme.surface
    property bool askStop: false

    Rectangle { width: 2; height: parent.height; color: Theme.border }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        anchors.leftMargin: Theme.gap + 2
        spacing: Theme.gap * 0.75

        RowLayout {
            Layout.fillWidth: true
            Rectangle {
                implicitWidth: st.implicitWidth + Theme.gap * 1.5
                implicitHeight: st.implicitHeight + Theme.gap * 0.5
                radius: height / 2
                color: side.detail.status === "running" ? Theme.good
                     : side.detail.status === "error" ? Theme.bad : Theme.muted
                Text { id: st; anchors.centerIn: parent; text: side.detail.statusText
                       font.pixelSize: Theme.fontSmall; font.bold: true; color: "white" }
            }
            Text { text: side.detail.positionText; font.pixelSize: Theme.fontSmall; color: Theme.text
                   Layout.fillWidth: true; horizontalAlignment: Text.AlignRight; elide: Text.ElideLeft }
        }
        Text { text: side.detail.plugin; font.pixelSize: Theme.fontSmall; color: Theme.muted
               Layout.fillWidth: true; elide: Text.ElideRight }
        Text {
            visible: text !== ""
            text: side.detail.error !== "" ? side.detail.error
                : side.detail.busy !== "" ? side.detail.busy : side.detail.message
            color: side.detail.error !== "" ? Theme.bad : Theme.accent
            font.pixelSize: Theme.fontSmall; font.bold: true
            Layout.fillWidth: true; wrapMode: Text.WordWrap
            maximumLineCount: 3; elide: Text.ElideRight
        }
        RowLayout {
            Layout.fillWidth: true
            spacing: Theme.gap / 2
            Btn { text: "\u2212"; kind: "key"; fontSize: Theme.fontLarge; Layout.fillWidth: true
                  onClicked: side.detail.zoom(1.5) }
            Btn { text: "+"; kind: "key"; fontSize: Theme.fontLarge; Layout.fillWidth: true
                  onClicked: side.detail.zoom(1 / 1.5) }
            Btn { text: "Now"; kind: "key"; Layout.fillWidth: true; onClicked: side.detail.follow() }
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
        // Actions
        GridLayout {
            Layout.fillWidth: true
            columns: 2
            rowSpacing: Theme.gap / 2
            columnSpacing: Theme.gap / 2
            visible: !side.askStop
            Btn { objectName: "stopButton"; text: "Stop"; kind: "danger"; Layout.fillWidth: true
                  active: side.detail.status === "running" && side.detail.busy === ""
                  onClicked: side.askStop = true }
            Btn { objectName: "resumeButton"; text: "Resume"; Layout.fillWidth: true
                  active: side.detail.status !== "running" && side.detail.busy === ""
                  onClicked: side.detail.resume() }
            Btn { objectName: "deleteButton"; text: "Delete\u2026"; kind: "secondary"
                  Layout.columnSpan: 2; Layout.fillWidth: true
                  active: side.detail.busy === ""
                  onClicked: side.detail.remove() }
        }
        ColumnLayout {
            Layout.fillWidth: true
            visible: side.askStop
            spacing: Theme.gap / 2
            Btn { text: "Stop, keep shares"; kind: "danger"; Layout.fillWidth: true
                  onClicked: { side.askStop = false; side.detail.stop(false) } }
            Btn { text: "Stop and sell"; kind: "danger"; Layout.fillWidth: true
                  onClicked: { side.askStop = false; side.detail.stop(true) } }
            Btn { text: "Cancel"; kind: "secondary"; Layout.fillWidth: true
                  onClicked: side.askStop = false }
        }
    }
}
