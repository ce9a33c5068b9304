// PIN pad: set-up, unlock, confirm an action, change the PIN. Digits stay in Python.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: page
    required property QtObject lock
    required property QtObject header
    color: Theme.bg
    focus: true
    // A desktop keyboard works too: digits, Backspace, Enter, Escape.
    Keys.onPressed: (event) => {
        if (event.text.length === 1 && event.text >= "0" && event.text <= "9") page.lock.digit(event.text)
        else if (event.key === Qt.Key_Backspace) page.lock.backspace()
        else if (event.key === Qt.Key_Return || event.key === Qt.Key_Enter) { if (page.lock.canSubmit) page.lock.submit() }
        else if (event.key === Qt.Key_Escape) page.lock.cancel()
        else return
        event.accepted = true
    }

    // Read-only: a glance says whether everything is fine without unlocking.
    PortfolioStrip {
        id: strip
        objectName: "lockStrip"
        header: page.header
        anchors { left: parent.left; right: parent.right; top: parent.top }
    }

    GridLayout {
        id: body
        anchors { left: parent.left; right: parent.right; top: strip.bottom; bottom: parent.bottom }
        anchors.margins: Theme.gap * (Theme.portrait ? 2 : 3)
        columns: Theme.portrait ? 1 : 2
        columnSpacing: Theme.gap * 3
        rowSpacing: Theme.gap

        ColumnLayout {
            Layout.fillWidth: true
            Layout.fillHeight: !Theme.portrait
            spacing: Theme.gap * (Theme.portrait ? 1 : 2)
            Item { Layout.fillHeight: true; visible: !Theme.portrait }
            Text {
                text: "AutoTrader"
                font.pixelSize: Theme.fontSmall; font.bold: true
                color: Theme.muted
            }
            Text {
                objectName: "lockTitle"
                text: page.lock.title
                font.pixelSize: Theme.fontHuge; font.bold: true
                color: Theme.text
                Layout.fillWidth: true
                wrapMode: Text.WordWrap
            }
            Text {
                text: page.lock.subtitle
                font.pixelSize: Theme.font
                color: Theme.muted
                Layout.fillWidth: true
                wrapMode: Text.WordWrap
            }
            Row {
                spacing: Theme.gap * 1.5
                Layout.topMargin: Theme.gap
                Repeater {
                    model: Math.max(4, page.lock.entered)
                    Rectangle {
                        width: Theme.fontLarge; height: width; radius: width / 2
                        color: index < page.lock.entered ? Theme.text : "transparent"
                        border.width: Math.max(2, Theme.scale * 2)
                        border.color: Theme.text
                    }
                }
            }
            Text {
                objectName: "lockMessage"
                text: page.lock.message
                font.pixelSize: Theme.font; font.bold: true
                color: page.lock.isBusy ? Theme.muted : page.lock.isError ? Theme.bad : Theme.good
                Layout.fillWidth: true
                wrapMode: Text.WordWrap
                Layout.preferredHeight: Theme.font * 3
            }
            Item { Layout.fillHeight: true; visible: !Theme.portrait }
        }

        GridLayout {
            id: pad
            columns: 3
            rowSpacing: Theme.gap
            columnSpacing: Theme.gap
            Layout.alignment: Theme.portrait ? Qt.AlignHCenter | Qt.AlignBottom : Qt.AlignVCenter
            property int keyW: Theme.touch * 1.5
            property int keyH: Math.max(Theme.touch, Math.min(Theme.touch * 1.25,
                                                              (body.height - Theme.gap * 6) / 5))
            Repeater {
                model: ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
                Btn {
                    required property string modelData
                    kind: "key"; text: modelData; fontSize: Theme.fontLarge
                    active: page.lock.lockedFor === 0 && !page.lock.isBusy
                    Layout.preferredWidth: pad.keyW; Layout.preferredHeight: pad.keyH
                    onClicked: page.lock.digit(modelData)
                }
            }
            Btn {
                kind: "key"; text: "\u232B"; fontSize: Theme.fontLarge
                Layout.preferredWidth: pad.keyW; Layout.preferredHeight: pad.keyH
                onClicked: page.lock.backspace()
            }
            Btn {
                kind: "key"; text: "0"; fontSize: Theme.fontLarge
                active: page.lock.lockedFor === 0 && !page.lock.isBusy
                Layout.preferredWidth: pad.keyW; Layout.preferredHeight: pad.keyH
                onClicked: page.lock.digit("0")
            }
            Btn {
                objectName: "pinOk"
                kind: "primary"; text: "OK"; fontSize: Theme.fontLarge
                active: page.lock.canSubmit
                Layout.preferredWidth: pad.keyW; Layout.preferredHeight: pad.keyH
                onClicked: page.lock.submit()
            }
            Btn {
                visible: page.lock.canCancel
                kind: "secondary"; text: "Cancel"
                Layout.columnSpan: 3
                Layout.fillWidth: true; Layout.preferredHeight: pad.keyH
                onClicked: page.lock.cancel()
            }
        }
    }
}
