// On-screen keyboard for tickers and text: digits, letters, '.', backspace.
import QtQuick
import QtQuick.Layouts
import AutoTrader

GridLayout {
    id: kb
    signal key(string ch)
    signal backspace()
    columns: 10
    rowSpacing: Theme.gap * 0.75
    columnSpacing: Theme.gap * 0.75
    Repeater {
        model: "1234567890QWERTYUIOPASDFGHJKL.ZXCVBNM".split("").concat(["\u232B"])
        Btn {
            required property string modelData
            kind: "key"; text: modelData; fontSize: Theme.fontLarge
            Layout.fillWidth: true; Layout.fillHeight: true
            Layout.columnSpan: modelData === "\u232B" ? 3 : 1
            Layout.minimumHeight: 48
            onClicked: modelData === "\u232B" ? kb.backspace() : kb.key(modelData)
        }
    }
}
