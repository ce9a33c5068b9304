// Settings: PIN, idle lock, demo speed, key status, latest log lines.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: page
    required property QtObject prefs
    color: Theme.bg

    component Choice: Btn {
        property bool selected: false
        kind: selected ? "primary" : "secondary"
        implicitWidth: Math.max(Theme.touch, labelWidth + Theme.gap * 2)
    }

    // Portrait: the settings above, the log below.
    GridLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        columns: Theme.portrait ? 1 : 2
        columnSpacing: Theme.gap * 2
        rowSpacing: Theme.gap

        Flickable {
            id: leftFlick
            objectName: "settingsFlick"
            Layout.fillHeight: !Theme.portrait
            Layout.fillWidth: Theme.portrait
            Layout.preferredHeight: Theme.portrait ? page.height * 0.6 : -1
            Layout.preferredWidth: Theme.portrait ? -1 : page.width * 0.6
            contentHeight: left.implicitHeight
            boundsBehavior: Flickable.StopAtBounds
            clip: true
            Rectangle {  // a scroll bar when the settings do not all fit
                visible: leftFlick.contentHeight > leftFlick.height + 1
                parent: leftFlick
                anchors.right: parent.right
                width: 4; radius: 2; color: Theme.muted; z: 5
                y: leftFlick.visibleArea.yPosition * leftFlick.height
                height: leftFlick.visibleArea.heightRatio * leftFlick.height
            }
            ColumnLayout {
                id: left
                width: leftFlick.width - Theme.gap  // room for the scroll bar
                spacing: Theme.gap
                RowLayout {
                    Btn { text: "\u2190 Back"; kind: "secondary"; onClicked: page.prefs.back() }
                    Text { text: "Settings"; font.pixelSize: Theme.fontLarge; font.bold: true; color: Theme.text }
                }
                Btn { objectName: "changePinButton"; text: "Change PIN"; Layout.fillWidth: true
                      onClicked: page.prefs.changePin() }
                Text { objectName: "settingsMessage"; visible: text !== ""; text: page.prefs.message
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.good }
                Text { text: "Lock after idle"; font.pixelSize: Theme.font; font.bold: true; color: Theme.text }
                Flow {
                    Layout.fillWidth: true
                    spacing: Theme.gap / 2
                    Repeater {
                        model: page.prefs.idleChoices
                        Choice { required property var modelData
                                 text: modelData.label; selected: modelData.value === page.prefs.idleSeconds
                                 onClicked: page.prefs.setIdleSeconds(modelData.value) }
                    }
                }
                Text { visible: page.prefs.isDemo; text: "Demo clock speed"
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.text }
                Flow {
                    visible: page.prefs.isDemo
                    Layout.fillWidth: true
                    spacing: Theme.gap / 2
                    Repeater {
                        model: page.prefs.speedChoices
                        Choice { required property var modelData
                                 text: modelData.label; selected: Math.abs(modelData.value - page.prefs.demoSpeed) < 0.001
                                 onClicked: page.prefs.setDemoSpeed(modelData.value) }
                    }
                }
                Text { text: "Mode: " + page.prefs.modeText + "   \u00b7   Alpaca API keys: " + page.prefs.keysText
                       font.pixelSize: Theme.font; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                // The risk guards the engine runs with (read-only here).
                Text { text: "Risk guards"; font.pixelSize: Theme.font; font.bold: true; color: Theme.text
                       Layout.topMargin: Theme.gap }
                Repeater {
                    model: page.prefs.guards
                    RowLayout {
                        required property var modelData
                        Layout.fillWidth: true
                        spacing: Theme.gap
                        Text { text: modelData.name; font.pixelSize: Theme.fontSmall; color: Theme.muted
                               Layout.fillWidth: true; wrapMode: Text.WordWrap }
                        Text { objectName: "guardValue"; text: modelData.value; font.pixelSize: Theme.fontSmall
                               font.bold: true; color: Theme.text
                               Layout.maximumWidth: left.width * 0.55
                               horizontalAlignment: Text.AlignRight; wrapMode: Text.WordWrap }
                    }
                }
                Text { text: page.prefs.guardsHint; font.pixelSize: Theme.fontSmall * 0.9
                       color: Theme.muted; Layout.fillWidth: true; wrapMode: Text.WrapAnywhere }
                Text { text: page.prefs.aboutText; font.pixelSize: Theme.fontSmall; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.WrapAnywhere }
            }
        }

        ColumnLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: Theme.gap
            RowLayout {
                Text { text: "Latest log lines"; font.pixelSize: Theme.font; font.bold: true
                       color: Theme.text; Layout.fillWidth: true }
                Btn { text: "Refresh"; kind: "secondary"; onClicked: page.prefs.refreshLog() }
            }
            Rectangle {
                Layout.fillWidth: true
                Layout.fillHeight: true
                color: Theme.dark
                radius: Theme.radius
                Flickable {
                    id: logView
                    anchors.fill: parent
                    anchors.margins: Theme.gap
                    clip: true
                    contentWidth: width
                    contentHeight: logText.implicitHeight
                    onContentHeightChanged: contentY = Math.max(0, contentHeight - height)
                    Text {
                        id: logText
                        objectName: "logText"
                        width: logView.width
                        text: page.prefs.logText
                        // Word boundaries first (Text.Wrap breaks inside a word only when it
                        // alone is wider than the line), at a size read from arm's length.
                        wrapMode: Text.Wrap
                        font.family: "monospace"
                        font.pixelSize: Math.max(14, Theme.fontSmall)
                        color: "#e8edf3"
                    }
                }
            }
        }
    }
}
