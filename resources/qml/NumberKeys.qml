// Number pad: digits, '.', optional '-', backspace.
import QtQuick
import QtQuick.Layouts
import AutoTrader

GridLayout {
    id: pad
    property bool allowMinus: false
    signal key(string ch)
    signal backspace()
    columns: 3
    rowSpacing: Theme.gap * 0.75
    columnSpacing: Theme.gap * 0.75
    Repeater {
        model: ["7", "8", "9", "4", "5", "6", "1", "2", "3",
                pad.allowMinus ? "-" : ".", "0", "\u232B"]
        Btn {
            required property string modelData
            kind: "key"; text: modelData === "-" ? "\u2212" : modelData; fontSize: Theme.fontLarge
            Layout.fillWidth: true; Layout.fillHeight: true
            Layout.minimumHeight: 48
            onClicked: modelData === "\u232B" ? pad.backspace() : pad.key(modelData)
        }
    }
}
