import { createRoot } from "react-dom/client";
import { Api } from "./api";
import { App } from "./App";
import { loadConfig } from "./config";
import "./styles.css";

async function start() {
  const config = await loadConfig();
  const api = new Api(config.apiUrl, window.sessionStorage);
  createRoot(document.getElementById("root")!).render(<App api={api} wsUrl={config.wsUrl} />);
}

void start();
