// Debian's headless Chromium, as the browser tests launch it, and an optional screenshot helper.
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // Root in CI needs --no-sandbox; the rest keeps Chromium off a network this machine lacks.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Saves a full-page screenshot as DIR/NAME.png when a screenshot directory is configured.
export async function screenshot(page, dir, name) {
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}
