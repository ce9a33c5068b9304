// On-screen keyboard for tickers and text: digits, letters, '.', backspace.
import QtQuick
import QtQuick.Layouts
import AutoTrader

GridLayout {
    id: kb
    signal key(string ch)
    signal backspace()
    // Portrait (480 px wide): seven keys a row, in alphabetical order, so each stays at
    // least 48 px wide; otherwise the usual ten a row.
    readonly property bool narrow: Theme.portrait
    columns: narrow ? 7 : 10
    rowSpacing: Theme.gap * 0.75
    columnSpacing: Theme.gap * 0.75
    Repeater {
        model: kb.narrow ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ.".split("").concat(["\u232B"]).concat("1234567890".split(""))
                         : "1234567890QWERTYUIOPASDFGHJKL.ZXCVBNM".split("").concat(["\u232B"])
        Btn {
            required property string modelData
            kind: "key"; text: modelData; fontSize: Theme.fontLarge
            Layout.fillWidth: true; Layout.fillHeight: true
            Layout.preferredWidth: 1
            Layout.columnSpan: modelData === "\u232B" && !kb.narrow ? 3 : 1
            Layout.minimumHeight: 48
            onClicked: modelData === "\u232B" ? kb.backspace() : kb.key(modelData)
        }
    }
}
