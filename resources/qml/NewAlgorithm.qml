// New algorithm: plugin -> ticker -> capital -> confirm. Input and checks live in Python.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: page
    required property QtObject flow
    color: Theme.bg
    focus: true
    Keys.onPressed: (event) => {
        var t = event.text
        if (["ticker", "capital", "param"].indexOf(page.flow.step) >= 0 && t.length === 1
                && /[A-Za-z0-9.\-]/.test(t)) page.flow.key(t)
        else if (event.key === Qt.Key_Backspace) page.flow.backspace()
        else if (event.key === Qt.Key_Return || event.key === Qt.Key_Enter) {
            if (page.flow.step === "confirm") page.flow.confirm(); else page.flow.next()
        }
        else if (event.key === Qt.Key_Escape) page.flow.back()
        else return
        event.accepted = true
    }

    readonly property var titles: ({
        "plugin": "Step 1 of 4 \u00b7 Choose a plugin",
        "ticker": "Step 2 of 4 \u00b7 Ticker",
        "capital": "Step 3 of 4 \u00b7 Capital",
        "confirm": "Step 4 of 4 \u00b7 Confirm",
        "param": "Step 4 of 4 \u00b7 Change a parameter",
        "working": "Creating the algorithm"
    })

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        spacing: Theme.gap

        // Portrait: the step's title on a line of its own, under the buttons.
        GridLayout {
            Layout.fillWidth: true
            columns: 4
            columnSpacing: Theme.gap
            rowSpacing: Theme.gap / 2
            Btn { text: "\u2190 Back"; kind: "secondary"; visible: page.flow.step !== "working"
                  Layout.row: 0; Layout.column: 0
                  onClicked: page.flow.back() }
            Text {
                objectName: "stepTitle"
                text: page.titles[page.flow.step]
                font.pixelSize: Theme.fontLarge; font.bold: true; color: Theme.text
                Layout.row: Theme.portrait ? 1 : 0; Layout.column: Theme.portrait ? 0 : 1
                Layout.columnSpan: Theme.portrait ? 4 : 1
                Layout.fillWidth: true
                elide: Text.ElideRight
            }
            Item { Layout.row: 0; Layout.column: 1; Layout.fillWidth: true; visible: Theme.portrait }
            Btn { objectName: "cancelButton"; text: "Cancel"; kind: "ghost"; visible: page.flow.step !== "working"
                  Layout.row: 0; Layout.column: 2
                  onClicked: page.flow.cancel() }
            Btn { objectName: "nextButton"; text: "Next \u2192"
                  Layout.row: 0; Layout.column: 3
                  visible: ["ticker", "capital", "param"].indexOf(page.flow.step) >= 0
                  onClicked: page.flow.next() }
        }

        // Messages take reserved space on the steps with a keypad: nothing moves under the
        // finger when one appears. On the ticker step the broker's answer shows here, before
        // Next: "AMZN · Amazon.com · $184.38", or why not.
        Text {
            objectName: "flowMessage"
            readonly property bool info: page.flow.message === "" && page.flow.step === "ticker"
                                         && page.flow.tickerInfo !== ""
            visible: page.flow.step !== "working" && page.flow.step !== "confirm"
                     && page.flow.step !== "plugin" || (page.flow.message !== "" && page.flow.step !== "working")
            text: page.flow.message !== "" ? page.flow.message
                  : info ? page.flow.tickerInfo
                  : page.flow.step === "ticker" && page.flow.checking
                    ? "Checking " + page.flow.ticker + " with the broker\u2026" : ""
            Layout.fillWidth: true
            Layout.preferredHeight: Theme.font * 2.6
            verticalAlignment: Text.AlignVCenter
            wrapMode: Text.WordWrap
            maximumLineCount: 2
            elide: Text.ElideRight
            font.pixelSize: Theme.font; font.bold: true
            color: page.flow.message !== "" ? Theme.bad : info ? Theme.text : Theme.accent
        }

        // --- step 1: plugins ---------------------------------------------------------------
        ListView {
            id: pluginList
            objectName: "pluginList"
            visible: page.flow.step === "plugin"
            boundsBehavior: Flickable.StopAtBounds
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            spacing: Theme.gap
            model: page.flow.plugins
            delegate: Rectangle {
                required property var modelData
                width: ListView.view.width
                height: Math.max(Theme.touch * 1.4, col.implicitHeight + Theme.gap * 2)
                radius: Theme.radius
                color: ptap.pressed ? Theme.surfaceAlt : Theme.surface
                border.width: 2
                border.color: modelData.usable ? Theme.border : Theme.bad
                opacity: modelData.usable ? 1 : 0.7
                Column {
                    id: col
                    anchors.left: parent.left; anchors.right: parent.right
                    anchors.verticalCenter: parent.verticalCenter
                    anchors.margins: Theme.gap * 1.5
                    spacing: Theme.gap / 2
                    Text { objectName: "pluginTitle"; text: modelData.title
                           width: parent.width; elide: Text.ElideRight
                           font.pixelSize: Theme.fontLarge; font.bold: true; color: Theme.text }
                    Text { text: modelData.usable ? modelData.description : "Broken: " + modelData.error
                           width: parent.width; wrapMode: Text.WordWrap
                           font.pixelSize: Theme.font; color: modelData.usable ? Theme.muted : Theme.bad }
                    Text { visible: modelData.usable; text: "Parameters: " + modelData.paramsText
                           width: parent.width; wrapMode: Text.WordWrap
                           font.pixelSize: Theme.fontSmall; color: Theme.muted }
                }
                TapHandler { id: ptap; onTapped: page.flow.choosePlugin(modelData.name) }
            }
            Text {
                anchors.centerIn: parent
                visible: parent.count === 0
                text: "Loading plugins\u2026"
                font.pixelSize: Theme.fontLarge; color: Theme.muted
            }
            readonly property bool overflows: contentHeight > height + 1
            Rectangle {  // scroll bar when the plugins do not all fit
                visible: pluginList.overflows
                anchors.right: parent.right; z: 2
                width: Math.max(4, Theme.gap * 0.6); radius: width / 2
                y: pluginList.visibleArea.yPosition * pluginList.height
                height: pluginList.visibleArea.heightRatio * pluginList.height
                color: Theme.muted; opacity: 0.7
            }
            Rectangle {  // and a hint that more are below (taps go through it to the cards)
                objectName: "pluginScrollHint"
                visible: pluginList.overflows && !pluginList.atYEnd
                anchors.horizontalCenter: parent.horizontalCenter
                anchors.bottom: parent.bottom
                anchors.bottomMargin: Theme.gap / 2
                z: 2
                width: hintText.implicitWidth + Theme.gap * 2
                height: hintText.implicitHeight + Theme.gap
                radius: height / 2
                color: Theme.text; opacity: 0.85
                Text { id: hintText; anchors.centerIn: parent
                       text: "\u25BC " + pluginList.count + " plugins \u00b7 swipe up for more"
                       font.pixelSize: Theme.fontSmall; font.bold: true; color: Theme.bg }
            }
        }

        // --- step 2: ticker ----------------------------------------------------------------
        ColumnLayout {
            visible: page.flow.step === "ticker"
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: Theme.gap
            RowLayout {
                Layout.fillWidth: true
                Rectangle {
                    Layout.preferredWidth: Theme.scale * 260
                    Layout.preferredHeight: Theme.touch
                    radius: Theme.radius; color: Theme.surface
                    border.width: 2; border.color: Theme.accent
                    Text {
                        objectName: "tickerDisplay"
                        anchors.centerIn: parent
                        text: page.flow.ticker === "" ? "e.g. AAPL" : page.flow.ticker
                        font.pixelSize: Theme.fontHuge * 0.85; font.bold: true
                        color: page.flow.ticker === "" ? Theme.border : Theme.text
                    }
                }
                Text {
                    text: page.flow.pluginTitle
                    Layout.fillWidth: true
                    horizontalAlignment: Text.AlignRight
                    font.pixelSize: Theme.font; color: Theme.muted
                    elide: Text.ElideRight
                }
            }
            LetterKeys {
                Layout.fillWidth: true
                Layout.fillHeight: true
                onKey: (ch) => page.flow.key(ch)
                onBackspace: page.flow.backspace()
            }
        }

        // --- step 3: capital ---------------------------------------------------------------
        GridLayout {
            visible: page.flow.step === "capital"
            Layout.fillWidth: true
            Layout.fillHeight: true
            columns: Theme.portrait ? 1 : 2
            columnSpacing: Theme.gap * 2
            rowSpacing: Theme.gap
            ColumnLayout {
                Layout.fillWidth: true
                Layout.alignment: Qt.AlignTop
                spacing: Theme.gap
                Text { objectName: "tickerInfo"; text: page.flow.tickerInfo
                       visible: text !== ""
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Text { text: "How much money may " + page.flow.ticker + " use?"
                       font.pixelSize: Theme.font; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Rectangle {
                    Layout.fillWidth: true
                    Layout.preferredHeight: Theme.touch * 1.2
                    radius: Theme.radius; color: Theme.surface
                    border.width: 2; border.color: Theme.accent
                    Text {
                        objectName: "capitalDisplay"
                        anchors.centerIn: parent
                        text: page.flow.capitalShown
                        font.pixelSize: Theme.fontHuge; font.bold: true; color: Theme.text
                    }
                }
                Text { text: page.flow.freeText; font.pixelSize: Theme.font; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                RowLayout {
                    visible: page.flow.hasFree
                    spacing: Theme.gap / 2
                    Btn { objectName: "chip25"; text: "25%"; kind: "secondary"; onClicked: page.flow.capitalShare(0.25) }
                    Btn { objectName: "chip50"; text: "50%"; kind: "secondary"; onClicked: page.flow.capitalShare(0.5) }
                    Btn { objectName: "chipAll"; text: "All free"; kind: "secondary"; onClicked: page.flow.capitalShare(1.0) }
                }
                // How many whole shares that buys at the checked price (under the chips, so
                // they stay where they were).
                Text { objectName: "sharesText"; text: page.flow.sharesText
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
            }
            NumberKeys {
                Layout.fillHeight: true
                Layout.fillWidth: Theme.portrait
                Layout.preferredWidth: Theme.touch * 5
                onKey: (ch) => page.flow.key(ch)
                onBackspace: page.flow.backspace()
            }
        }

        // --- step 4: confirm ---------------------------------------------------------------
        // The content scrolls; its two buttons stay pinned at the bottom, always reachable.
        ColumnLayout {
            visible: page.flow.step === "confirm"
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: Theme.gap
        Flickable {
            id: confirmFlick
            objectName: "confirmFlick"
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            contentHeight: confirmCol.implicitHeight
            boundsBehavior: Flickable.StopAtBounds
            Rectangle {  // scroll bar when the content is taller than the room
                visible: confirmFlick.contentHeight > confirmFlick.height + 1
                x: confirmFlick.width - width; z: 2
                y: confirmFlick.contentY + confirmFlick.visibleArea.yPosition * confirmFlick.height
                width: Math.max(4, Theme.gap * 0.6); radius: width / 2
                height: confirmFlick.visibleArea.heightRatio * confirmFlick.height
                color: Theme.muted; opacity: 0.7
            }
        ColumnLayout {
            id: confirmCol
            width: confirmFlick.width - Theme.gap
            spacing: Theme.gap
            Text { text: page.flow.tickerInfo; visible: text !== ""; font.pixelSize: Theme.fontSmall
                   color: Theme.muted; Layout.fillWidth: true; horizontalAlignment: Text.AlignHCenter
                   wrapMode: Text.WordWrap }
            Text { text: page.flow.summary; font.pixelSize: Theme.fontHuge * 0.7; font.bold: true
                   color: Theme.text; Layout.fillWidth: true; wrapMode: Text.WordWrap
                   horizontalAlignment: Text.AlignHCenter }
            Text { objectName: "confirmShares"; text: page.flow.sharesText; visible: text !== ""
                   font.pixelSize: Theme.font; color: Theme.text; Layout.fillWidth: true
                   wrapMode: Text.WordWrap; horizontalAlignment: Text.AlignHCenter }
            Text { text: page.flow.pluginDescription; font.pixelSize: Theme.font; color: Theme.muted
                   Layout.fillWidth: true; wrapMode: Text.WordWrap; horizontalAlignment: Text.AlignHCenter }
            Flow {
                objectName: "paramButtons"
                Layout.fillWidth: true
                spacing: Theme.gap
                visible: page.flow.paramList.length > 0
                Text { text: "Parameters (tap to change):"; font.pixelSize: Theme.fontSmall
                       color: Theme.muted; height: Theme.touch; verticalAlignment: Text.AlignVCenter }
                Repeater {
                    model: page.flow.paramList
                    Btn {
                        required property var modelData
                        kind: modelData.changed ? "primary" : "secondary"
                        fontSize: Theme.fontSmall
                        text: modelData.name + " = " + modelData.valueText
                        onClicked: page.flow.editParam(modelData.name)
                    }
                }
            }
            Text { text: "The ticker is checked with the broker, its history is loaded, and the "
                         + "algorithm trades once a minute while the market is open."
                   visible: page.flow.backtestState === ""
                   font.pixelSize: Theme.fontSmall; color: Theme.muted
                   Layout.fillWidth: true; wrapMode: Text.WordWrap; horizontalAlignment: Text.AlignHCenter }
            // "Try it first": figures of a backtest on the last sessions.
            Text { objectName: "backtestMessage"; text: page.flow.backtestMessage
                   visible: text !== ""
                   font.pixelSize: Theme.fontSmall; font.bold: page.flow.backtestState === "failed"
                   color: page.flow.backtestState === "failed" ? Theme.bad : Theme.muted
                   Layout.fillWidth: true; wrapMode: Text.WordWrap; horizontalAlignment: Text.AlignHCenter }
            GridLayout {
                objectName: "backtestFigures"
                visible: page.flow.backtestFigures.length > 0
                Layout.fillWidth: true
                columns: Theme.portrait ? 3 : 5
                columnSpacing: Theme.gap
                rowSpacing: Theme.gap
                Repeater {
                    model: page.flow.backtestFigures
                    Rectangle {
                        required property var modelData
                        Layout.fillWidth: true
                        Layout.preferredWidth: 1
                        Layout.preferredHeight: figCol.implicitHeight + Theme.gap
                        radius: Theme.radius; color: Theme.surface
                        border.width: 1; border.color: Theme.border
                        Column {
                            id: figCol
                            anchors.centerIn: parent
                            width: parent.width - Theme.gap
                            Text { width: parent.width; text: modelData.value
                                   horizontalAlignment: Text.AlignHCenter; elide: Text.ElideRight
                                   font.pixelSize: Theme.fontLarge; font.bold: true
                                   color: modelData.tone === "good" ? Theme.good
                                        : modelData.tone === "bad" ? Theme.bad : Theme.text }
                            Text { width: parent.width; text: modelData.label
                                   horizontalAlignment: Text.AlignHCenter; elide: Text.ElideRight
                                   font.pixelSize: Theme.fontSmall; color: Theme.muted }
                        }
                    }
                }
            }
        }
        }
            RowLayout {
                Layout.alignment: Qt.AlignHCenter
                Layout.fillWidth: Theme.portrait
                spacing: Theme.gap * (Theme.portrait ? 1 : 2)
                Btn { objectName: "backtestButton"; text: page.flow.backtestButtonText
                      kind: page.flow.backtestState === "running" ? "ghost" : "secondary"
                      fontSize: Theme.portrait ? Theme.fontSmall : Theme.font
                      Layout.fillWidth: Theme.portrait
                      Layout.preferredWidth: Theme.scale * 300; onClicked: page.flow.backtest() }
                Btn { objectName: "createButton"; text: "Create and start"
                      fontSize: Theme.portrait ? Theme.fontSmall : Theme.font
                      Layout.fillWidth: Theme.portrait
                      Layout.preferredWidth: Theme.scale * 300; onClicked: page.flow.confirm() }
            }
        }

        // --- a parameter ------------------------------------------------------------------
        GridLayout {
            visible: page.flow.step === "param"
            Layout.fillWidth: true
            Layout.fillHeight: true
            columns: Theme.portrait ? 1 : 2
            columnSpacing: Theme.gap * 2
            rowSpacing: Theme.gap
            ColumnLayout {
                Layout.fillWidth: true
                Layout.alignment: Qt.AlignTop
                spacing: Theme.gap
                Text { text: page.flow.editName; font.pixelSize: Theme.fontLarge; font.bold: true
                       color: Theme.text; Layout.fillWidth: true; elide: Text.ElideRight }
                Rectangle {
                    Layout.fillWidth: true
                    Layout.preferredHeight: Theme.touch * 1.2
                    radius: Theme.radius; color: Theme.surface
                    border.width: 2; border.color: Theme.accent
                    Text {
                        objectName: "paramDisplay"
                        anchors.centerIn: parent
                        text: page.flow.editText === "" ? " " : page.flow.editText
                        font.pixelSize: Theme.fontHuge; font.bold: true; color: Theme.text
                    }
                }
                // The plugin's declared range, before the value is typed.
                Text { objectName: "paramRange"
                       readonly property var info: page.flow.paramList.filter(p => p.name === page.flow.editName)[0]
                       visible: !!info && info.rangeText !== ""
                       text: info ? "Valid: " + info.rangeText : ""
                       font.pixelSize: Theme.font; font.bold: true; color: Theme.text
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
                Text { text: "Tap Next to keep it, Back to leave it unchanged."
                       font.pixelSize: Theme.fontSmall; color: Theme.muted
                       Layout.fillWidth: true; wrapMode: Text.WordWrap }
            }
            NumberKeys {
                readonly property var info: page.flow.paramList.filter(p => p.name === page.flow.editName)[0]
                visible: !info || info.kind !== "text"
                allowMinus: !!info && info.kind === "int"
                Layout.fillHeight: true
                Layout.fillWidth: Theme.portrait
                Layout.preferredWidth: Theme.touch * 5
                onKey: (ch) => page.flow.key(ch)
                onBackspace: page.flow.backspace()
            }
            LetterKeys {
                readonly property var info: page.flow.paramList.filter(p => p.name === page.flow.editName)[0]
                visible: !!info && info.kind === "text"
                Layout.fillHeight: true
                Layout.fillWidth: Theme.portrait
                Layout.preferredWidth: Theme.portrait ? -1 : page.width * 0.6
                onKey: (ch) => page.flow.key(ch)
                onBackspace: page.flow.backspace()
            }
        }

        // --- working -----------------------------------------------------------------------
        ColumnLayout {
            visible: page.flow.step === "working"
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: Theme.gap * 2
            Item { Layout.fillHeight: true }
            Text { text: page.flow.message; font.pixelSize: Theme.fontLarge; color: Theme.text
                   Layout.fillWidth: true; wrapMode: Text.WordWrap; horizontalAlignment: Text.AlignHCenter }
            Rectangle {
                Layout.alignment: Qt.AlignHCenter
                Layout.preferredWidth: Theme.scale * 320
                Layout.preferredHeight: Theme.gap * 1.5
                radius: height / 2; color: Theme.surfaceAlt; clip: true
                Rectangle {
                    id: runner
                    width: parent.width / 3; height: parent.height; radius: height / 2
                    color: Theme.accent
                    SequentialAnimation on x {
                        running: page.flow.step === "working" && page.visible
                        loops: Animation.Infinite
                        NumberAnimation { from: 0; to: runner.parent.width * 2 / 3; duration: 700 }
                        NumberAnimation { from: runner.parent.width * 2 / 3; to: 0; duration: 700 }
                    }
                }
            }
            Item { Layout.fillHeight: true }
        }
    }
}
