import "./style.css";
import { startLive, onStatus } from "./live";
import { alerts } from "./pages/alerts";
import { flow } from "./pages/flow";
import { flowDetail, flows } from "./pages/flows";
import { group } from "./pages/group";
import { groups } from "./pages/groups";
import { mqtt } from "./pages/mqtt";
import { overview } from "./pages/overview";
import { quality, qualityDetail } from "./pages/quality";
import { topic } from "./pages/topic";
import { topics } from "./pages/topics";
import { rangePicker } from "./range";
import { startRouter } from "./router";
import { setupTheme } from "./theme";

setupTheme(document.getElementById("theme")!);
document.getElementById("range")!.append(rangePicker());
const liveBadge = document.getElementById("live")!;
onStatus((s) => {
  liveBadge.textContent = s === "live" ? "● live" : s === "polling" ? "○ no live stream — refreshing every 5 s" : "○ connecting";
  liveBadge.className = `live ${s}`;
});
startLive();
startRouter(
  {
    "/": overview,
    "/topics": topics,
    "/topics/:cluster/:topic": topic,
    "/groups": groups,
    "/groups/:cluster/:group": group,
    "/mqtt": mqtt,
    "/mqtt/:broker": mqtt,
    "/flow": flow,
    "/flows": flows,
    "/flows/:flow": flowDetail,
    "/quality": quality,
    "/quality/:name": qualityDetail,
    "/alerts": alerts,
  },
  document.getElementById("page")!,
  document.getElementById("nav")!,
);
