// Plays the user of the device flow (RFC 8628 §3.3) in headless Chromium: opens the
// verification URL, confirms the code, signs in, checks that the consent page shows the code,
// then allows or denies. Prints one JSON line with what the pages showed.
// Usage: node device_approve.mjs CONFIG_JSON
//   {url, username, password, deny?, screenshot_dir?}
import { launchChromium, screenshot } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);
const browser = await launchChromium();
const shot = (page, name) => screenshot(page, config.screenshot_dir, name);
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(config.url);
  await page.getByRole("heading", { name: "Connect a device" }).waitFor();
  const entered = await page.getByLabel("Code").inputValue();
  await shot(page, "device-entry");
  await page.getByRole("button", { name: "Continue" }).click();

  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await shot(page, "device-login");
  await page.getByLabel("Username").fill(config.username);
  await page.getByLabel("Password").fill(config.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  await page.getByRole("heading", { name: "Allow access?" }).waitFor();
  await shot(page, "device-consent");
  const consentCode = (await page.locator("#user-code").innerText()).trim();
  const consentText = await page.locator("main").innerText();
  if (config.expected_user_code && consentCode !== config.expected_user_code) {
    throw new Error(`consent page shows code ${consentCode}, the device showed ${config.expected_user_code}`);
  }
  await page.getByRole("button", { name: config.deny ? "Deny" : "Allow", exact: true }).click();

  const finalHeading = config.deny ? "Request denied" : "Device connected";
  await page.getByRole("heading", { name: finalHeading }).waitFor();
  await shot(page, config.deny ? "device-denied" : "device-connected");
  console.log(JSON.stringify({
    entered_code: entered,
    consent_code: consentCode,
    consent_text: consentText,
    final_heading: (await page.locator("h1").innerText()).trim(),
  }));
} finally {
  await browser.close();
}
