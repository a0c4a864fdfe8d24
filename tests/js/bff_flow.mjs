// Plays the user of the backend-for-frontend example (examples/bff) in headless Chromium:
// signs in on one BFF instance through Tessera's login and consent pages, places and loads
// orders through it, goes on with the same session on a second instance sharing the session
// store, looks for tokens wherever page JavaScript can read them, signs out, then calls the API
// again on both instances.
// At each checkpoint it prints `{"checkpoint": NAME, ...}` and waits for a line on stdin (the
// Rust test looks into the session store meanwhile); at the end it prints one JSON line with
// what it saw; the Rust test decides.
// Usage: node bff_flow.mjs CONFIG_JSON   {url, other_url, username, password, screenshot_dir?}
import * as readline from "node:readline";
import { launchChromium, screenshot } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);
const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const checkpoint = async (name, data) => {
  console.log(JSON.stringify({ checkpoint: name, ...data }));
  await stdin.next();
};
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
  const apiStatus = (method, headers, body) => page.evaluate(
    async ([method, headers, body]) => (await fetch("/api/orders", { method, headers, body })).status,
    [method, headers, body]);
  const order = (item) => JSON.stringify({ item, quantity: 2 });
  const json = { "content-type": "application/json" };
  const loadOrders = async (item) => {
    await page.getByRole("button", { name: "Load orders" }).click();
    await page.locator("#orders", { hasText: item }).waitFor();
    return page.locator("#orders").innerText();
  };
  const csrfOfPage = () => page.locator("meta[name=csrf-token]").getAttribute("content");

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
  const csrf = await csrfOfPage();
  const postWithoutCsrf = await apiStatus("POST", json, order("coffee"));
  const postWithCsrf = await apiStatus("POST", { ...json, "x-csrf-token": csrf }, order("tea"));
  const orders = await loadOrders("tea");
  await shot(page, "bff-orders");
  const signedInStorage = await storage();
  const cookies = (await context.cookies()).filter((c) => c.name.includes("bff"));
  await checkpoint("signed_in", { session: cookies[0]?.value });

  // The second instance: same host, so the browser sends the same host-only cookie.
  await page.goto(config.other_url);
  await page.locator("#sub").waitFor();
  const otherSub = (await page.locator("#sub").innerText()).trim();
  const otherCsrf = await csrfOfPage();
  const otherPost = await apiStatus("POST", { ...json, "x-csrf-token": otherCsrf }, order("cake"));
  const otherOrders = await loadOrders("cake");
  const otherStorage = await storage();
  await checkpoint("used_on_other");

  await page.goto(config.url);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("link", { name: "Sign in" }).waitFor();
  const afterLogoutUrl = page.url();
  const afterLogoutStatus = await apiStatus("GET", {});
  await page.goto(config.other_url);
  const otherAfterLogoutStatus = await apiStatus("GET", {});
  await page.goto(config.url);
  // Tessera's session ended too: signing in again asks for the password.
  await page.getByRole("link", { name: "Sign in" }).click();
  const reloginHeading = (await page.locator("h1").innerText()).trim();
  await shot(page, "bff-after-logout");

  console.log(JSON.stringify({
    sub, orders, before_status: beforeStatus, storage: [signedInStorage, otherStorage], cookies,
    post_without_csrf: postWithoutCsrf, post_with_csrf: postWithCsrf,
    other_sub: otherSub, other_post: otherPost, other_orders: otherOrders,
    after_logout_url: afterLogoutUrl, after_logout_status: afterLogoutStatus,
    other_after_logout_status: otherAfterLogoutStatus,
    relogin_heading: reloginHeading, bodies,
  }));
} finally {
  await browser.close();
  process.stdin.destroy();
}
