import "./style.css";
import { overview } from "./pages/overview";
import { startRouter } from "./router";
import { setupTheme } from "./theme";

setupTheme(document.getElementById("theme")!);
startRouter({ "/": overview }, document.getElementById("page")!, document.getElementById("nav")!);
