// A touch button: at least Theme.touch high, big readable label, pressed feedback.
import QtQuick
import AutoTrader

Rectangle {
    id: root
    property string text: ""
    property string kind: "primary"   // primary | secondary | danger | sell | key | ghost
    property bool active: true
    property int fontSize: Theme.font
    readonly property real labelWidth: label.implicitWidth
    signal clicked()

    implicitHeight: Theme.touch
    implicitWidth: Math.max(Theme.touch * 2, label.implicitWidth + Theme.gap * 4)
    radius: Theme.radius
    opacity: active ? 1.0 : 0.45
    color: {
        var c = kind === "primary" ? Theme.accent
              : kind === "danger" ? Theme.bad
              : kind === "key" ? Theme.keyBg
              : kind === "ghost" ? "transparent" : kind === "sell" ? "#fde7e6" : Theme.surface
        return tap.pressed ? Qt.darker(c, 1.25) : c
    }
    border.width: kind === "secondary" || kind === "ghost" || kind === "sell"
                  ? Math.max(2, Theme.scale * 2) * (kind === "sell" ? 1.5 : 1) : 0
    border.color: kind === "ghost" ? Theme.border : kind === "sell" ? Theme.bad : Theme.accent

    Text {
        id: label
        anchors.centerIn: parent
        width: parent.width - Theme.gap
        horizontalAlignment: Text.AlignHCenter
        text: root.text
        elide: Text.ElideRight
        font.pixelSize: root.fontSize
        font.bold: true
        color: root.kind === "primary" || root.kind === "danger" ? Theme.accentText
             : root.kind === "secondary" ? Theme.accent : root.kind === "sell" ? Theme.bad
             : Theme.keyText
    }
    TapHandler {
        id: tap
        enabled: root.active
        onTapped: root.clicked()
    }
}
