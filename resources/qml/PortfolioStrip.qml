// The portfolio at a glance, read-only (the lock screen): account value, today's P&L,
// "13 algorithms · 1 failing", New York time and market state, the data feed.
import QtQuick
import QtQuick.Layouts
import AutoTrader

Rectangle {
    id: strip
    required property QtObject header
    color: Theme.dark
    implicitHeight: flow.implicitHeight + Theme.gap * 1.5

    component Part: Text {
        color: "white"
        font.pixelSize: Theme.fontSmall
        font.bold: true
    }

    Flow {
        id: flow
        anchors { left: parent.left; right: parent.right; verticalCenter: parent.verticalCenter }
        anchors.leftMargin: Theme.gap * 1.5
        anchors.rightMargin: Theme.gap * 1.5
        spacing: Theme.gap * 2
        Part { objectName: "stripValue"; text: "Account " + strip.header.valueText }
        Part {
            objectName: "stripToday"
            text: strip.header.todayLabel + " " + strip.header.todayText
            color: strip.header.todaySign > 0 ? "#7ee2a0" : strip.header.todaySign < 0 ? "#ff8a80" : "white"
        }
        Part { objectName: "stripCount"; text: strip.header.countText; visible: text !== ""
               font.bold: false }
        Part {
            objectName: "stripMarket"
            text: strip.header.nyText + " \u00b7 " + strip.header.marketText
            color: strip.header.haltedText !== "" ? "#ff8a80"
                 : strip.header.marketOpen ? "#7ee2a0" : "#ffd180"
        }
        Row {
            spacing: Theme.gap / 2
            Rectangle {
                anchors.verticalCenter: parent.verticalCenter
                width: Theme.fontSmall * 0.8; height: width; radius: width / 2
                color: ["connected", "simulated"].indexOf(strip.header.streamState) >= 0 ? "#4caf50"
                     : strip.header.streamState === "error" || strip.header.streamState === "stopped"
                       ? "#ff5252" : "#ffb300"
            }
            Part { objectName: "stripFeed"; text: strip.header.streamText; font.bold: false }
        }
    }
}
