// Performance side panel: what is missing (if anything), then one row per curve: its colour,
// name, change over the range, latest value and largest drawdown.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: side
    required property QtObject perf
    color: Theme.surface
    Rectangle { width: 2; height: parent.height; color: Theme.border; visible: !Theme.portrait }
    Rectangle { width: parent.width; height: 2; color: Theme.border; visible: Theme.portrait }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: Theme.gap
        anchors.leftMargin: Theme.gap + 2
        spacing: Theme.gap / 2
        Text {
            objectName: "perfSpan"
            visible: text !== ""
            text: side.perf.spanText
            Layout.fillWidth: true
            wrapMode: Text.WordWrap
            font.pixelSize: Theme.fontSmall * 0.9
            color: Theme.muted
        }
        Text {
            objectName: "perfMessage"
            visible: text !== ""
            text: side.perf.message
            Layout.fillWidth: true
            wrapMode: Text.WordWrap
            font.pixelSize: Theme.fontSmall
            color: Theme.warn
        }
        ListView {
            id: list
            objectName: "perfList"
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            spacing: Theme.gap / 2
            model: side.perf.curveModel
            boundsBehavior: Flickable.StopAtBounds
            delegate: Rectangle {
                required property string name
                required property string detail
                required property string colour
                required property string changeText
                required property int changeSign
                required property string valueText
                required property string drawdownText
                width: ListView.view.width
                height: col.implicitHeight + Theme.gap
                radius: Theme.radius / 2
                color: Theme.bg
                Rectangle { id: swatch; width: Theme.gap * 0.75; height: parent.height
                            radius: 2; color: colour }
                ColumnLayout {
                    id: col
                    anchors { left: swatch.right; right: parent.right; verticalCenter: parent.verticalCenter }
                    anchors.leftMargin: Theme.gap
                    anchors.rightMargin: Theme.gap / 2
                    spacing: 0
                    RowLayout {
                        Layout.fillWidth: true
                        // The whole name, on a second line if need be (never cut), and the
                        // change beside it at its full width.
                        Text { objectName: "perfName"; text: name
                               font.pixelSize: Theme.fontSmall; font.bold: true
                               color: Theme.text; Layout.fillWidth: true; Layout.preferredWidth: 1
                               wrapMode: Text.Wrap; Layout.alignment: Qt.AlignTop }
                        Text { objectName: "perfChange"; text: changeText
                               Layout.alignment: Qt.AlignTop
                               font.pixelSize: Theme.font; font.bold: true
                               color: changeSign > 0 ? Theme.good : changeSign < 0 ? Theme.bad : Theme.text }
                    }
                    Text { text: (valueText !== "" ? valueText + " \u00b7 " : "") + drawdownText
                                 + " \u00b7 " + detail
                           font.pixelSize: Theme.fontSmall * 0.85; color: Theme.muted
                           Layout.fillWidth: true; wrapMode: Text.WordWrap }
                }
            }
            Rectangle {  // a scroll bar when the rows do not all fit
                visible: list.contentHeight > list.height + 1
                anchors.right: parent.right
                width: 4; radius: 2; color: Theme.muted
                y: list.visibleArea.yPosition * list.height
                height: list.visibleArea.heightRatio * list.height
            }
        }
    }
}
