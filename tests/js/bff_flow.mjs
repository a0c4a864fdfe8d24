// Plays the user of the backend-for-frontend example (examples/bff) in headless Chromium:
// signs in through Tessera's login and consent pages, loads the orders through the BFF, looks
// for tokens wherever page JavaScript can read them, signs out, then calls the API again.
// Prints one JSON line with what it saw; the Rust test decides.
// Usage: node bff_flow.mjs CONFIG_JSON   {url, username, password, screenshot_dir?}
import { launchChromium, screenshot } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);
const browser = await launchChromium();
const shot = (page, name) => screenshot(page, config.screenshot_dir, name);
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  // Every response body the page receives (redirects have none).
  const bodies = [];
  page.on("response", async (response) => {
    try { bodies.push({ url: response.url(), body: await response.text() }); } catch { /* redirect */ }
  });
  const storage = () => page.evaluate(() => ({
    cookie: document.cookie,
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
  }));
  const apiStatus = (method, headers) => page.evaluate(
    async ([method, headers]) => (await fetch("/api/orders", { method, headers })).status,
    [method, headers]);

  await page.goto(config.url);
  const beforeStatus = await apiStatus("GET", {});
  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.getByLabel("Username").fill(config.username);
  await page.getByLabel("Password").fill(config.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Allow access?" }).waitFor();
  await shot(page, "bff-consent");
  await page.getByRole("button", { name: "Allow", exact: true }).click();

  await page.locator("#sub").waitFor();
  const sub = (await page.locator("#sub").innerText()).trim();
  await page.getByRole("button", { name: "Load orders" }).click();
  await page.locator("#orders", { hasText: "orders" }).waitFor();
  const orders = await page.locator("#orders").innerText();
  await shot(page, "bff-orders");
  const signedInStorage = await storage();
  const csrf = await page.locator("meta[name=csrf-token]").getAttribute("content");
  const postWithoutCsrf = await apiStatus("POST", {});
  const postWithCsrf = await apiStatus("POST", { "x-csrf-token": csrf });
  const cookies = (await context.cookies()).filter((c) => c.name.includes("bff"));

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("link", { name: "Sign in" }).waitFor();
  const afterLogoutUrl = page.url();
  const afterLogoutStatus = await apiStatus("GET", {});
  // Tessera's session ended too: signing in again asks for the password.
  await page.getByRole("link", { name: "Sign in" }).click();
  const reloginHeading = (await page.locator("h1").innerText()).trim();
  await shot(page, "bff-after-logout");

  console.log(JSON.stringify({
    sub, orders, before_status: beforeStatus, storage: signedInStorage, cookies,
    post_without_csrf: postWithoutCsrf, post_with_csrf: postWithCsrf,
    after_logout_url: afterLogoutUrl, after_logout_status: afterLogoutStatus,
    relogin_heading: reloginHeading, bodies,
  }));
} finally {
  await browser.close();
}
