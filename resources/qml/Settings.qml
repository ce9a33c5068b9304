// Settings: PIN, idle lock, demo speed, risk guards (tap to change), screen rotation, key
// status, latest log lines. The guard editor covers the page with a number pad.
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
        // Hidden under the guard editor: a tap there never reaches a button below it.
        visible: page.prefs.guardEdit.editName === ""
        columns: Theme.portrait ? 1 : 2
        columnSpacing: Theme.gap * 2
        rowSpacing: Theme.gap

        // Back and the title stay put; only the settings under them scroll.
        ColumnLayout {
            Layout.fillHeight: !Theme.portrait
            Layout.fillWidth: Theme.portrait
            Layout.preferredHeight: Theme.portrait ? page.height * 0.6 : -1
            Layout.preferredWidth: Theme.portrait ? -1 : page.width * 0.6
            spacing: Theme.gap
            RowLayout {
                objectName: "settingsTitleRow"
                Layout.fillWidth: true
                Btn { objectName: "settingsBackButton"; text: "\u2190 Back"; kind: "secondary"
                      onClicked: page.prefs.back() }
                Text { text: "Settings"; font.pixelSize: Theme.fontLarge; font.bold: true; color: Theme.text }
            }
        Flickable {
            id: leftFlick
            objectName: "settingsFlick"
            Layout.fillHeight: true
            Layout.fillWidth: true
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
                Btn { objectName: "changePinButton"; text: "Change PIN"; Layout.fillWidth: true
                      onClicked: page.prefs.changePin() }
                Text { objectName: "settingsMessage"; visible: text !== ""; text: page.prefs.message
                       font.pixelSize: Theme.font; font.bold: true
                       color: page.prefs.messageBad ? Theme.bad : Theme.good
                       Layout.fillWidth: true; wrapMode: Text.Wrap }  // a long line widened the column
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
                // The risk guards the engine runs with: tap a value to change it.
                Text { text: "Risk guards"; font.pixelSize: Theme.font; font.bold: true; color: Theme.text
                       Layout.topMargin: Theme.gap }
                Repeater {
                    model: page.prefs.guardEdit.rows
                    RowLayout {
                        required property var modelData
                        Layout.fillWidth: true
                        spacing: Theme.gap
                        // preferredWidth 1: the label takes what the button leaves, however
                        // long its one-line width (a re-created row laid out from it otherwise).
                        Text { text: modelData.label; font.pixelSize: Theme.fontSmall; color: Theme.muted
                               Layout.fillWidth: true; Layout.preferredWidth: 1; wrapMode: Text.WordWrap }
                        Btn { objectName: "guardValue_" + modelData.name
                              text: modelData.shown + (modelData.edited ? " *" : "")
                              kind: "secondary"; fontSize: Theme.fontSmall
                              Layout.preferredWidth: Math.max(Theme.touch * 2.6, labelWidth + Theme.gap * 2)
                              Layout.maximumWidth: left.width * 0.5
                              onClicked: page.prefs.guardEdit.edit(modelData.name) }
                    }
                }
                Text { text: page.prefs.guardsHint + "  * changed here or with 'autotrader guards'."
                       font.pixelSize: Theme.fontSmall * 0.9
                       color: Theme.muted; Layout.fillWidth: true; wrapMode: Text.Wrap }
                // The Pi kiosk's picture and touch rotation ([ui] rotation of the config file).
                Text { text: "Screen rotation (kiosk)"; font.pixelSize: Theme.font; font.bold: true
                       color: Theme.text; Layout.topMargin: Theme.gap }
                Flow {
                    Layout.fillWidth: true
                    spacing: Theme.gap / 2
                    Repeater {
                        model: page.prefs.rotationChoices
                        Choice { required property var modelData
                                 objectName: "rotation" + modelData.value
                                 text: modelData.label; selected: modelData.value === page.prefs.rotation
                                 onClicked: page.prefs.setRotation(modelData.value) }
                    }
                }
                Text { objectName: "rotationNote"; text: page.prefs.rotationNote
                       font.pixelSize: Theme.fontSmall; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.Wrap }
                Btn { objectName: "restartWindow"; visible: page.prefs.canRestart
                      text: "Restart the window now"; kind: "secondary"
                      onClicked: page.prefs.restartWindow() }
                Text { text: page.prefs.aboutText; font.pixelSize: Theme.fontSmall; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.WrapAnywhere }
            }
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

    // One risk guard being changed: over the whole page, the value typed on the number pad.
    Rectangle {
        id: editor
        objectName: "guardEditor"
        readonly property QtObject ed: page.prefs.guardEdit
        visible: ed.editName !== ""
        anchors.fill: parent
        color: Theme.bg
        z: 20
        MouseArea { anchors.fill: parent }  // nothing under it takes a tap
        GridLayout {
            anchors.fill: parent
            anchors.margins: Theme.gap
            columns: Theme.portrait ? 1 : 2
            columnSpacing: Theme.gap * 2
            rowSpacing: Theme.gap
            ColumnLayout {
                Layout.fillWidth: true
                Layout.alignment: Qt.AlignTop
                spacing: Theme.gap
                Text { text: editor.ed.editLabel; font.pixelSize: Theme.fontLarge; font.bold: true
                       color: Theme.text; Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Rectangle {
                    visible: editor.ed.editKind !== "choice"
                    Layout.fillWidth: true
                    Layout.preferredHeight: Theme.touch * 1.2
                    radius: Theme.radius; color: Theme.surface
                    border.width: 2; border.color: editor.ed.editError !== "" ? Theme.bad : Theme.accent
                    Text {
                        objectName: "guardDisplay"
                        anchors.centerIn: parent
                        text: (editor.ed.editText === "" ? " " : editor.ed.editText)
                              + (editor.ed.editKind === "pct" ? " %" : editor.ed.editKind === "minutes" ? " min" : "")
                        font.pixelSize: Theme.fontHuge; font.bold: true; color: Theme.text
                    }
                }
                Flow {
                    visible: editor.ed.editKind === "choice"
                    Layout.fillWidth: true
                    spacing: Theme.gap / 2
                    Choice { objectName: "choiceKeep"; text: "Keep the shares"; selected: editor.ed.editText === "keep"
                             onClicked: editor.ed.choose("keep") }
                    Choice { objectName: "choiceSell"; text: "Sell the shares"; selected: editor.ed.editText === "sell"
                             onClicked: editor.ed.choose("sell") }
                }
                Text { visible: text !== ""; text: editor.ed.editRange === "" ? "" : "Valid: " + editor.ed.editRange
                       font.pixelSize: Theme.fontSmall; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Text { text: editor.ed.editNow; font.pixelSize: Theme.fontSmall; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Text { objectName: "guardError"; visible: text !== ""; text: editor.ed.editError
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.bad
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                // While a change is being saved (it may wait for the database): Save is off,
                // Close leaves the editor (the change goes on; its outcome is the message).
                Text { objectName: "guardSaving"; visible: editor.ed.saving
                       text: "Saving\u2026 The rest of the app still answers: Close to go back."
                       font.pixelSize: Theme.fontSmall; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                RowLayout {
                    Layout.fillWidth: true
                    spacing: Theme.gap
                    Btn { objectName: "guardCancel"; text: editor.ed.saving ? "Close" : "Cancel"
                          kind: "secondary"; Layout.fillWidth: true; onClicked: editor.ed.cancel() }
                    Btn { objectName: "guardOff"; visible: editor.ed.editOffAllowed; text: "Off"
                          kind: "secondary"; Layout.fillWidth: true; active: !editor.ed.saving
                          onClicked: editor.ed.turnOff() }
                    Btn { objectName: "guardSave"; text: editor.ed.saving ? "Saving\u2026" : "Save"
                          Layout.fillWidth: true; active: !editor.ed.saving
                          onClicked: editor.ed.save() }
                }
            }
            NumberKeys {
                visible: editor.ed.editKind !== "choice"
                Layout.fillHeight: true
                Layout.fillWidth: Theme.portrait
                Layout.preferredWidth: Theme.touch * 5
                onKey: (ch) => editor.ed.key(ch)
                onBackspace: editor.ed.backspace()
            }
        }
    }
}
